"""stdout is a protocol (docs/contracts.md §2): JSON lines only, one object per line, flushed.

`EVENTS` is the protocol's one schema on this side: every `emit()` is checked against it, so a
renamed or mistyped field fails here, in the trainer's own tests, not as a NaN in the worker. The
error classes below and the EXIT_* constants are the trainer's part of the failure registry
(src/contracts/failures.ts). test/python/test_trainer_protocol.py holds all three equal to the
TypeScript side through schema/trainer-protocol.json.

`claim_stdout()` moves file descriptor 1 onto stderr and keeps a private handle to the real
stdout, so a stray print from any library (or C extension) can never corrupt the event stream.
"""
import json
import math
import os
import sys
import time

# Field kinds: "int" (not bool), "float" (int or float; None, and floats that are not finite, are
# printed as null), "str", "bool", "ints" (a list of int: token ids), "floats" (a list of finite numbers). Every field is required and no other field is allowed.
EVENTS = {
    "start": {"step": "int", "maxSteps": "int", "device": "str", "trainableParams": "int", "totalParams": "int"},
    "step": {"step": "int", "loss": "float", "lr": "float", "gradNorm": "float", "tokens": "int", "tokensPerSec": "float",
             "elapsedMs": "int", "stepMs": "int"},
    "checkpoint": {"step": "int", "dir": "str", "loss": "float"},
    "preempting": {"signal": "str", "signalStep": "int", "step": "int"},
    # Just before `done`: what the run cost (trainer/resources.py says how each figure is measured).
    "resources": {"peakMemoryBytes": "int", "peakMemorySource": "str", "mfu": "float", "flopsPerToken": "float",
                  "peakFlops": "float", "gradientCheckpointing": "bool"},
    "done": {"step": "int", "finalDir": "str", "trainLoss": "float", "trainPerplexity": "float"},
    "error": {"type": "str", "message": "str"},
    # The torch engine (trainer/generate.py): one `sequence` per test item, one `batch` per generate
    # call (its timings: the same BatchTiming the ONNX engine reports), one `score` per item, then `generated`.
    "generating": {"device": "str", "precision": "str", "items": "int", "maxPositions": "int"},
    "sequence": {"index": "int", "tokens": "ints", "finishReason": "str", "generatedTokens": "int", "truncated": "bool",
                 "error": "str"},
    "batch": {"size": "int", "promptWidth": "int", "ttftMs": "float", "stepMs": "floats", "done": "int", "total": "int"},
    "score": {"index": "int", "sumLogProb": "float", "tokenCount": "int", "truncated": "bool", "error": "str"},
    "generated": {"generatedTokens": "int", "wallMs": "float", "acceptanceRate": "float",
                  "targetOnlyTokensPerSec": "float"},
    "export": {"outputDir": "str", "maxAbsDiff": "float", "prefillMaxAbsDiff": "float", "decodeMaxAbsDiff": "float",
               "maxRelDiff": "float", "weightDtype": "str", "bytes": "int", "exportSeconds": "float", "seconds": "float"},
    # `quantize` (trainer/quantize.py): the int8 variant of an export and its greedy-token agreement with fp32.
    "quantize": {"outputDir": "str", "scheme": "str", "agreement": "float", "threshold": "float",
                 "belowThreshold": "bool", "parityTokens": "int", "bytes": "int", "quantizeSeconds": "float",
                 "seconds": "float"},
    # `stage` (trainer/stage.py): bytes on disk so far while a hub model downloads, then where it landed.
    "staging": {"repoId": "str", "bytes": "int", "totalBytes": "int"},
    "staged": {"repoId": "str", "revision": "str", "dir": "str", "bytes": "int", "files": "int"},
}

# Exit codes (docs/contracts.md §2). Anything else (1, a signal) is infrastructure: the activity retries.
EXIT_DONE = 0
EXIT_INVALID = 2  # a TrainerError: a retry would repeat it
EXIT_CHECKPOINT_REJECTED = 3  # --resume-from cannot be used: the caller falls back to an older checkpoint
EXIT_PREEMPTED = 75  # checkpointed after SIGTERM/SIGINT (EX_TEMPFAIL)

_events = None  # the real stdout once claim_stdout() ran; until then sys.stdout (tests capture it)


class TrainerError(Exception):
    """A failure a retry would repeat: the CLI prints an `error` event and exits with `exit_code`."""
    type = "TrainerError"
    exit_code = EXIT_INVALID


class InvalidSpec(TrainerError):
    """The spec is malformed: a missing or unknown field, a bad value, a missing data file."""
    type = "InvalidSpec"


class ModelNotFound(TrainerError):
    """`modelPath` (or an adapter directory) does not hold a loadable model."""
    type = "ModelNotFound"


class ModelGated(TrainerError):
    """The hub refused the model (401/403): gated or private, and HF_TOKEN is unset or not granted."""
    type = "ModelGated"


class RevisionNotFound(TrainerError):
    """The model exists on the hub but the requested revision (branch, tag or sha) does not."""
    type = "RevisionNotFound"


class UnsupportedMethod(TrainerError):
    """The method, optimizer or quantization cannot run here (unknown, or not on this hardware)."""
    type = "UnsupportedMethod"


class ModelTooLarge(TrainerError):
    """A full fine-tune whose estimated memory (parameters x bytes per parameter + activations) exceeds
    the device's total memory: refused before any weight is loaded, since it could only end in an OOM."""
    type = "ModelTooLarge"


class CheckpointRejected(TrainerError):
    """`--resume-from` names a checkpoint this trainer cannot continue: another state version, a missing,
    unreadable or unloadable file, parameters that do not match the model, another run's identity.

    Exit 3, not 2: the spec is fine, only this checkpoint is not. The caller falls back to an older
    checkpoint, then to a fresh start, instead of failing the run or retrying the same checkpoint.
    """
    type = "CheckpointRejected"
    exit_code = EXIT_CHECKPOINT_REJECTED


class EngineUnsupported(TrainerError):
    """`eval.engine: torch` on a model the torch engine cannot load (no weights transformers can read,
    an architecture it does not know, an adapter PEFT rejects)."""
    type = "EngineUnsupported"


class ExportParity(TrainerError):
    """ONNX Runtime disagrees with PyTorch beyond the tolerance: a retry would reproduce it."""
    type = "ExportParity"


def claim_stdout():
    global _events
    if _events is not None:
        return
    sys.stdout.flush()
    _events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _clean(v):
    # JSON has no NaN/Infinity; the TypeScript reader would choke on Python's defaults.
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class ProtocolError(TypeError):
    """An emit() that does not match EVENTS: a bug in the trainer, never the caller's input."""


def _kind_ok(kind, v):
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "ints":
        return isinstance(v, list) and all(_kind_ok("int", x) for x in v)
    if kind == "floats":  # no null inside a list: a timing is always a number
        return isinstance(v, list) and all(_kind_ok("float", x) and x is not None and math.isfinite(x) for x in v)
    return isinstance(v, str)


def check_event(event, fields):
    """Raise ProtocolError unless `fields` are exactly what EVENTS says `event` carries."""
    schema = EVENTS.get(event)
    if schema is None:
        raise ProtocolError(f"event: got {event!r}; expected one of {', '.join(EVENTS)}")
    missing = [f for f in schema if f not in fields]
    extra = [f for f in fields if f not in schema]
    if missing or extra:
        raise ProtocolError(f"{event} event: missing {missing}, unknown {extra}; expected exactly {', '.join(schema)}")
    for name, kind in schema.items():
        if not _kind_ok(kind, fields[name]):
            raise ProtocolError(f"{event} event: {name}: got {fields[name]!r} ({type(fields[name]).__name__}); expected {kind}")


def emit(event, **fields):
    check_event(event, fields)
    line = json.dumps({"event": event, **{k: _clean(v) for k, v in fields.items()}})
    out = _events or sys.stdout
    out.write(line + "\n")
    out.flush()


def log(msg):
    print(f"[trainer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
