"""The trainer's stdout protocol and its part of the failure registry, held to the TypeScript side.

schema/trainer-protocol.json is generated from src/contracts/trainer-events.ts and
src/contracts/failures.ts (test/unit/trainer-protocol.test.ts fails when it is stale), so changing
either side alone fails one of the two tests: the same events with the same fields and kinds, the
same error types with the same exit codes, the same exit constants.
"""
import ast
import io
import json
import os

import pytest
from conftest import ROOT

import trainer.__main__ as cli
from trainer import events

PROTOCOL = json.load(open(os.path.join(ROOT, "schema", "trainer-protocol.json")))


def error_classes(cls=events.TrainerError):
    yield cls
    for sub in cls.__subclasses__():
        yield from error_classes(sub)


def test_events_match_the_typescript_union():
    assert events.EVENTS == PROTOCOL["events"]


def test_error_types_and_exit_codes_match_the_registry():
    ours = {c.type: c.exit_code for c in error_classes()}
    theirs = {t: f["exitCode"] for t, f in PROTOCOL["failures"].items()}
    assert ours == theirs
    # A TrainerError is by definition one a retry would repeat.
    assert all(not f["retryable"] for f in PROTOCOL["failures"].values())


def test_exit_constants_match_the_registry():
    codes = PROTOCOL["exitCodes"]
    assert (events.EXIT_DONE, events.EXIT_INVALID, events.EXIT_CHECKPOINT_REJECTED, events.EXIT_PREEMPTED) == (
        codes["done"], codes["invalid"], codes["checkpointRejected"], codes["preempted"])
    assert cli.EXIT_DONE == codes["done"]


@pytest.mark.parametrize("module", ["__main__.py", "train.py", "export.py", "checkpoint.py"])
def test_no_module_defines_its_own_exit_code(module):
    # train.py imports torch, so it is read, not imported: no EXIT_* assigned anywhere but events.py.
    tree = ast.parse(open(os.path.join(ROOT, "trainer", module)).read())
    assigned = [t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in ast.walk(n)
                if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store) and t.id.startswith("EXIT_")]
    assert assigned == []


def capture(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(events, "_events", out)
    return out


def test_emit_prints_a_valid_event_with_non_finite_floats_as_null(monkeypatch):
    out = capture(monkeypatch)
    events.emit("checkpoint", step=3, dir="/x/step-3", loss=float("nan"))
    events.emit("done", step=3, finalDir="/x/final", trainLoss=1, trainPerplexity=None)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"event": "checkpoint", "step": 3, "dir": "/x/step-3", "loss": None},
        {"event": "done", "step": 3, "finalDir": "/x/final", "trainLoss": 1, "trainPerplexity": None}]


@pytest.mark.parametrize("event, fields, match", [
    ("checkpoint", {"step": 3, "dir": "/x"}, r"checkpoint event: missing \['loss'\]"),
    ("checkpoint", {"step": 3, "dir": "/x", "loss": 1.0, "lr": 0.1}, r"unknown \['lr'\]"),
    ("checkpoint", {"step": "3", "dir": "/x", "loss": 1.0}, r"step: got '3' \(str\); expected int"),
    ("checkpoint", {"step": True, "dir": "/x", "loss": 1.0}, r"step: got True \(bool\); expected int"),
    ("checkpoint", {"step": 3.0, "dir": "/x", "loss": 1.0}, r"step: got 3.0 \(float\); expected int"),
    ("preempting", {"signal": None, "signalStep": 1, "step": 1}, r"signal: got None .*expected str"),
    ("chekpoint", {"step": 3}, r"event: got 'chekpoint'; expected one of start, step"),
])
def test_emit_rejects_a_line_off_the_schema(monkeypatch, event, fields, match):
    out = capture(monkeypatch)
    with pytest.raises(events.ProtocolError, match=match):
        events.emit(event, **fields)
    assert out.getvalue() == "", "nothing reaches stdout"
