"""SIGTERM: the handler records the step the signal arrived at (no I/O), the loop announces it in a
`preempting` event, and the checkpoint that follows holds every step up to it (zero steps lost)."""
import json
import os
import signal
import subprocess
import sys

from conftest import ROOT, parse_events

from trainer import train as train_module
from trainer.train import Preemption


def test_handler_records_the_signal_and_step_without_io(monkeypatch):
    def no_io(*a, **k):
        raise AssertionError("the signal handler must not write (it may interrupt a write to stdout)")
    monkeypatch.setattr(train_module, "log", no_io)
    monkeypatch.setattr(train_module, "emit", no_io)
    with Preemption() as stop:
        stop.step = 5
        stop._handle(signal.SIGTERM, None)
        stop.step = 6  # the loop finishes the step under way
        stop._handle(signal.SIGINT, None)  # a second signal does not move the recorded one
        assert stop.requested and stop.signal_name == "SIGTERM" and stop.signal_step == 5


def test_sigterm_emits_preempting_with_signal_step_before_the_checkpoint(make_spec, tmp_path):
    spec = make_spec(maxSteps=100000, checkpointEverySteps=100000)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "train", "--spec", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines, seen = [], 0
    for line in proc.stdout:
        lines.append(line)
        ev = json.loads(line)
        if ev["event"] == "step":
            seen = ev["step"]
            if seen >= 3:
                break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    evs = parse_events("".join(lines) + out)
    assert proc.returncode == 75
    kinds = [e["event"] for e in evs]
    pre = evs[kinds.index("preempting")]
    assert pre["signal"] == "SIGTERM"
    # The signal came after step `seen` was announced: it was completed when the signal arrived.
    assert pre["signalStep"] >= seen, (pre, seen)
    assert pre["step"] >= pre["signalStep"]
    assert kinds[-1] == "checkpoint" and kinds.index("preempting") < len(kinds) - 1
    ckpt = evs[-1]
    assert ckpt["step"] == pre["step"] == [e for e in evs if e["event"] == "step"][-1]["step"]
    state = json.load(open(os.path.join(ckpt["dir"], "trainer_state.json")))
    assert state["step"] >= pre["signalStep"]
