"""Typed train/export specs (docs/contracts.md §2), validated before any heavy import or I/O.

Each field carries PEFT-style metadata: `help` (what is expected, used in error messages) and
rules (`kind`, `min`, `gt`, `max`, `lt`, `choices`). Defaults live once, in the grid schema
(src/config/schema.ts): the TypeScript side sends every hyperparameter resolved, so here they are
required and only checked. The rules match the schema's bounds; test/python/test_spec_schema.py
holds the two together through the generated schema/grid.schema.json. Every error names the field
path, the value it got and what was expected.
"""
import json
import math
import os
from dataclasses import MISSING, dataclass, field, fields

from .events import InvalidSpec, ModelNotFound, UnsupportedMethod

# `python -m trainer quantize`'s schemes (trainer/quantize.py has what each one does)
QUANTIZE_SCHEMES = ("dynamic", "smoothquant", "per-token", "matmul-nbits")

FAMILIES = ("llama", "gemma", "mistral", "template")
OPTIMIZERS = ("adamw_8bit", "adamw", "sgd")
SCHEDULERS = ("linear", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")


REQUIRED = MISSING


def _f(default=REQUIRED, help="", **rules):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **rules})
    return field(default=default, metadata={"help": help, **rules})


def _names():
    return _f(None, "a non-empty list of module names, e.g. [\"q_proj\", \"v_proj\"], or null", kind="names",
              nullable=True)


@dataclass
class LoraSpec:
    r: int = _f(help="an integer rank >= 1", kind="int", min=1)
    alpha: float = _f(help="a number > 0", kind="number", gt=0)
    dropout: float = _f(help="a number in [0, 1)", kind="number", min=0, lt=1)
    targetModules: list = _names()


@dataclass
class QLoraSpec(LoraSpec):
    pass


@dataclass
class AdaLoraSpec:
    initR: int = _f(help="an integer initial rank >= 1", kind="int", min=1)
    targetR: int = _f(help="an integer target rank >= 1", kind="int", min=1)
    tinit: int = _f(help="an integer >= 0 (warm-up steps before pruning)", kind="int", min=0)
    tfinal: int = _f(help="an integer >= 0 (final steps at the target budget)", kind="int", min=0)
    deltaT: int = _f(help="an integer >= 1 (steps between budget allocations)", kind="int", min=1)
    alpha: float = _f(help="a number > 0", kind="number", gt=0)
    dropout: float = _f(help="a number in [0, 1)", kind="number", min=0, lt=1)
    targetModules: list = _names()


@dataclass
class IA3Spec:
    targetModules: list = _names()
    feedforwardModules: list = _names()


@dataclass
class PromptTuningSpec:
    numVirtualTokens: int = _f(help="an integer >= 1", kind="int", min=1)
    initText: str = _f(help="a non-empty string", kind="str", nonempty=True)


@dataclass
class FullSpec:
    pass


METHODS = {"lora": LoraSpec, "qlora": QLoraSpec, "adalora": AdaLoraSpec, "ia3": IA3Spec,
           "prompt_tuning": PromptTuningSpec, "full": FullSpec}


@dataclass
class TrainingSpec:
    maxSteps: int = _f(help="an integer >= 1", kind="int", min=1)
    lr: float = _f(help="a number > 0", kind="number", gt=0)
    warmupSteps: int = _f(help="an integer >= 0", kind="int", min=0)
    scheduler: str = _f(help="one of " + ", ".join(SCHEDULERS), kind="str", choices=SCHEDULERS)
    optimizer: str = _f(help="one of " + ", ".join(OPTIMIZERS), kind="str", choices=OPTIMIZERS)
    batchSize: int = _f(help="an integer >= 1", kind="int", min=1)
    # checkpointEverySteps > maxSteps is legal here (no checkpoint); the grid rejects it, as policy.
    checkpointEverySteps: int = _f(help="an integer >= 1", kind="int", min=1)
    # numpy's SeedSequence (the data order, data.py) rejects negative seeds.
    seed: int = _f(help="an integer >= 0", kind="int", min=0)
    # Caps each example (the prompt is cut first); 2 = one prompt and one answer token.
    maxLength: int = _f(help="an integer >= 2", kind="int", min=2)
    device: str = _f(help="one of " + ", ".join(DEVICES), kind="str", choices=DEVICES)
    # "auto": on for models of trainer/resources.py's GRADIENT_CHECKPOINTING_MIN_PARAMS and more.
    gradientCheckpointing: object = _f(help="\"auto\", true or false", kind="auto_or_bool")
    # Trainer-only knob, not in the grid schema: the TypeScript side never sends it.
    lossWindow: int = _f(10, "an integer >= 1 (last steps averaged for trainLoss/perplexity)", kind="int", min=1)


@dataclass
class TrainSpec:
    modelPath: str = _f(help="an existing model directory", kind="str", nonempty=True)
    family: str = _f(help="one of " + ", ".join(FAMILIES), kind="str", choices=FAMILIES)
    method: object = _f(help="an object with a \"method\" field")
    trainData: str = _f(help="an existing .pgtok file", kind="str", nonempty=True)
    outputDir: str = _f(help="a directory path", kind="str", nonempty=True)
    training: TrainingSpec = _f(help="an object")
    runKey: str = _f("", "a string", kind="str")
    # The activity sends training.device here too; absent, training.device decides.
    device: str = _f(None, "one of " + ", ".join(DEVICES), kind="str", choices=DEVICES, nullable=True)

    @property
    def method_name(self):
        return _METHOD_NAMES[type(self.method)]


@dataclass
class ExportSpec:
    modelPath: str = _f(help="an existing model directory", kind="str", nonempty=True)
    outputDir: str = _f(help="a directory path", kind="str", nonempty=True)
    adapterDir: str = _f(None, "an adapter directory or null (base model)", kind="str", nullable=True)
    method: str = _f(None, "a method name (or a method object) or null", nullable=True)
    # auto: float16 weights on CUDA, float32 on CPU (export.py's export_dtype); graph I/O is float32 either way.
    dtype: str = _f("auto", "one of auto, float32, float16", kind="str", choices=("auto", "float32", "float16"))
    family: str = _f(None, "one of " + ", ".join(FAMILIES), kind="str", choices=FAMILIES, nullable=True)
    runKey: str = _f("", "a string", kind="str")
    # Parity (export.py): relative by default; an absolute bound only where a caller sets one.
    maxRelDiff: float = _f(None, "a number > 0 (max |Δ logits| / max |logits|) or null (by dtype)", kind="number",
                           gt=0, nullable=True)
    maxAbsDiff: float = _f(None, "a number > 0 (absolute bound on |Δ logits|) or null", kind="number", gt=0,
                           nullable=True)


@dataclass
class QuantizeSpec:
    """`python -m trainer quantize`: an fp32 export → its int8 variant (trainer/quantize.py)."""
    onnxDir: str = _f(help="a float32 export directory (model.onnx + engine.json)", kind="str", nonempty=True)
    outputDir: str = _f(help="a directory path", kind="str", nonempty=True)
    tokenizerDir: str = _f(help="the exported model's directory (its tokenizer encodes the parity prompts)",
                           kind="str", nonempty=True)
    scheme: str = _f("per-token", f"one of {', '.join(QUANTIZE_SCHEMES)}", kind="str", choices=QUANTIZE_SCHEMES)
    minAgreement: float = _f(None, "a number in (0, 1] (int8 vs fp32 greedy-token agreement) or null (0.9)",
                             kind="number", gt=0, max=1, nullable=True)


@dataclass
class GenerateSpec:
    """`python -m trainer generate`: the torch evaluation engine (trainer/generate.py)."""
    modelPath: str = _f(help="an existing model directory", kind="str", nonempty=True)
    itemsPath: str = _f(help="a JSONL file of test items (promptIds, answerIds)", kind="str", nonempty=True)
    maxNewTokens: int = _f(help="an integer >= 1", kind="int", min=1)
    batchSize: int = _f(help="an integer >= 1", kind="int", min=1)
    adapterDir: str = _f(None, "an adapter directory or null (base model)", kind="str", nullable=True)
    method: str = _f(None, "a method name (or a method object) or null", nullable=True)
    draftModelPath: str = _f(None, "a draft model directory or null", kind="str", nullable=True)
    gamma: int = _f(4, "an integer >= 1 (draft tokens per target pass)", kind="int", min=1)
    promptLookupNgram: int = _f(None, "an integer >= 1 (prompt-lookup decoding: the longest n-gram) or null",
                                kind="int", min=1, nullable=True)
    device: str = _f("auto", "one of " + ", ".join(DEVICES), kind="str", choices=DEVICES)
    longPrompt: str = _f("truncate", "truncate or error (a prompt longer than the context)", kind="str",
                         choices=("truncate", "error"))
    stopSequences: list = _f([], "a list of non-empty token-id lists")
    score: bool = _f(True, "true or false (score the reference answers' perplexity)")


@dataclass
class DistillTargetSpec:
    """The `distill` object of a distill spec: the target whose greedy outputs the draft learns."""
    modelPath: str = _f(help="an existing model directory (the target's base)", kind="str", nonempty=True)
    maxNewTokens: int = _f(help="an integer >= 1 (target tokens generated per prompt)", kind="int", min=1)
    adapterDir: str = _f(None, "the target's adapter directory or null (base model)", kind="str", nullable=True)
    method: str = _f(None, "the method that trained adapterDir, or null", kind="str", nullable=True)
    batchSize: int = _f(8, "an integer >= 1 (prompts per target generate call)", kind="int", min=1)


# The draft ends as a plain model directory: a full fine-tune is one, LoRA is merged into it.
DISTILL_METHODS = ("lora", "full")

_METHOD_NAMES = {cls: name for name, cls in METHODS.items()}


def _show(v):
    return json.dumps(v) if not isinstance(v, (dict, list)) or len(json.dumps(v)) < 80 else type(v).__name__


def _check(value, meta, path):
    bad = InvalidSpec(f"{path}: got {_show(value)}; expected {meta['help']}")
    if value is None:
        if meta.get("nullable"):
            return None
        raise bad
    kind = meta.get("kind")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        if not (isinstance(value, float) and value.is_integer()):
            raise bad
        value = int(value)
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
        raise bad  # Python's json accepts NaN and Infinity; no hyperparameter here means them
    if kind == "str" and not isinstance(value, str):
        raise bad
    if kind == "auto_or_bool":
        if value != "auto" and not isinstance(value, bool):
            raise bad
        return value
    if kind == "names":
        if not isinstance(value, list) or not value or not all(isinstance(s, str) and s for s in value):
            raise bad
        return list(value)
    if ("min" in meta and value < meta["min"]) or ("gt" in meta and value <= meta["gt"]):
        raise bad
    if ("max" in meta and value > meta["max"]) or ("lt" in meta and value >= meta["lt"]):
        raise bad
    if "choices" in meta and value not in meta["choices"]:
        raise bad
    if meta.get("nonempty") and not value:
        raise bad
    return float(value) if kind == "number" else value


def _build(cls, data, path):
    where = path or "spec"
    if not isinstance(data, dict):
        raise InvalidSpec(f"{where}: got {_show(data)}; expected an object")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - ({"method"} if cls in _METHOD_NAMES else set()))
    if unknown:
        raise InvalidSpec(f"{path + '.' if path else ''}{unknown[0]}: unknown field; "
                          f"expected one of {', '.join(sorted(known)) or '(no fields)'}")
    kwargs = {}
    for f in fields(cls):
        p = f"{path}.{f.name}" if path else f.name
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise InvalidSpec(f"{p}: missing; expected {f.metadata['help']}")
            continue
        kwargs[f.name] = _check(data[f.name], f.metadata, p) if f.metadata.get("kind") else data[f.name]
    return cls(**kwargs)


def _method(data, path="method"):
    if not isinstance(data, dict) or not isinstance(data.get("method"), str):
        raise InvalidSpec(f"{path}.method: got {_show(data.get('method') if isinstance(data, dict) else data)}; "
                          f"expected one of {', '.join(METHODS)}")
    name = data["method"]
    if name not in METHODS:
        hint = " (in-context learning needs no training)" if name == "icl" else ""
        raise UnsupportedMethod(f"{path}.method: got {_show(name)}; expected one of {', '.join(METHODS)}{hint}")
    return _build(METHODS[name], data, path)


def _require_model_dir(path, field_name):
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ModelNotFound(f"{field_name}: got {_show(path)}; expected a directory with config.json")


def parse_train_spec(data):
    """dict → TrainSpec, or a TrainerError naming the first bad field. Checks files exist."""
    spec = _build(TrainSpec, data, "")
    spec.method = _method(spec.method)
    spec.training = _build(TrainingSpec, spec.training, "training")
    t, m = spec.training, spec.method
    if spec.device is None:
        spec.device = t.device
    if isinstance(m, AdaLoraSpec):
        if m.tinit + m.tfinal >= t.maxSteps:
            raise InvalidSpec(f"method.tinit + method.tfinal: got {m.tinit} + {m.tfinal}; expected < "
                              f"training.maxSteps ({t.maxSteps}) so that a budgeting phase exists")
        if m.targetR > m.initR:
            raise InvalidSpec(f"method.targetR: got {m.targetR}; expected <= method.initR ({m.initR})")
    if isinstance(m, IA3Spec) and m.feedforwardModules and m.targetModules is None:
        raise InvalidSpec("method.feedforwardModules: given without method.targetModules; "
                          "expected both (feedforwardModules must be a subset of targetModules)")
    if isinstance(m, IA3Spec) and m.feedforwardModules and not set(m.feedforwardModules) <= set(m.targetModules):
        extra = sorted(set(m.feedforwardModules) - set(m.targetModules))
        raise InvalidSpec(f"method.feedforwardModules: got {_show(extra)} not in method.targetModules; "
                          "expected a subset of targetModules")
    _require_model_dir(spec.modelPath, "modelPath")
    if not os.path.isfile(spec.trainData):
        raise InvalidSpec(f"trainData: got {_show(spec.trainData)}; expected an existing .pgtok file")
    return spec


def parse_export_spec(data):
    spec = _build(ExportSpec, data, "")
    if isinstance(spec.method, dict):
        spec.method = spec.method.get("method")  # a train spec's method object names it
    if spec.method is not None and spec.method not in METHODS and spec.method != "icl":
        raise UnsupportedMethod(f"method: got {_show(spec.method)}; expected one of {', '.join(METHODS)}, icl or null")
    _require_model_dir(spec.modelPath, "modelPath")
    if spec.adapterDir is not None and not os.path.isdir(spec.adapterDir):
        raise ModelNotFound(f"adapterDir: got {_show(spec.adapterDir)}; expected an existing adapter directory")
    if spec.adapterDir is not None and spec.method in (None, "icl"):
        raise InvalidSpec(f"method: got {_show(spec.method)} with an adapterDir; expected the method that trained it")
    if spec.adapterDir is not None:
        # A full fine-tune's final directory is a whole model; every other method leaves a PEFT adapter.
        marker = "config.json" if spec.method == "full" else "adapter_config.json"
        if not os.path.isfile(os.path.join(spec.adapterDir, marker)):
            raise ModelNotFound(f"adapterDir: got {_show(spec.adapterDir)}; expected a directory with {marker} "
                                f"(the final/ directory of a {spec.method} run)")
    return spec


def parse_distill_spec(data):
    """dict → (TrainSpec of the draft, DistillTargetSpec). A distill spec is a train spec whose
    `modelPath` is the draft and whose `trainData` holds the training prompts (their answers are
    replaced by the target's outputs), plus a `distill` object naming the target."""
    if not isinstance(data, dict):
        raise InvalidSpec(f"spec: got {_show(data)}; expected an object")
    if "distill" not in data:
        raise InvalidSpec("distill: missing; expected an object naming the target (modelPath, maxNewTokens)")
    rest = {k: v for k, v in data.items() if k != "distill"}
    target = _build(DistillTargetSpec, data["distill"], "distill")
    spec = parse_train_spec(rest)
    if spec.method_name not in DISTILL_METHODS:
        raise UnsupportedMethod(f"method.method: got {_show(spec.method_name)}; expected one of "
                                f"{', '.join(DISTILL_METHODS)} (a distilled draft ends as a plain model)")
    _require_model_dir(target.modelPath, "distill.modelPath")
    if target.adapterDir is not None:
        if not os.path.isdir(target.adapterDir):
            raise ModelNotFound(f"distill.adapterDir: got {_show(target.adapterDir)}; expected an existing directory")
        if target.method not in METHODS:
            raise InvalidSpec(f"distill.method: got {_show(target.method)} with an adapterDir; expected the method "
                              "that trained it")
    return spec, target


def parse_quantize_spec(data):
    spec = _build(QuantizeSpec, data, "")
    for name in ("model.onnx", "engine.json"):
        if not os.path.isfile(os.path.join(spec.onnxDir, name)):
            raise ModelNotFound(f"onnxDir: got {_show(spec.onnxDir)}; expected a directory with {name} "
                                "(the output of `python -m trainer export`)")
    if not os.path.isfile(os.path.join(spec.tokenizerDir, "tokenizer_config.json")):
        raise ModelNotFound(f"tokenizerDir: got {_show(spec.tokenizerDir)}; expected a directory with "
                            "tokenizer_config.json")
    return spec


def load_json(path, what="spec"):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise InvalidSpec(f"--spec: got {_show(path)}; expected an existing JSON file")
    except json.JSONDecodeError as e:
        raise InvalidSpec(f"--spec: {path} is not valid JSON ({e}); expected a {what} object")


def parse_generate_spec(data):
    spec = _build(GenerateSpec, data, "")
    if isinstance(spec.method, dict):
        spec.method = spec.method.get("method")
    _require_model_dir(spec.modelPath, "modelPath")
    if spec.draftModelPath is not None:
        _require_model_dir(spec.draftModelPath, "draftModelPath")
    if spec.adapterDir is not None and not os.path.isdir(spec.adapterDir):
        raise ModelNotFound(f"adapterDir: got {_show(spec.adapterDir)}; expected an existing adapter directory")
    if spec.adapterDir is not None and spec.method not in METHODS:
        raise InvalidSpec(f"method: got {_show(spec.method)} with an adapterDir; expected the method that trained it")
    if not os.path.isfile(spec.itemsPath):
        raise InvalidSpec(f"itemsPath: got {_show(spec.itemsPath)}; expected an existing JSONL file")
    seqs = spec.stopSequences
    if not isinstance(seqs, list) or not all(isinstance(q, list) and q and all(isinstance(i, int) and i >= 0 for i in q)
                                             for q in seqs):
        raise InvalidSpec(f"stopSequences: got {_show(seqs)}; expected a list of non-empty token-id lists")
    if not isinstance(spec.score, bool):
        raise InvalidSpec(f"score: got {_show(spec.score)}; expected true or false")
    return spec
