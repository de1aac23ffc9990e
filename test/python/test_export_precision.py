"""Export precision and parity (trainer/export.py): float16 weights with float32 graph I/O, the
relative tolerance, and the torch model freed before ONNX Runtime loads the graph. On CPU here;
`dtype: auto` picks float16 only on CUDA (test_gpu.py-style checks need a GPU)."""
import gc
import json
import os
import weakref

import numpy as np
import onnx
import pytest
import torch

import trainer.export as export_mod
from trainer.events import ExportParity
from trainer.export import PARITY_REL_TOLERANCE, export, export_dtype, relative_diff
from trainer.spec import parse_export_spec


def do_export(model_path, out_dir, **extra):
    return export(parse_export_spec({"modelPath": model_path, "outputDir": str(out_dir), **extra}))


def weight_types(path):
    model = onnx.load(os.path.join(path, "model.onnx"), load_external_data=False)
    return {onnx.TensorProto.DataType.Name(t.data_type) for t in model.graph.initializer if len(t.dims) == 2}


def io_types(path):
    model = onnx.load(os.path.join(path, "model.onnx"), load_external_data=False)
    return {onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type) for v in [*model.graph.output]} | {
        onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type) for v in model.graph.input
        if v.name.startswith("past_key_values")}


def test_auto_is_float32_on_cpu_and_float16_on_cuda_but_for_gemma(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert export_dtype("auto", "llama") == ("float32", "cpu")
    assert export_dtype("float16", "llama") == ("float16", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert export_dtype("auto", "llama") == ("float16", "cuda")
    assert export_dtype("auto", "mistral") == ("float16", "cuda")
    assert export_dtype("auto", "gemma") == ("float32", "cuda")  # overflows float16
    assert export_dtype("float32", "llama") == ("float32", "cuda")


@pytest.mark.parametrize("family", ["llama", "gemma", "mistral"])
def test_float16_weights_keep_float32_io_and_pass_relative_parity(tiny, tmp_path, events, family):
    engine = do_export(tiny[family], tmp_path / "onnx", dtype="float16")
    ev = events.read()[-1]
    assert ev["event"] == "export" and ev["weightDtype"] == "float16"
    assert engine["dtype"] == "float32" and engine["weightDtype"] == "float16"
    assert weight_types(tmp_path / "onnx") == {"FLOAT16"}
    assert io_types(tmp_path / "onnx") == {"FLOAT"}  # the engine feeds and reads Float32Array
    assert 0 < ev["maxRelDiff"] <= PARITY_REL_TOLERANCE["float16"]


def test_float16_halves_the_export(tiny, tmp_path, events):
    do_export(tiny["llama"], tmp_path / "a", dtype="float32")
    do_export(tiny["llama"], tmp_path / "b", dtype="float16")
    size32, size16 = (ev["bytes"] for ev in events.read() if ev["event"] == "export")
    assert size16 < 0.6 * size32


def test_the_tolerance_is_relative_to_the_logits(tiny, tmp_path, events):
    do_export(tiny["llama"], tmp_path / "ok", dtype="float16")
    rel = events.read()[-1]["maxRelDiff"]
    with pytest.raises(ExportParity, match=r"/ max \|logits\(pytorch\)\| = .* \(float16 weights\); expected <= "):
        do_export(tiny["llama"], tmp_path / "strict", dtype="float16", maxRelDiff=rel / 10)
    assert not os.path.exists(tmp_path / "strict")


def test_relative_diff_scales_by_the_largest_reference_logit_over_compared_positions():
    ref = torch.zeros(2, 4, 3)
    ref[0, 0, 0] = 10.0  # a real position
    ref[1, 0, 0] = 1000.0  # a pad position of row 1: not compared, not the scale
    mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
    assert relative_diff(0.5, ref, mask) == 0.05


def test_the_torch_model_is_freed_before_onnx_runtime_loads(tiny, tmp_path, events, monkeypatch):
    alive = {}
    load = export_mod._load

    def tracked(*a, **kw):
        ref, model, prompt, tok = load(*a, **kw)
        alive["ref"] = weakref.ref(ref)
        return ref, model, prompt, tok

    parity = export_mod.run_parity

    def checked(*a, **kw):
        gc.collect()
        alive["at_parity"] = alive["ref"]() is not None
        return parity(*a, **kw)

    monkeypatch.setattr(export_mod, "_load", tracked)
    monkeypatch.setattr(export_mod, "run_parity", checked)
    do_export(tiny["mistral"], tmp_path / "onnx")
    assert alive["at_parity"] is False


def test_relative_parity_on_smollm2(smollm2_dir, tmp_path, events):
    # A real model (135M, float32 on CPU): its logits reach ~20, where 1e-3 absolute was arbitrary.
    engine = do_export(smollm2_dir, tmp_path / "onnx")
    ev = events.read()[-1]
    assert engine["weightDtype"] == "float32"
    assert ev["maxRelDiff"] <= PARITY_REL_TOLERANCE["float32"]
    print(json.dumps({k: ev[k] for k in ("maxAbsDiff", "maxRelDiff", "bytes", "seconds")}))
    assert np.isfinite(ev["maxAbsDiff"])
