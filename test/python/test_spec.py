"""Spec validation: every rejection names the field, the value and what was expected, and the CLI
turns it into one `error` event and exit code 2 before importing torch."""
import json
import time

import pytest
from conftest import run_cli

from trainer.events import InvalidSpec, ModelNotFound, UnsupportedMethod
from trainer.spec import AdaLoraSpec, parse_export_spec, parse_train_spec


def _drop(d, path):
    *parents, leaf = path.split(".")
    for p in parents:
        d = d[p]
    del d[leaf]


def _set(d, path, value):
    *parents, leaf = path.split(".")
    for p in parents:
        d = d[p]
    d[leaf] = value


# Hyperparameters too: their defaults live in the grid schema, and the TypeScript side sends them all.
@pytest.mark.parametrize("path", ["modelPath", "family", "method", "trainData", "outputDir", "training",
                                  "training.lr", "training.maxLength", "training.device", "training.seed",
                                  "method.r", "method.dropout"])
def test_missing_required_field(make_spec, path):
    spec = make_spec()
    _drop(spec, path)
    with pytest.raises(InvalidSpec, match=rf"^{path}: missing; expected"):
        parse_train_spec(spec)


@pytest.mark.parametrize("path,value,error,expected", [
    ("training.lr", -1, InvalidSpec, "a number > 0"),
    ("training.lr", "fast", InvalidSpec, "a number > 0"),
    ("training.lr", float("inf"), InvalidSpec, "a number > 0"),
    ("training.maxSteps", 0, InvalidSpec, "an integer >= 1"),
    ("training.batchSize", 2.5, InvalidSpec, "an integer >= 1"),
    ("training.optimizer", "adam", InvalidSpec, "one of adamw_8bit, adamw, sgd"),
    ("training.scheduler", "step", InvalidSpec, "one of linear, cosine, constant"),
    ("training.seed", -3, InvalidSpec, "an integer >= 0"),
    ("family", "gpt2", InvalidSpec, "one of llama, gemma, mistral, template"),
    ("device", "tpu", InvalidSpec, "one of auto, cpu, cuda"),
    ("method.r", 0, InvalidSpec, "an integer rank >= 1"),
    ("method.dropout", 1.0, InvalidSpec, "a number in [0, 1)"),
    ("method.targetModules", [], InvalidSpec, "a non-empty list of module names"),
    ("method.method", "dora", UnsupportedMethod, "one of lora, qlora, adalora, ia3, prompt_tuning, full"),
    ("method.method", "icl", UnsupportedMethod, "in-context learning needs no training"),
    ("modelPath", "/nonexistent/model", ModelNotFound, "a directory with config.json"),
    ("trainData", "/nonexistent/train.pgtok", InvalidSpec, "an existing .pgtok file"),
])
def test_bad_value_names_field_value_and_expectation(make_spec, path, value, error, expected):
    spec = make_spec()
    _set(spec, path, value)
    with pytest.raises(error) as info:
        parse_train_spec(spec)
    msg = str(info.value)
    assert msg.startswith(f"{path}: got {json.dumps(value)}"), msg
    assert expected in msg


def test_unknown_field_is_rejected(make_spec):
    spec = make_spec()
    spec["training"]["learningRate"] = 1e-4
    with pytest.raises(InvalidSpec, match=r"^training.learningRate: unknown field; expected one of .*lr"):
        parse_train_spec(spec)


def test_trainer_defaults_nothing_the_grid_sends(make_spec):
    # An AdaLoRA entry without initR is not given a trainer-side default: the grid resolved it already.
    spec = make_spec(maxSteps=200)
    spec["method"] = {"method": "adalora", "targetR": 8, "tinit": 20, "tfinal": 40, "deltaT": 10, "alpha": 16,
                      "dropout": 0.05}
    with pytest.raises(InvalidSpec, match=r"^method.initR: missing; expected an integer initial rank >= 1"):
        parse_train_spec(spec)


def test_grid_extras(make_spec):
    spec = make_spec(method={"method": "adalora"}, maxSteps=200)
    spec["training"].update(maxLength=512, device="cpu")  # as the grid schema sends them
    del spec["device"]
    parsed = parse_train_spec(spec)
    assert isinstance(parsed.method, AdaLoraSpec) and parsed.method.initR == 12 and parsed.method.tinit == 20
    assert parsed.device == "cpu" and parsed.training.maxLength == 512 and parsed.training.lossWindow == 10


def test_adalora_schedule_must_leave_a_budgeting_phase(make_spec):
    spec = make_spec(method={"method": "adalora", "tinit": 3, "tfinal": 1}, maxSteps=4)
    with pytest.raises(InvalidSpec, match=r"method.tinit \+ method.tfinal: got 3 \+ 1; expected < training.maxSteps"):
        parse_train_spec(spec)


def test_ia3_feedforward_must_be_subset_of_targets(make_spec):
    spec = make_spec(method={"method": "ia3", "targetModules": ["k_proj"], "feedforwardModules": ["down_proj"]})
    with pytest.raises(InvalidSpec, match=r"method.feedforwardModules: got \[\"down_proj\"\] not in"):
        parse_train_spec(spec)


def test_export_spec(tiny, tmp_path):
    base = {"modelPath": tiny["llama"], "adapterDir": None, "method": {"method": "icl", "shots": 3},
            "outputDir": str(tmp_path / "onnx"), "dtype": "float32"}
    assert parse_export_spec(base).method == "icl"
    # float16 is a valid export dtype now (trainer/export.py); bfloat16 is not (ONNX Runtime cannot run it).
    assert parse_export_spec({**base, "dtype": "float16"}).dtype == "float16"
    with pytest.raises(InvalidSpec, match=r'^dtype: got "bfloat16"; expected one of auto, float32, float16'):
        parse_export_spec({**base, "dtype": "bfloat16"})
    with pytest.raises(ModelNotFound, match=r"^adapterDir: got"):
        parse_export_spec({**base, "adapterDir": str(tmp_path / "missing"), "method": "lora"})
    with pytest.raises(ModelNotFound, match=r"^adapterDir: got .*; expected a directory with adapter_config.json"):
        parse_export_spec({**base, "adapterDir": str(tmp_path), "method": "lora"})


def test_cli_reports_invalid_spec_as_one_event_and_exit_2(make_spec, tmp_path):
    spec = make_spec()
    spec["method"] = {"method": "lora", "r": -1}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    t0 = time.time()
    code, events, stderr = run_cli(["train", "--spec", str(path)])
    assert code == 2, stderr
    assert events == [{"event": "error", "type": "InvalidSpec", "message": "method.r: got -1; expected an integer rank >= 1"}]
    assert time.time() - t0 < 10  # fails before the heavy imports (torch alone takes seconds)


def test_truncate_with_bad_layers_is_an_invalid_spec_event_and_exit_2(tmp_path):
    # Before the fix the handler raised a name it never imported: NameError, exit 1, retried forever.
    code, events, stderr = run_cli(["truncate", "--src", str(tmp_path), "--out", str(tmp_path / "out"), "--layers", "x,y"])
    assert code == 2, stderr
    assert events == [{"event": "error", "type": "InvalidSpec",
                       "message": "--layers: got 'x,y'; expected comma-separated integers"}]
