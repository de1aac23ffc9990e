"""Training on tiny models: events, checkpoints, learning, exact resume for every method, SIGTERM."""
import json
import math
import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, parse_events

from trainer.events import CheckpointRejected, InvalidSpec, UnsupportedMethod
from trainer.spec import parse_train_spec
from trainer.train import train

CHECKPOINT_FILES = {"optimizer.safetensors", "scheduler.safetensors", "rng.safetensors", "trainer_state.json",
                    "trainable.safetensors"}


def run(spec, events, resume_from=None):
    code = train(parse_train_spec(spec), resume_from=resume_from)
    return code, events.read()


def steps(evs):
    return [e for e in evs if e["event"] == "step"]


def test_events_checkpoints_and_final(make_spec, events):
    spec = make_spec(maxSteps=4, checkpointEverySteps=2)
    code, evs = run(spec, events)
    assert code == 0
    assert [e["event"] for e in evs] == ["start", "step", "step", "checkpoint", "step", "step", "checkpoint", "resources",
                                       "done"]
    start, done = evs[0], evs[-1]
    assert start["step"] == 0 and start["maxSteps"] == 4 and start["device"] == "cpu"
    assert 0 < start["trainableParams"] < start["totalParams"]
    for e in steps(evs):
        assert e["loss"] > 0 and e["gradNorm"] > 0 and e["tokensPerSec"] > 0 and e["lr"] == 1e-3
    ckpt = evs[3]
    assert ckpt["step"] == 2 and ckpt["dir"] == os.path.join(spec["outputDir"], "checkpoints", "step-2")
    assert CHECKPOINT_FILES | {"adapter_model.safetensors", "adapter_config.json"} <= set(os.listdir(ckpt["dir"]))
    state = json.load(open(os.path.join(ckpt["dir"], "trainer_state.json")))
    assert state["step"] == 2 and state["position"] == 4 and len(state["losses"]) == 2
    assert state["lrs"] == [e["lr"] for e in steps(evs)[:2]]
    log = json.load(open(os.path.join(done["finalDir"], "training_log.json")))
    assert log["lrs"] == [e["lr"] for e in steps(evs)]  # the report's lr curve, one per step like losses
    assert done["trainLoss"] == pytest.approx(sum(log["losses"]) / 4)  # lossWindow 10 > 4 steps: all of them
    assert done["trainPerplexity"] == pytest.approx(math.exp(done["trainLoss"]))
    assert os.path.isfile(os.path.join(done["finalDir"], "adapter_model.safetensors"))
    assert not [d for d in os.listdir(os.path.dirname(ckpt["dir"])) if d.startswith(".")]  # no temp dirs left


def test_loss_decreases_on_a_tiny_overfit_set(make_spec, events):
    spec = make_spec(method={"method": "lora", "r": 8, "alpha": 16, "dropout": 0.0}, maxSteps=12, lr=1e-2,
                     batchSize=4)
    _, evs = run(spec, events)
    losses = [e["loss"] for e in steps(evs)]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.3, losses


# One case per method, each with a different optimizer/scheduler so their states are resumed too.
RESUME_CASES = {
    "lora": ({"method": "lora", "r": 4, "alpha": 8, "dropout": 0.1}, {"optimizer": "adamw", "scheduler": "linear"}),
    "qlora": ({"method": "qlora", "r": 4, "alpha": 8, "dropout": 0.1}, {"optimizer": "adamw_8bit"}),
    "adalora": ({"method": "adalora", "initR": 6, "targetR": 2, "tinit": 1, "tfinal": 2, "deltaT": 1, "alpha": 8,
                 "dropout": 0.1}, {"optimizer": "adamw_8bit", "scheduler": "cosine"}),
    "ia3": ({"method": "ia3"}, {"optimizer": "sgd", "lr": 0.5}),
    "prompt_tuning": ({"method": "prompt_tuning", "numVirtualTokens": 4, "initText": "answer the question"},
                      {"optimizer": "adamw", "scheduler": "cosine"}),
    "full": ({"method": "full"}, {"optimizer": "adamw", "scheduler": "linear"}),
}


@pytest.mark.parametrize("method", list(RESUME_CASES))
def test_resume_continues_the_uninterrupted_curve(make_spec, events, method):
    m, training = RESUME_CASES[method]
    spec = make_spec(method=m, out="a", maxSteps=8, checkpointEverySteps=4, warmupSteps=2, batchSize=3,
                     **{"lr": 1e-2, **training})
    _, whole = run(spec, events)
    ckpt = os.path.join(spec["outputDir"], "checkpoints", "step-4")
    if method == "adalora":
        assert os.path.isfile(os.path.join(ckpt, "adalora.safetensors"))
    resumed_spec = {**spec, "outputDir": spec["outputDir"] + "-resumed"}
    _, resumed = run(resumed_spec, events, resume_from=ckpt)
    assert resumed[0]["event"] == "start" and resumed[0]["step"] == 4
    a, b = steps(whole)[4:], steps(resumed)
    assert [e["step"] for e in b] == [5, 6, 7, 8]
    # CPU, float32, same process and thread count: the trainer promises bit-exact resume, so equality.
    for x, y in zip(a, b):
        assert (y["loss"], y["gradNorm"], y["lr"]) == (x["loss"], x["gradNorm"], x["lr"]), (x, y)
    assert resumed[-1]["trainLoss"] == whole[-1]["trainLoss"]
    # The curves in training_log.json span the whole run, the steps before the checkpoint included.
    logs = [json.load(open(os.path.join(r[-1]["finalDir"], "training_log.json"))) for r in (whole, resumed)]
    assert logs[1]["lrs"] == logs[0]["lrs"] == [e["lr"] for e in steps(whole)]
    assert logs[1]["losses"] == logs[0]["losses"]


def test_resume_from_a_checkpoint_without_lrs_keeps_the_curve_aligned(make_spec, events):
    # Checkpoints written before the trainer kept lrs: the steps before it get None, later ones their lr.
    spec = make_spec(maxSteps=4, checkpointEverySteps=2)
    _, whole = run(spec, events)
    ckpt = os.path.join(spec["outputDir"], "checkpoints", "step-2")
    path = os.path.join(ckpt, "trainer_state.json")
    state = json.load(open(path))
    del state["lrs"]
    json.dump(state, open(path, "w"))
    _, resumed = run({**spec, "outputDir": spec["outputDir"] + "-resumed"}, events, resume_from=ckpt)
    log = json.load(open(os.path.join(resumed[-1]["finalDir"], "training_log.json")))
    assert log["lrs"] == [None, None] + [e["lr"] for e in steps(whole)[2:]]
    assert len(log["losses"]) == 4


def test_resume_refuses_a_checkpoint_of_another_run(make_spec, events):
    spec = make_spec(maxSteps=2, checkpointEverySteps=2)
    run(spec, events)
    other = make_spec(maxSteps=2, seed=8, out="other")
    # CheckpointRejected (exit 3), not InvalidSpec (2): the spec is fine, this checkpoint is not (issue 12 point 4).
    with pytest.raises(CheckpointRejected, match=r"--resume-from: the checkpoint has seed=7; the spec implies 8"):
        train(parse_train_spec(other), resume_from=os.path.join(spec["outputDir"], "checkpoints", "step-2"))


def test_unknown_target_module_lists_the_real_ones(make_spec):
    spec = make_spec(method={"method": "lora", "targetModules": ["c_attn"]})
    with pytest.raises(InvalidSpec, match=r"method.targetModules: got \['c_attn'\] .* expected names from .*'q_proj'"):
        train(parse_train_spec(spec))


def test_qlora_trains_on_4bit_layers(make_spec):
    import bitsandbytes as bnb
    from trainer.methods import build_model
    model = build_model(parse_train_spec(make_spec(method={"method": "qlora"})), "cpu", __import__("torch").float32)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    weight = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert weight.quant_state.quant_type == "nf4" and weight.quant_state.nested  # double quantization


def test_adamw_8bit_never_falls_back_silently(monkeypatch):
    import bitsandbytes as bnb
    import torch
    from trainer.methods import build_optimizer

    def broken(*a, **k):
        raise RuntimeError("no 8-bit kernel for this device")
    monkeypatch.setattr(bnb.optim, "AdamW8bit", broken)
    with pytest.raises(UnsupportedMethod, match=r'training.optimizer: "adamw_8bit" cannot run on cpu'):
        build_optimizer("adamw_8bit", [torch.nn.Parameter(torch.zeros(2))], 1e-3, "cpu")


def test_sigterm_checkpoints_then_exits_75(make_spec, tmp_path):
    spec = make_spec(maxSteps=100000, checkpointEverySteps=100000, optimizer="adamw_8bit")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "train", "--spec", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    for line in proc.stdout:  # wait until training is really under way
        lines.append(line)
        if '"event": "step"' in line and json.loads(line)["step"] >= 2:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    evs = parse_events("".join(lines) + out)
    assert proc.returncode == 75
    last_step = steps(evs)[-1]["step"]
    assert evs[-1]["event"] == "checkpoint" and evs[-1]["step"] == last_step
    state = json.load(open(os.path.join(evs[-1]["dir"], "trainer_state.json")))
    assert state["step"] == last_step and CHECKPOINT_FILES <= set(os.listdir(evs[-1]["dir"]))


def test_qlora_without_4bit_kernels_is_unsupported(monkeypatch):
    import bitsandbytes as bnb
    import torch
    from trainer.methods import probe_4bit

    def broken(*a, **k):
        raise NotImplementedError("no 4-bit kernel for this device")
    monkeypatch.setattr(bnb.nn, "Linear4bit", broken)
    with pytest.raises(UnsupportedMethod, match=r'method.method: "qlora" needs bitsandbytes 4-bit kernels on cpu'):
        probe_4bit("cpu", torch.float32)
