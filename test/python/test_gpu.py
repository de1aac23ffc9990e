"""CUDA-only checks (skipped without a GPU): bf16 training, 4-bit QLoRA and 8-bit Adam on real
kernels, resume on the device, and export of a GPU-trained adapter on the CPU."""
import math
import os

import pytest
from test_train import RESUME_CASES, run, steps

from trainer.spec import parse_export_spec
from trainer.export import export

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("method", list(RESUME_CASES))
def test_every_method_trains_on_cuda(make_spec, events, method):
    m, _ = RESUME_CASES[method]
    spec = make_spec(method=m, maxSteps=4, checkpointEverySteps=2, optimizer="adamw_8bit", lr=1e-2)
    spec["device"] = "cuda"
    code, evs = run(spec, events)
    assert code == 0 and evs[0]["device"] == "cuda"
    assert all(math.isfinite(e["loss"]) and math.isfinite(e["gradNorm"]) for e in steps(evs))


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_resume_on_cuda_and_export_on_cpu(make_spec, events, tmp_path, method):
    m, training = RESUME_CASES[method]
    spec = make_spec(method=m, out="a", maxSteps=6, checkpointEverySteps=3, lr=1e-2, **training)
    spec["device"] = "cuda"
    _, whole = run(spec, events)
    ckpt = os.path.join(spec["outputDir"], "checkpoints", "step-3")
    _, resumed = run({**spec, "outputDir": spec["outputDir"] + "-r"}, events, resume_from=ckpt)
    for x, y in zip(steps(whole)[3:], steps(resumed)):
        # bf16 kernels may pick different reduction orders across processes: close, not bitwise.
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-2)
    export(parse_export_spec({"modelPath": spec["modelPath"], "adapterDir": os.path.join(spec["outputDir"], "final"),
                              "method": method, "outputDir": str(tmp_path / "onnx"), "dtype": "float32"}))
    assert events.read()[-1]["maxAbsDiff"] < 1e-4
