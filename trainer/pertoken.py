"""Int8 MatMuls with activations quantized per token (scheme `per-token`), after SmoothQuant.

`quantize_dynamic`'s DynamicQuantizeMatMul quantizes a MatMul's activations with one scale per
tensor: in a batch of prefills, the one position with the largest value sets the step for every
other position of every prompt. Here each row (token) of X gets its own scale, and each output
channel of W its own (symmetric, computed here from the fp32 weights):

    X2 = reshape(X, [-1, K]);  s_x = max(|X2|, axis 1) / 127   ([N], at run time)
    Q  = QuantizeLinear(X2, s_x, 128, axis 0)                  (uint8 codes, zero point 128)
    W_q = round(W / s_w) + 128,  s_w = max(|W|, axis 0) / 127  (uint8 codes, zero point 128)
    Y  = reshape(MatMulIntegerToFloat(Q, W_q, 1, s_w, 128, 128) ⊙ s_x, [..., O])

Both sides are uint8 (MLAS's U8U8 GEMM) so that the graph computes exactly on every x86 host. The
U8S8 GEMM (int8 weights) is exact only with VNNI or AMX: for AVX2 without VNNI (vpmaddubsw) it adds
each pair of u8×s8 products into a saturating int16, and 2·255·127 = 64,770 clips. That cost 8–18%
row error and 43 of 80 greedy answers equal to fp32 on an AVX2-only EPYC (Zen 3), where U8U8 keeps
63 of 80. 7-bit weights would also fit under 32,767, but they doubled the weights' share of the
flips (argmax = fp32 at 0.912 of 2,379 demo positions with 7-bit weights alone, 0.960 with 8-bit).
U8U8 widens to int16 before multiplying: on AVX2 it ran the demo's prompts at 1.21× fp32 (U8S8
7-bit 1.33×); it does not use VNNI's or AMX's u8×s8 instructions. An export is made once and
evaluated on whichever worker picks it up, so the graph must not depend on the host.

The GEMM's output stage applies the column scales s_w; one Mul applies the row scales. On
SmolLM2-135M this keeps 1.8× fp32's prefill speed of DynamicQuantizeMatMul's 1.9× (the same
prefill, 2 threads), where MatMulInteger followed by Cast and two Muls kept 1.3×.
MatMuls that share an input (q/k/v, gate/up) share its quantization. max|X2| per row is
max(ReduceMax, −ReduceMin): two reads of X2 instead of an |X2| temporary written and read.

The MLP's `up` row scales are deferred: h = act(gate) ⊙ up feeds only `down`, whose per-token
quantization is blind to a positive factor per row (the codes of h ⊙ r are those of h, the scale
is r times), so `up` skips its row Mul and `down` multiplies its own row scales (a [N] vector)
by `up`'s. That is one full-size Mul per layer fewer. The graph keeps the export's I/O; only
MatMuls with a constant 2-D weight outside `exclude` change.
"""
import numpy as np

from .smoothquant import _graph_maps, _save

QMAX = 127.0  # codes are 128 ± QMAX, activations and weights alike
EPS = 1e-8  # an all-zero row keeps a finite scale (its codes are all 128, its output 0)


def quantize_per_token(src, dst, exclude, large):
    """Writes the per-token int8 graph of `src` to `dst`; returns {"matmuls": n, "inputs": m}."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    model = onnx.load(src)
    graph = model.graph
    consts = _graph_maps(graph)[0]
    exclude = set(exclude)
    targets = [n for n in graph.node if n.op_type == "MatMul" and n.name not in exclude
               and n.input[1] in consts and len(consts[n.input[1]].dims) == 2]
    inits = []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    shared = {
        "one": const("pt.axis1", np.array([1], np.int64)),
        "eps": const("pt.eps", np.array(EPS, np.float32)),
        "qmax": const("pt.qmax", np.array(QMAX, np.float32)),
        "zp_f": const("pt.zp_f", np.array(128.0, np.float32)),
        "zp": const("pt.zp", np.array(128, np.uint8)),
        "zero": const("pt.zero", np.array(0.0, np.float32)),
        "unit": const("pt.unit", np.array(1.0, np.float32)),
        "start": const("pt.start", np.array([0], np.int64)),
        "last": const("pt.last", np.array([-1], np.int64)),
    }
    replaced = {}  # MatMul name -> the nodes that stand for it
    quantized = {}  # input name -> (codes, row scales, leading shape)
    deferred = _deferred_row_scales(graph, targets)  # up MatMul name -> the down MatMul's input
    later = {}  # a down MatMul's input -> the row scales [N, 1] its up MatMul left to it
    for mm in targets:
        x = mm.input[0]
        weight = numpy_helper.to_array(consts[mm.input[1]]).astype(np.float32)
        k, o = weight.shape
        p = f"pt/{mm.name}"
        nodes = []
        if x not in quantized:
            q = f"pt/{x}"
            flat = const(f"{q}.flat", np.array([-1, k], np.int64))
            nodes += [
                helper.make_node("Reshape", [x, flat], [f"{q}.x2"], name=f"{q}/Reshape"),
                helper.make_node("ReduceMax", [f"{q}.x2"], [f"{q}.hi"], name=f"{q}/ReduceMax", axes=[1], keepdims=0),
                helper.make_node("ReduceMin", [f"{q}.x2"], [f"{q}.lo"], name=f"{q}/ReduceMin", axes=[1], keepdims=0),
                helper.make_node("Neg", [f"{q}.lo"], [f"{q}.nlo"], name=f"{q}/Neg"),
                helper.make_node("Max", [f"{q}.hi", f"{q}.nlo", shared["eps"]], [f"{q}.maxe"], name=f"{q}/Max"),
                helper.make_node("Div", [f"{q}.maxe", shared["qmax"]], [f"{q}.scale"], name=f"{q}/Scale"),  # [N]
                # QuantizeLinear per axis 0 wants a zero point of the scale's shape: 128 for every row
                helper.make_node("Mul", [f"{q}.scale", shared["zero"]], [f"{q}.z0"], name=f"{q}/Zero"),
                helper.make_node("Add", [f"{q}.z0", shared["zp_f"]], [f"{q}.z128"], name=f"{q}/Zp"),
                helper.make_node("Cast", [f"{q}.z128"], [f"{q}.zp"], name=f"{q}/ZpCast", to=TensorProto.UINT8),
                helper.make_node("QuantizeLinear", [f"{q}.x2", f"{q}.scale", f"{q}.zp"], [f"{q}.codes"],
                                 name=f"{q}/QuantizeLinear", axis=0),
                helper.make_node("Unsqueeze", [f"{q}.scale", shared["one"]], [f"{q}.col"], name=f"{q}/Unsqueeze"),
                helper.make_node("Shape", [x], [f"{q}.shape"], name=f"{q}/Shape"),
                helper.make_node("Slice", [f"{q}.shape", shared["start"], shared["last"]], [f"{q}.lead"],
                                 name=f"{q}/Slice"),
            ]
            col = f"{q}.col"
            if x in later:  # the row scales its up MatMul did not apply
                nodes.append(helper.make_node("Mul", [f"{q}.col", later[x]], [f"{q}.colr"], name=f"{q}/MulDeferred"))
                col = f"{q}.colr"
            quantized[x] = (f"{q}.codes", col, f"{q}.lead")
        codes, scale, lead = quantized[x]
        w_scale = np.maximum(np.abs(weight).max(0), EPS) / QMAX
        w_q = (np.clip(np.round(weight / w_scale), -QMAX, QMAX) + 128).astype(np.uint8)  # U8U8 (module docstring)
        w_name = const(f"{p}.w", w_q)
        ws_name = const(f"{p}.ws", w_scale.astype(np.float32))
        width = const(f"{p}.o", np.array([o], np.int64))
        nodes += [
            # the GEMM's output stage applies the column scales (one a_scale of 1: rows are scaled after);
            # both zero points are 128
            helper.make_node("MatMulIntegerToFloat", [codes, w_name, shared["unit"], ws_name, shared["zp"], shared["zp"]],
                             [f"{p}.y1"], name=f"{p}/MatMulIntegerToFloat", domain="com.microsoft"),
        ]
        if mm.name in deferred:
            later[deferred[mm.name]] = scale
            scaled = f"{p}.y1"
        else:
            nodes.append(helper.make_node("Mul", [f"{p}.y1", scale], [f"{p}.y2"], name=f"{p}/MulRow"))
            scaled = f"{p}.y2"
        nodes += [
            helper.make_node("Concat", [lead, width], [f"{p}.shape"], name=f"{p}/Concat", axis=0),
            helper.make_node("Reshape", [scaled, f"{p}.shape"], [mm.output[0]], name=f"{p}/Reshape"),
        ]
        replaced[mm.name] = nodes
    kept = []
    for n in graph.node:
        kept.extend(replaced.get(n.name, [n]) if n.op_type == "MatMul" else [n])
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(inits)
    _prune(graph)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _save(model, dst, large)
    return {"matmuls": len(replaced), "inputs": len(quantized)}


def _deferred_row_scales(graph, targets):
    """{up MatMul name: h} for each target MatMul `up` whose output only feeds a Mul whose output h
    only feeds a target MatMul (the MLP's act(gate) ⊙ up → down): there `up`'s row scales can be
    applied by `down` instead (module docstring)."""
    readers = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    names = {n.name for n in targets}
    out = {}
    for up in targets:
        y = up.output[0]
        mul = readers.get(y, [])
        if len(mul) != 1 or mul[0].op_type != "Mul" or y in outputs or list(mul[0].input).count(y) != 1:
            continue
        h = mul[0].output[0]
        down = readers.get(h, [])
        if (len(down) == 1 and down[0].name in names and down[0].input[0] == h and down[0].input[1] != h
                and h not in outputs):
            out[up.name] = h
    # a Mul of two such outputs (a bilinear unit) would need both factors: defer neither
    hs = list(out.values())
    return {u: h for u, h in out.items() if hs.count(h) == 1}


def _prune(graph):
    """Drops what no node reads now: the replaced fp32 weights (a shared one still read elsewhere
    stays) and the exporter's Identity aliases of them, until nothing more goes."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if n.op_type == "Identity" and n.output[0] not in used]
        for n in dead:
            graph.node.remove(n)
        if dead:
            continue
        keep = [i for i in graph.initializer if i.name in used]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        return
