"""SmoothQuant (Xiao et al., 2023) on an fp32 ONNX export, before `quantize_dynamic`.

Dynamic int8 quantizes each MatMul's activations per tensor, so a few channels with large values
(every decoder LLM has them, in the same channels at every position) set the scale for all, and
the other channels keep only a few levels. Smoothing moves that range into the weights, which are
quantized per output channel: for a MatMul group sharing one input X (q/k/v, or gate/up) and a
diagonal s, X·W = (X·diag(1/s))·(diag(s)·W). The 1/s is folded into the op that makes X, so the
fp32 graph computes the same function (up to rounding):
- X = RMSNorm(h) ⊙ γ (the norm's last Mul, γ a constant vector): γ ← γ / s;
- X = silu(gate) ⊙ up, up = Y·W_up (the MLP's down_proj input): W_up[:, j] ← W_up[:, j] / s_j.
Other MatMul inputs (o_proj's: attention output) are left as they are. With a_j = max |X_j| over
calibration prompts and w_j = max |W[j, :]| over the group, s_j = a_j^α / w_j^(1-α) (α = 0.5, the
paper's default for Llama-like models).
"""
import os

import numpy as np

ALPHA = 0.5
# Calibration text (QA-shaped like the evaluation prompts, and not the parity prompts, which judge
# the result): channel maxima come from every position of these.
CALIBRATION_TEXTS = (
    "question: which river flows through the city of vienna? context: vienna lies on the danube, "
    "the second-longest river in europe, which crosses ten countries on its way to the black sea.",
    "is the following statement true? water boils at a lower temperature on a high mountain. answer yes or no.",
    "which of these is a mammal? (a) shark (b) dolphin (c) trout (d) octopus",
    "passage: the first transcontinental railroad in the united states was completed in 1869 when the "
    "union pacific and central pacific lines met at promontory summit, utah. question: where did the lines meet?",
    "summary: a young sailor is shipwrecked and spends years on an island, where he builds a shelter, "
    "keeps a calendar and finally signals a passing ship. question: how does he leave the island?",
    "What is 12 plus 30? The answer is 42. What is the chemical symbol for gold? The answer is",
)


def _graph_maps(graph):
    """(constants, producers, consumers). The exporter stores identical initializers once and
    feeds the repeats through Identity nodes (a random-init model's norms are all ones), so a
    constant is any name that an Identity chain leads back to an initializer: {name: initializer}."""
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    consts = dict(inits)
    for n in graph.node:
        name = n.output[0] if n.op_type == "Identity" else None
        src = n.input[0] if name else None
        while src is not None and src not in inits and producers.get(src) is not None \
                and producers[src].op_type == "Identity":
            src = producers[src].input[0]
        if name and src in inits:
            consts[name] = inits[src]
    return consts, producers, consumers


def _groups(graph, exclude):
    """{input name: (kind, fold target, [MatMul nodes])} for the inputs that can be smoothed."""
    constants, producers, consumers = _graph_maps(graph)
    by_input = {}
    for n in graph.node:
        if n.op_type != "MatMul" or n.name in exclude or n.input[1] not in constants:
            continue
        if len(constants[n.input[1]].dims) != 2:
            continue
        by_input.setdefault(n.input[0], []).append(n)
    groups = {}
    for x, mms in by_input.items():
        users = consumers.get(x, [])
        if any(u not in mms and u.op_type != "Shape" for u in users):
            continue  # X feeds something else too (a residual add): scaling it would change that
        p = producers.get(x)
        if p is None or p.op_type != "Mul":
            continue
        consts = [i for i in p.input if i in constants and len(constants[i].dims) == 1]
        if len(consts) == 1 and constants[consts[0]].dims[0] == constants[mms[0].input[1]].dims[0]:
            groups[x] = ("norm", consts[0], mms)
            continue
        ups = [producers.get(i) for i in p.input]
        ups = [u for u in ups if u is not None and u.op_type == "MatMul" and u.input[1] in constants
               and u.name not in exclude and len(consumers.get(u.output[0], [])) == 1]
        if len(ups) == 1:
            groups[x] = ("mlp", ups[0].name, mms)
    return groups


def _save(model, path, large):
    import onnx
    onnx.save(model, path, save_as_external_data=large, all_tensors_to_one_file=True,
              location=f"{os.path.basename(path)}.data")


def _channel_maxima(model, work, names, feeds_list, large):
    """max |x| per last-axis channel of each named tensor over every position of every feed."""
    import onnx
    import onnxruntime as ort
    have = {o.name for o in model.graph.output}
    added = [onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in have]
    model.graph.output.extend(added)
    path = os.path.join(work, "calibrate.onnx")
    _save(model, path, large)
    if large:  # saving moved the weights out to calibrate.onnx.data, deleted below: read them back in
        onnx.load_external_data_for_model(model, work)
    for _ in added:
        model.graph.output.pop()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the tensors addressable
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    maxima = {}
    for feed in feeds_list:
        for name, value in zip(names, sess.run(list(names), feed)):
            m = np.abs(value.reshape(-1, value.shape[-1])).max(0)
            maxima[name] = np.maximum(maxima[name], m) if name in maxima else m
    del sess
    for f in (path, f"{path}.data"):
        if os.path.exists(f):
            os.remove(f)
    return maxima


def smooth(src, dst, exclude, feeds_list, large, alpha=ALPHA):
    """Writes the smoothed fp32 graph of `src` to `dst` (+ dst.data when large); returns what it did."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(src)
    graph = model.graph
    groups = _groups(graph, set(exclude))
    if not groups:
        _save(model, dst, large)
        return {"groups": 0}
    maxima = _channel_maxima(model, os.path.dirname(dst), list(groups), feeds_list, large)
    consts = _graph_maps(graph)[0]
    nodes = {n.name: n for n in graph.node}
    use_count = {}
    for n in graph.node:
        for i in n.input:
            use_count[i] = use_count.get(i, 0) + 1

    def own(name, node):
        """The constant `name` as `node`'s own initializer (a shared one, or one reached through an
        Identity, is copied first and `node` rewired to the copy)."""
        init = consts[name]
        if init.name == name and use_count.get(name, 0) <= 1:
            return init
        copy = numpy_helper.from_array(numpy_helper.to_array(init).copy(), f"{name}.smooth.{node.name}")
        graph.initializer.append(copy)
        copy = graph.initializer[-1]  # append() stored a copy of the message: edit the one in the graph
        consts[copy.name] = copy
        node.input[list(node.input).index(name)] = copy.name
        use_count[name] -= 1
        use_count[copy.name] = 1
        return copy

    def put(init, array):
        init.CopyFrom(numpy_helper.from_array(array.astype(np.float32), init.name))

    kinds = {}
    for x, (kind, target, mms) in groups.items():
        weights = [own(m.input[1], m) for m in mms]
        arrays = [numpy_helper.to_array(w) for w in weights]
        w_max = np.max([np.abs(a).max(1) for a in arrays], axis=0)
        a_max = maxima[x]
        s = np.where((a_max > 0) & (w_max > 0), np.power(a_max, alpha) / np.power(np.maximum(w_max, 1e-8), 1 - alpha), 1.0)
        s = np.clip(s, 1e-5, 1e5).astype(np.float32)
        for w, a in zip(weights, arrays):
            put(w, a * s[:, None])
        if kind == "norm":
            producer = next(n for n in graph.node if x in n.output)
            gamma = own(target, producer)
            put(gamma, numpy_helper.to_array(gamma) / s)
        else:
            up = nodes[target]
            w_up = own(up.input[1], up)
            put(w_up, numpy_helper.to_array(w_up) / s[None, :])
        kinds[kind] = kinds.get(kind, 0) + 1
    _save(model, dst, large)
    return {"groups": len(groups), **kinds, "alpha": alpha}
