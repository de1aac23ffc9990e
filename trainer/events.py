"""stdout is a protocol (docs/contracts.md §2): JSON lines only, one object per line, flushed.

`claim_stdout()` moves file descriptor 1 onto stderr and keeps a private handle to the real
stdout, so a stray print from any library (or C extension) can never corrupt the event stream.
"""
import json
import math
import os
import sys
import time

_events = None  # the real stdout once claim_stdout() ran; until then sys.stdout (tests capture it)


class TrainerError(Exception):
    """A failure a retry would repeat: the CLI prints an `error` event and exits with `exit_code`."""
    type = "TrainerError"
    exit_code = 2


class InvalidSpec(TrainerError):
    """The spec is malformed: a missing or unknown field, a bad value, a missing data file."""
    type = "InvalidSpec"


class ModelNotFound(TrainerError):
    """`modelPath` (or an adapter directory) does not hold a loadable model."""
    type = "ModelNotFound"


class UnsupportedMethod(TrainerError):
    """The method, optimizer or quantization cannot run here (unknown, or not on this hardware)."""
    type = "UnsupportedMethod"


class CheckpointRejected(TrainerError):
    """`--resume-from` names a checkpoint this trainer cannot continue: another state version, a missing,
    unreadable or unloadable file, parameters that do not match the model, another run's identity.

    Exit 3, not 2: the spec is fine, only this checkpoint is not. The caller falls back to an older
    checkpoint, then to a fresh start, instead of failing the run or retrying the same checkpoint.
    """
    type = "CheckpointRejected"
    exit_code = 3


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


def emit(event, **fields):
    line = json.dumps({"event": event, **{k: _clean(v) for k, v in fields.items()}})
    out = _events or sys.stdout
    out.write(line + "\n")
    out.flush()


def log(msg):
    print(f"[trainer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
