"""One source of truth for the limits: the grid schema (src/config/schema.ts, published as
schema/grid.schema.json, which test/unit/config.test.ts keeps equal to the zod schema) and the
trainer's spec rules (trainer/spec.py) must agree field by field, or a config passes `peftgrid
validate` and fails only after data preparation and tokenization. Changing either side alone fails
here: the same fields, the same bounds (inclusive or exclusive), integer-ness, enum choices and
required-ness, and spec.py accepts each boundary value the schema accepts and rejects the value just
beyond it. Rules between fields (AdaLoRA's targetR <= initR, (IA)3's feedforward ⊆ target, ...)
cannot be written in a JSON Schema: test/fixtures/method-rules.json lists cases that this file and
test/unit/config.test.ts both run, and both must reach the same verdict.
"""
import copy
import json
import os
from dataclasses import MISSING, fields

import pytest
from conftest import ROOT, grid_schema, resolved_method

from trainer.events import InvalidSpec, UnsupportedMethod
from trainer.spec import METHODS, GenerateSpec, TrainingSpec, TrainSpec, parse_train_spec

SCHEMA = grid_schema()
METHOD_ENTRIES = {e["properties"]["method"]["const"]: e["properties"]
                  for e in SCHEMA["properties"]["methods"]["items"]["oneOf"]}
TRAINING = SCHEMA["properties"]["training"]["properties"]
EVAL = SCHEMA["properties"]["eval"]["properties"]
# The torch engine's spec (python -m trainer generate) takes these eval.* settings as the grid sends them.
GENERATE_EVAL_FIELDS = ("maxNewTokens", "batchSize")
# zod puts Number.MAX_SAFE_INTEGER on every integer: the limit of a JSON number in JavaScript, not a rule.
JS_MAX_SAFE_INTEGER = 2**53 - 1

# A method's `lr` is moved into training.lr by src/config/plan.ts; the trainer never sees it there.
GRID_ONLY_METHOD_FIELDS = {"method", "lr"}
# In the trainer, not the grid: a trainer-only knob (so it must have a default).
TRAINER_ONLY_TRAINING_FIELDS = {"lossWindow"}
IGNORED_TRAINING_FIELDS = set()


def scalar(prop):
    """The single-value form of a `many()` field (a value or a list of values)."""
    if "anyOf" in prop:
        (one,) = [p for p in prop["anyOf"] if p.get("type") != "array"]
        return one
    return prop


def auto_or_bool(prop):
    alts = prop.get("anyOf", [])
    return sorted(json.dumps(a, sort_keys=True) for a in alts) == sorted(
        json.dumps(a, sort_keys=True) for a in ({"type": "string", "const": "auto"}, {"type": "boolean"}))


def schema_rules(prop):
    """JSON Schema → the trainer's rule vocabulary, with integer bounds made inclusive."""
    if auto_or_bool(prop):  # training.gradientCheckpointing: 'auto' | boolean
        return {"kind": "auto_or_bool"}
    p = scalar(prop)
    t = p.get("type")
    if t == "array":
        item = p["items"]
        assert item["type"] == "string" and item.get("minLength") == 1 and p.get("minItems") == 1, p
        return {"kind": "names"}
    if t == "string":
        rules = {"kind": "str"}
        if "enum" in p:
            rules["choices"] = tuple(p["enum"])
        if p.get("minLength") == 1:
            rules["nonempty"] = True
        return rules
    assert t in ("integer", "number"), p
    rules = {"kind": "int" if t == "integer" else "number"}
    for key, name in (("minimum", "min"), ("exclusiveMinimum", "gt"), ("maximum", "max"), ("exclusiveMaximum", "lt")):
        if key in p:
            rules[name] = p[key]
    return normalize(rules)


def normalize(rules):
    rules = dict(rules)
    if rules["kind"] == "int":
        if "gt" in rules:
            rules["min"] = rules.pop("gt") + 1
        if "lt" in rules:
            rules["max"] = rules.pop("lt") - 1
        if rules.get("max") == JS_MAX_SAFE_INTEGER:
            del rules["max"]
        if rules.get("min") == -JS_MAX_SAFE_INTEGER:
            del rules["min"]
    return rules


def spec_rules(f):
    rules = {k: v for k, v in f.metadata.items() if k in ("kind", "min", "gt", "max", "lt", "choices", "nonempty")}
    if "choices" in rules:
        rules["choices"] = tuple(rules["choices"])
    return normalize(rules) if rules.get("kind") in ("int", "number") else rules


def required(f):
    return f.default is MISSING and f.default_factory is MISSING


# (where, schema property, spec field) for every field both sides validate.
PAIRS = []
for name, cls in METHODS.items():
    for f in fields(cls):
        PAIRS.append((f"method[{name}].{f.name}", METHOD_ENTRIES.get(name, {}).get(f.name), f))
for f in fields(TrainingSpec):
    if f.name not in TRAINER_ONLY_TRAINING_FIELDS | IGNORED_TRAINING_FIELDS:
        PAIRS.append((f"training.{f.name}", TRAINING.get(f.name), f))
for f in fields(GenerateSpec):
    if f.name in GENERATE_EVAL_FIELDS:
        PAIRS.append((f"eval.{f.name} (generate)", EVAL.get(f.name), f))


def test_the_same_methods_and_fields_on_both_sides():
    assert set(METHOD_ENTRIES) == set(METHODS) | {"icl"}  # icl trains nothing: the trainer refuses it
    for name, cls in METHODS.items():
        assert {f.name for f in fields(cls)} == set(METHOD_ENTRIES[name]) - GRID_ONLY_METHOD_FIELDS, name
    trainer = {f.name for f in fields(TrainingSpec)}
    assert trainer - TRAINER_ONLY_TRAINING_FIELDS - IGNORED_TRAINING_FIELDS == set(TRAINING) - IGNORED_TRAINING_FIELDS
    for f in fields(TrainingSpec):
        if f.name in TRAINER_ONLY_TRAINING_FIELDS | IGNORED_TRAINING_FIELDS:
            assert not required(f), f"training.{f.name}: the grid never sends it, so the trainer cannot require it"
    top = {f.name: f for f in fields(TrainSpec)}
    family = SCHEMA["properties"]["models"]["items"]["properties"]["family"]["enum"]
    assert tuple(top["family"].metadata["choices"]) == tuple(family)
    assert tuple(top["device"].metadata["choices"]) == tuple(TRAINING["device"]["enum"])
    generate = {f.name: f for f in fields(GenerateSpec)}
    assert tuple(generate["device"].metadata["choices"]) == tuple(TRAINING["device"]["enum"])
    assert tuple(EVAL["engine"]["enum"]) == ("auto", "onnx", "torch")


@pytest.mark.parametrize("where,prop,f", PAIRS, ids=[p[0] for p in PAIRS])
def test_the_same_rules(where, prop, f):
    assert prop is not None, f"{where}: in trainer/spec.py, not in the grid schema"
    assert spec_rules(f) == schema_rules(prop), where
    # Defaults live once: what the grid defaults, it always sends, and the trainer requires.
    if "default" in prop:
        assert required(f), f"{where}: defaulted by the grid schema, so trainer/spec.py must require it"
    else:
        assert f.default is None and f.metadata.get("nullable"), f"{where}: optional in the grid, absent means null"


def boundary_cases(rules):
    """(value, accepted) pairs at and just beyond each bound, from the schema's rules."""
    kind, cases = rules["kind"], []
    step = 1 if kind == "int" else 1e-9
    if "min" in rules:
        cases += [(rules["min"], True), (rules["min"] - step, False)]
    if "gt" in rules:
        cases += [(rules["gt"], False), (rules["gt"] + step, True)]
    if "max" in rules:
        cases += [(rules["max"], True), (rules["max"] + step, False)]
    if "lt" in rules:
        cases += [(rules["lt"], False), (rules["lt"] - step, True)]
    if kind == "int":
        base = rules.get("min", 1)
        cases += [(base + 0.5, False), (float(base), True)]  # integer-ness (JSON 3.0 is the integer 3)
    if kind in ("int", "number"):
        cases += [("1", False), (True, False)]
    for c in rules.get("choices", ()):
        cases.append((c, True))
    if "choices" in rules:
        cases.append(("not-a-choice", False))
    if rules.get("nonempty"):
        cases += [("", False), ("x", True)]
    if kind == "names":
        cases += [([], False), ([""], False), (["q_proj", "v_proj"], True)]
    if kind == "auto_or_bool":
        cases += [("auto", True), (True, True), (False, True), ("on", False), (1, False), (None, False)]
    return cases


def spec_with(make_spec, where, value):
    """A valid spec with one field set; the fields it constrains against are set to stay valid."""
    spec = make_spec()
    section, field_name = where.split(".")
    if section.startswith("method["):
        method = section[len("method["):-1]
        entry = {"method": method, "targetModules": ["q_proj", "v_proj"]} if method == "ia3" else {"method": method}
        spec["method"] = resolved_method(entry)
        spec["method"][field_name] = value
        if method == "adalora":
            # targetR <= initR and tinit + tfinal < maxSteps are rules between fields, tested in test_spec.py.
            spec["training"]["maxSteps"] = 10**6
            if field_name == "initR":
                spec["method"]["targetR"] = 1
        if method == "ia3" and field_name == "targetModules":
            spec["method"]["feedforwardModules"] = None
    else:
        spec["training"][field_name] = value
        if field_name == "maxSteps":
            spec["training"]["checkpointEverySteps"] = 1
    return spec


# Bounds are exercised through the train spec; the generate spec's eval.* pairs are held by their rules.
CASES = [(where, value, ok) for where, prop, f in PAIRS if prop is not None and not where.startswith("eval.")
         for value, ok in boundary_cases(schema_rules(prop))]


@pytest.mark.parametrize("where,value,ok", CASES, ids=[f"{w}={v!r}" for w, v, _ in CASES])
def test_trainer_accepts_what_the_schema_accepts_at_each_bound(make_spec, where, value, ok):
    spec = spec_with(make_spec, where, copy.deepcopy(value))
    path = "method" + where[where.index("]") + 1:] if where.startswith("method[") else where
    if ok:
        parse_train_spec(spec)
    else:
        with pytest.raises(InvalidSpec, match=rf"^{path}: got "):
            parse_train_spec(spec)


with open(os.path.join(ROOT, "test", "fixtures", "method-rules.json")) as _f:
    RULE_CASES = json.load(_f)["cases"]


@pytest.mark.parametrize("case", RULE_CASES, ids=[json.dumps(c["method"]) for c in RULE_CASES])
def test_rules_between_method_fields_match_the_grid(make_spec, case):
    # The same cases run through the grid validation in test/unit/config.test.ts.
    spec = make_spec(method=dict(case["method"]), **case["training"])
    if case["ok"]:
        parse_train_spec(spec)
    else:
        with pytest.raises(InvalidSpec, match=r"^method\."):
            parse_train_spec(spec)


def test_icl_is_refused_by_the_trainer(make_spec):
    spec = make_spec()
    spec["method"] = {"method": "icl", "shots": 3}
    with pytest.raises(UnsupportedMethod):
        parse_train_spec(spec)
