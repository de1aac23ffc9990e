"""CUDA-only (skipped without a GPU; bench/gpu-check.sh runs them where one is lent): gradient
checkpointing under bf16 autocast and 4-bit QLoRA, the resources event's CUDA figures, and the
float16 export traced on the GPU."""
import os

import pytest
import torch
from test_resources import METHOD_CASES, run_counting_recompute

from trainer import resources
from trainer.export import export
from trainer.spec import parse_export_spec

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("method", ["lora", "qlora", "prompt_tuning", "full"])
def test_checkpointing_on_cuda_recomputes_with_the_same_losses(monkeypatch, make_spec, events, method):
    runs = {}
    for on in (False, True):
        spec = make_spec(method=dict(METHOD_CASES[method]), out=f"gc-{on}", maxSteps=3, gradientCheckpointing=on)
        spec["device"] = "cuda"
        runs[on] = run_counting_recompute(monkeypatch, spec)
    (off, calls_off), (on, calls_on) = runs[False], runs[True]
    assert (calls_off, calls_on) == (3, 6)
    # bf16 recompute may reorder reductions: close, not bitwise.
    assert on["losses"] == pytest.approx(off["losses"], rel=1e-2)


def test_resources_on_cuda(make_spec, events):
    from trainer.spec import parse_train_spec
    from trainer.train import train
    spec = make_spec(out="res", maxSteps=3)
    spec["device"] = "cuda"
    assert train(parse_train_spec(spec)) == 0
    res = [e for e in events.read() if e["event"] == "resources"][0]
    assert res["peakMemorySource"] == "cuda.max_memory_allocated" and res["peakMemoryBytes"] > 0
    if resources.peak_flops("cuda") is not None and torch.cuda.is_bf16_supported():
        assert 0 < res["mfu"] < 1


def test_auto_exports_float16_traced_on_cuda(tiny, tmp_path, events):  # llama: not in FLOAT16_UNSAFE
    engine = export(parse_export_spec({"modelPath": tiny["llama"], "outputDir": str(tmp_path / "onnx")}))
    ev = events.read()[-1]
    assert engine["weightDtype"] == "float16" and engine["dtype"] == "float32"
    assert ev["maxRelDiff"] <= 1e-2
    assert os.path.isfile(tmp_path / "onnx" / "model.onnx")
