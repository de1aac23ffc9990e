"""int8 variant of an export (trainer/quantize.py): a valid int8 graph with the export's I/O, the
lm_head kept float32, and the greedy-token parity against fp32 recorded in engine.json."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from trainer.events import InvalidSpec, ModelNotFound
from trainer.export import export
from trainer.onnx_graph import graph_inputs, io_names
from trainer.quantize import (MIN_AGREEMENT, PARITY_NEW_TOKENS, PARITY_PROMPTS, lm_head_nodes, parity_prompts,
                              prompt_feed, quantize)
from trainer.smoothquant import CALIBRATION_TEXTS, smooth
from trainer.spec import parse_export_spec, parse_quantize_spec


@pytest.fixture(scope="module")
def fp32_export(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp32") / "onnx"
    export(parse_export_spec({"modelPath": tiny["llama"], "outputDir": str(out), "dtype": "float32"}))
    return str(out)


def do_quantize(fp32_dir, tokenizer_dir, out, **extra):
    return quantize(parse_quantize_spec({"onnxDir": fp32_dir, "outputDir": str(out), "tokenizerDir": tokenizer_dir,
                                         **extra}))


@pytest.mark.parametrize("scheme,op", [("dynamic", "MatMulInteger"), ("smoothquant", "MatMulInteger"),
                                       ("per-token", "MatMulIntegerToFloat"), ("matmul-nbits", "MatMulNBits")])
def test_int8_graph_keeps_the_io_and_the_lm_head_and_records_parity(fp32_export, tiny, tmp_path, events, scheme, op):
    engine = do_quantize(fp32_export, tiny["llama"], tmp_path / "int8", scheme=scheme)
    graph = onnx.load(str(tmp_path / "int8" / "model.onnx"))
    ops = [n.op_type for n in graph.graph.node]
    assert op in ops
    lm_head = [n for n in graph.graph.node if n.name in engine["quantization"]["nodesKept"]]
    assert [n.op_type for n in lm_head] == ["MatMul"]  # the lm_head stays a float32 MatMul
    sess = ort.InferenceSession(str(tmp_path / "int8" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == graph_inputs(engine["numLayers"])
    assert [o.name for o in sess.get_outputs()] == io_names(engine["numLayers"])[1]
    with open(tmp_path / "int8" / "engine.json") as f:
        saved = json.load(f)
    assert saved == engine and saved["weightDtype"] == "int8" and saved["quantization"]["scheme"] == scheme
    parity = saved["precisionParity"]
    assert parity["tokens"] == len(PARITY_PROMPTS) * PARITY_NEW_TOKENS and parity["threshold"] == MIN_AGREEMENT
    assert 0 <= parity["agreement"] <= 1 and parity["belowThreshold"] == (parity["agreement"] < MIN_AGREEMENT)
    ev = events.read()[-1]
    assert ev["event"] == "quantize" and ev["agreement"] == parity["agreement"] and ev["scheme"] == scheme
    assert ev["bytes"] < os.path.getsize(os.path.join(fp32_export, "model.onnx"))


def test_below_the_threshold_is_marked_not_refused(fp32_export, tiny, tmp_path, events):
    engine = do_quantize(fp32_export, tiny["llama"], tmp_path / "int8", minAgreement=1.0)
    parity = engine["precisionParity"]
    assert parity["threshold"] == 1.0 and parity["belowThreshold"] == (parity["agreement"] < 1.0)
    assert os.path.isfile(tmp_path / "int8" / "model.onnx")


def test_agreement_is_one_against_itself(fp32_export, tiny):
    from trainer.quantize import parity_prompts, token_parity
    with open(os.path.join(fp32_export, "engine.json")) as f:
        engine = json.load(f)
    prompts = parity_prompts(tiny["llama"], engine["vocabSize"])
    path = os.path.join(fp32_export, "model.onnx")
    assert token_parity(path, path, engine, prompts, MIN_AGREEMENT)["agreement"] == 1.0
    assert all(np.array(p).min() >= 0 for p in prompts)


def test_spec_errors_name_the_field(fp32_export, tiny, tmp_path):
    with pytest.raises(ModelNotFound, match=r"onnxDir: got .*; expected a directory with model.onnx"):
        parse_quantize_spec({"onnxDir": str(tmp_path), "outputDir": str(tmp_path / "o"), "tokenizerDir": tiny["llama"]})
    with pytest.raises(InvalidSpec, match=r'scheme: got "int4"; expected one of dynamic, smoothquant, per-token, matmul-nbits'):
        parse_quantize_spec({"onnxDir": fp32_export, "outputDir": str(tmp_path / "o"), "tokenizerDir": tiny["llama"],
                             "scheme": "int4"})
    with pytest.raises(InvalidSpec, match=r"minAgreement"):
        parse_quantize_spec({"onnxDir": fp32_export, "outputDir": str(tmp_path / "o"), "tokenizerDir": tiny["llama"],
                             "minAgreement": 1.5})


@pytest.mark.parametrize("large", [False, True])  # True: weights saved as external data (a 7B export's path)
def test_smoothing_keeps_the_fp32_function_and_finds_every_norm_and_mlp_input(fp32_export, tiny, tmp_path, large):
    """SmoothQuant's rescaling is exact in fp32: the smoothed graph's logits equal the export's, and
    each layer's q/k/v and gate/up inputs (after a norm) and down_proj input (the MLP) are smoothed."""
    src = os.path.join(fp32_export, "model.onnx")
    with open(os.path.join(fp32_export, "engine.json")) as f:
        engine = json.load(f)
    calibration = [prompt_feed(engine, p) for p in parity_prompts(tiny["llama"], engine["vocabSize"], CALIBRATION_TEXTS)]
    dst = str(tmp_path / "smoothed.onnx")
    done = smooth(src, dst, lm_head_nodes(onnx.load(src)), calibration, large=large)
    assert os.path.exists(f"{dst}.data") == large
    layers = engine["numLayers"]
    assert done["groups"] == 3 * layers and done["norm"] == 2 * layers and done["mlp"] == layers
    before = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(dst, providers=["CPUExecutionProvider"])
    feed = prompt_feed(engine, parity_prompts(tiny["llama"], engine["vocabSize"])[0])
    a, b = before.run(["logits"], feed)[0], after.run(["logits"], feed)[0]
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * float(np.abs(a).max()))
    smoothed = onnx.load(dst).graph
    inits = {i.name: numpy_helper.to_array(i) for i in smoothed.initializer}
    q_proj = next(n for n in smoothed.node if n.op_type == "MatMul" and "layers.0/self_attn/q_proj" in n.name)
    norm = next(n for n in smoothed.node if q_proj.input[0] in n.output)
    gamma = next(inits[i] for i in norm.input if i in inits)
    assert not np.allclose(gamma, 1.0)  # the rescaling happened (the random-init γ is all ones); the function did not change


def _one_matmul(tmp_path, w, rows):
    """A graph of one MatMul x·w (x: [1, rows, K]) and its per-token int8 variant: (src, dst)."""
    from onnx import TensorProto, helper
    from trainer.pertoken import quantize_per_token
    k, o = w.shape
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, o])],
                              [numpy_helper.from_array(w, "w")])
    src, dst = str(tmp_path / "fp32.onnx"), str(tmp_path / "int8.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    assert quantize_per_token(src, dst, [], large=False) == {"matmuls": 1, "inputs": 1}
    assert "MatMul" not in [n.op_type for n in onnx.load(dst).graph.node]
    return src, dst


def _per_token_exact(x, w):
    """The per-token scheme in exact integer arithmetic (numpy, int64 sums): what the graph must
    compute on any host, whatever its int8 kernel (pertoken.py's docstring)."""
    from trainer.pertoken import EPS, QMAX
    x2 = x.reshape(-1, x.shape[-1]).astype(np.float32)
    s_x = np.maximum(np.maximum(x2.max(1), -x2.min(1)), np.float32(EPS)) / np.float32(QMAX)
    codes = np.clip(np.round(x2 / s_x[:, None]) + 128, 0, 255).astype(np.int64) - 128
    s_w = (np.maximum(np.abs(w).max(0), EPS) / QMAX).astype(np.float32)
    w_q = np.clip(np.round(w / s_w), -QMAX, QMAX).astype(np.int64)
    return ((codes @ w_q).astype(np.float32) * s_w * s_x[:, None]).reshape(*x.shape[:-1], w.shape[1])


def test_per_token_scales_each_row_by_its_own_range(tmp_path):
    """One MatMul, a batch whose second row is 1000x the others: each row keeps ~1% error (its own
    scale), where one scale per tensor would leave the small rows a single quantization level."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 48)).astype(np.float32)
    x = rng.standard_normal((1, 5, 64)).astype(np.float32)
    x[0, 1] *= 1000
    _, dst = _one_matmul(tmp_path, w, 5)
    y = ort.InferenceSession(dst, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ref = x @ w
    assert y.shape == ref.shape
    rel = np.linalg.norm(y - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert rel.max() < 0.02, rel


def test_per_token_is_exact_integer_arithmetic_on_this_host(tmp_path):
    """Rows of same-sign values against weight columns of the same sign: every u8×s8 product pair
    is at its largest. The graph must equal the exact integer emulation here, whatever kernel this
    CPU's ORT picks: int8 weights (MLAS's U8S8 kernel) clipped its int16 pair sums on AVX2
    without VNNI, 8–18% row error on an EPYC, while VNNI and AMX hosts never showed it."""
    rng = np.random.default_rng(2)
    w = np.abs(rng.standard_normal((256, 32))).astype(np.float32) + 1.0
    w[:, 1::2] *= -1
    x = (np.abs(rng.standard_normal((1, 6, 256))) + 1.0).astype(np.float32)
    x[0, 3] *= -40
    _, dst = _one_matmul(tmp_path, w, 6)
    y = ort.InferenceSession(dst, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    exact = _per_token_exact(x, w)
    rel = np.linalg.norm(y - exact, axis=-1) / np.linalg.norm(exact, axis=-1)
    assert rel.max() < 1e-5, rel
    fp32 = x @ w
    assert (np.linalg.norm(y - fp32, axis=-1) / np.linalg.norm(fp32, axis=-1)).max() < 0.02


def test_per_token_mlp_defers_up_row_scales_to_down(tmp_path):
    """act(x·Wg) ⊙ (x·Wu) → ·Wd, rows of very different ranges: `up` skips its row Mul (down applies
    those scales), `gate` and `down` keep theirs, and every row stays within 3% of fp32."""
    from onnx import TensorProto, helper
    from trainer.pertoken import quantize_per_token
    rng = np.random.default_rng(1)
    wg, wu = (rng.standard_normal((64, 96)).astype(np.float32) for _ in range(2))
    wd = rng.standard_normal((96, 64)).astype(np.float32)
    x = rng.standard_normal((2, 5, 64)).astype(np.float32)
    x[1, 2] *= 50
    nodes = [helper.make_node("MatMul", ["x", "wg"], ["g"], name="gate"),
             helper.make_node("MatMul", ["x", "wu"], ["u"], name="up"),
             helper.make_node("Sigmoid", ["g"], ["s"], name="sig"),
             helper.make_node("Mul", ["g", "s"], ["a"], name="silu"),
             helper.make_node("Mul", ["a", "u"], ["h"], name="mul"),
             helper.make_node("MatMul", ["h", "wd"], ["y"], name="down")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, None, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, None, 64])],
                              [numpy_helper.from_array(w, n) for w, n in ((wg, "wg"), (wu, "wu"), (wd, "wd"))])
    src, dst = str(tmp_path / "fp32.onnx"), str(tmp_path / "int8.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    assert quantize_per_token(src, dst, [], large=False) == {"matmuls": 3, "inputs": 2}
    names = [n.name for n in onnx.load(dst).graph.node]
    assert sorted(n for n in names if n.endswith("/MulRow")) == ["pt/down/MulRow", "pt/gate/MulRow"]
    assert "pt/h/MulDeferred" in names
    y = ort.InferenceSession(dst, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g = x @ wg
    ref = ((g / (1 + np.exp(-g))) * (x @ wu)) @ wd
    rel = np.linalg.norm(y - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert rel.max() < 0.03, rel
