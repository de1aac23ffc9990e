"""`python -m trainer quantize`: an fp32 export (model.onnx + engine.json) → its int8 variant, with parity.

Four schemes, all int8 weights on the constant MatMul weights, measured on onnxruntime-node 1.30
with SmolLM2-135M on the demo's QA prompts (docs/contracts.md §2, "int8 exports"):
- `per-token` (default; pertoken.py): SmoothQuant rescaling (smoothquant.py), int8 weights per
  output channel as uint8 codes around 128 (MLAS's U8U8 GEMM: exact on every x86 host), activations
  quantized per token at run time (MatMulIntegerToFloat). The closest to fp32 of the fast ones.
- `dynamic`: quantize_dynamic, per-channel int8 weights (reduce_range: 7 bits, so the U8S8 GEMM is
  exact without VNNI); ORT fuses the result into DynamicQuantizeMatMul (activations quantized per
  tensor to uint8 at run time). Per-tensor activations: in a batch, the largest value anywhere sets
  every position's step, so its tokens drift most.
- `smoothquant`: SmoothQuant rescaling, then `dynamic`.
- `matmul-nbits`: MatMulNBits with bits=8, symmetric blocks of BLOCK_SIZE, accuracy_level 4
  (activations quantized per block). Closest to fp32, but slower than fp32 itself in that ORT.

What stays float32, on purpose: the lm_head (the last MatMul before `logits`: every token's
distribution goes through it, so it moves greedy tokens most, and with num_logits_to_keep it runs on
one position per item, so quantizing it buys little on a prefill-bound workload) and the token
embeddings (a Gather: a lookup, not a matmul; quantizing it saves bytes, not time).

Parity is part of the quantization, as it is of the export: on PARITY_PROMPTS (fixed QA-shaped
text, tokenized with the model's own tokenizer) the fp32 graph decodes PARITY_NEW_TOKENS greedy
tokens; the int8 graph then scores prompt + those tokens in one pass, and `agreement` is the share of
positions where its argmax is the fp32 token (teacher-forced, so one early flip does not count for
every later token). Below `minAgreement` the export is still written but marked
(`precisionParity.belowThreshold`), so the run's result and the report say so instead of using it
silently.
"""
import json
import os
import shutil
import time

import numpy as np

from .events import InvalidSpec, emit, log

SMOOTHED = ("smoothquant", "per-token")  # the schemes that smooth the fp32 graph first (smoothquant.py)
BLOCK_SIZE = 32  # MatMulNBits' quantization block along K; 32 is its finest, the closest to fp32
# Token agreement below which an int8 export is marked: 0.9 is one greedy flip in ten positions,
# about where SmolLM2-135M's extractive answers start to change (docs/contracts.md §2).
MIN_AGREEMENT = 0.9
PARITY_NEW_TOKENS = 16
# 12 prompts × 16 tokens = 192 positions. With the first 4 alone (64 positions) one flip moved
# the agreement by 0.016: SmolLM2's per-token export measured 0.891 there and 0.927 on all 12
# (bench/README.md, 2026-12-08). Extractive, multiple-choice, yes/no and narrative, as UnifiedQA.
PARITY_PROMPTS = (
    "what is the capital of france? \\n paris is the capital and largest city of france.",
    "who wrote hamlet? \\n hamlet is a tragedy written by william shakespeare around 1600.",
    "how many legs does a spider have? \\n spiders are arachnids with eight legs and two body parts.",
    "what color is the sky on a clear day? \\n on a clear day the sky looks blue because air scatters blue light.",
    "which gas do plants take in from the air? \\n (a) oxygen (b) carbon dioxide (c) helium (d) nitrogen",
    "where does the river nile end? \\n the nile flows north through egypt and empties into the mediterranean sea.",
    "is the moon larger than the earth? \\n the moon's diameter is about a quarter of the earth's.",
    "what did the fox want from the crow? \\n a crow sat in a tree holding a piece of cheese, and a hungry fox below "
    "praised her voice until she sang and dropped it.",
    "when did the first person walk on the moon? \\n neil armstrong stepped onto the moon on july 20, 1969.",
    "what do bees make? \\n (a) milk (b) silk (c) honey (d) wool",
    "why do metals feel cold to the touch? \\n metals conduct heat away from the skin faster than wood or cloth.",
    "who painted the mona lisa? \\n the mona lisa is a portrait painted by leonardo da vinci in the early 1500s.",
)
EXTERNAL_DATA_BYTES = 1.8e9  # as export.py: protobuf's 2 GiB limit


def lm_head_nodes(model):
    """Names of the MatMul nodes that produce `logits` (through casts and reshapes only)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    out, seen = [], set()
    stack = ["logits"]
    while stack:
        node = producers.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in ("MatMul", "Gemm"):
            out.append(node.name)
        elif node.op_type in ("Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Add"):
            stack.extend(i for i in node.input[:1])
    if not out:
        raise InvalidSpec("onnxDir: no MatMul produces `logits`; expected an export of `python -m trainer export`")
    return out


def prompt_feed(engine, prompt):
    """One prompt's full-prompt pass (empty past), as the engine's prefill feeds it."""
    from .onnx_graph import LOGITS_TO_KEEP, io_names
    past_names = io_names(engine["numLayers"])[0][3:]
    return {"input_ids": np.array([prompt], np.int64), "attention_mask": np.ones((1, len(prompt)), np.int64),
            "position_ids": np.arange(len(prompt), dtype=np.int64)[None], LOGITS_TO_KEEP: np.array(1, np.int64),
            **{p: np.zeros((1, engine["numKvHeads"], 0, engine["headDim"]), np.float32) for p in past_names}}


def quantize_graph(src, dst, scheme, exclude, calibration=None):
    """Writes the int8 graph of `src` to `dst` (one file, or + dst.data over EXTERNAL_DATA_BYTES).

    `calibration`: the feeds SmoothQuant takes its activation maxima from (scheme smoothquant)."""
    import onnx
    large = os.path.getsize(src) + sum(os.path.getsize(os.path.join(os.path.dirname(src), f))
                                       for f in os.listdir(os.path.dirname(src)) if f.endswith(".data")) > EXTERNAL_DATA_BYTES
    if scheme in SMOOTHED:
        from .smoothquant import smooth
        smoothed = os.path.join(os.path.dirname(dst), "smoothed.onnx")
        done = smooth(src, smoothed, exclude, calibration, large)
        log(f"smoothed {done['groups']} MatMul inputs ({done.get('norm', 0)} after a norm, {done.get('mlp', 0)} MLP)")
        if scheme == "per-token":
            from .pertoken import quantize_per_token
            done = {**done, "perToken": quantize_per_token(smoothed, dst, exclude, large)}
        else:
            quantize_graph(smoothed, dst, "dynamic", exclude)
        for f in (smoothed, f"{smoothed}.data"):
            if os.path.exists(f):
                os.remove(f)
        return done
    if scheme == "dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        # reduce_range: 7-bit weights; MLAS's AVX2 (non-VNNI) U8S8 kernel clips 8-bit ones' pair sums (pertoken.py)
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude, use_external_data_format=large,
                         extra_options={"MatMulConstBOnly": True})
        return
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=4, bits=8,
                                          op_types_to_quantize=("MatMul",))
    quant = MatMulNBitsQuantizer(onnx.load(src), nodes_to_exclude=exclude, algo_config=config)
    quant.process()
    quant.model.save_model_to_file(dst, use_external_data_format=large)


def greedy_tokens(sess, engine, prompt, n):
    """n greedy tokens after `prompt` (a list of ids), batch 1, through the graph's KV cache."""
    from .onnx_graph import LOGITS_TO_KEEP, io_names
    past_names = io_names(engine["numLayers"])[0][3:]
    past = {p: np.zeros((1, engine["numKvHeads"], 0, engine["headDim"]), np.float32) for p in past_names}
    ids, out = list(prompt), []
    step = ids
    for _ in range(n):
        total = len(ids) - len(step)
        feed = {"input_ids": np.array([step], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
                "position_ids": np.arange(total, len(ids), dtype=np.int64)[None], LOGITS_TO_KEEP: np.array(1, np.int64),
                **past}
        logits, *presents = sess.run(None, feed)
        past = dict(zip(past_names, presents))
        token = int(logits[0, -1].argmax())
        out.append(token)
        ids.append(token)
        step = [token]
    return out


def teacher_forced_argmax(sess, engine, prompt, continuation):
    """The graph's argmax at each continuation position, given prompt + continuation in one pass."""
    from .onnx_graph import LOGITS_TO_KEEP, io_names
    ids = list(prompt) + list(continuation[:-1])
    past_names = io_names(engine["numLayers"])[0][3:]
    feed = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
            "position_ids": np.arange(len(ids), dtype=np.int64)[None],
            LOGITS_TO_KEEP: np.array(len(continuation), np.int64),
            **{p: np.zeros((1, engine["numKvHeads"], 0, engine["headDim"]), np.float32) for p in past_names}}
    return sess.run(["logits"], feed)[0][0].argmax(-1).tolist()


def token_parity(fp32_path, int8_path, engine, prompts, min_agreement):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    fp32 = ort.InferenceSession(fp32_path, opts, providers=["CPUExecutionProvider"])
    refs = [greedy_tokens(fp32, engine, p, PARITY_NEW_TOKENS) for p in prompts]
    del fp32
    int8 = ort.InferenceSession(int8_path, opts, providers=["CPUExecutionProvider"])
    got = [teacher_forced_argmax(int8, engine, p, r) for p, r in zip(prompts, refs)]
    total = sum(len(r) for r in refs)
    same = sum(int(a == b) for r, g in zip(refs, got) for a, b in zip(r, g))
    agreement = same / total
    return {"agreement": round(agreement, 4), "threshold": min_agreement, "belowThreshold": agreement < min_agreement,
            "tokens": total, "prompts": len(prompts)}


def parity_prompts(tokenizer_dir, vocab, texts=PARITY_PROMPTS):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    prompts = [tok(text)["input_ids"] for text in texts]
    if any(max(p) >= vocab for p in prompts):
        raise InvalidSpec(f"tokenizerDir: {tokenizer_dir}'s ids reach past the export's vocabSize {vocab}; "
                          "expected the tokenizer of the exported model")
    return prompts


def quantize(spec):
    t0 = time.perf_counter()
    src = os.path.join(spec.onnxDir, "model.onnx")
    with open(os.path.join(spec.onnxDir, "engine.json")) as f:
        engine = json.load(f)
    if engine.get("weightDtype", "float32") != "float32":
        raise InvalidSpec(f"onnxDir: weightDtype {engine.get('weightDtype')!r}; expected a float32 export")
    import onnx
    exclude = lm_head_nodes(onnx.load(src, load_external_data=False))
    out = os.path.abspath(spec.outputDir)
    work = f"{out}.tmp-{os.getpid()}"  # renamed into place only when complete
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        log(f"quantizing {src} to int8 ({spec.scheme}; float32 kept for {', '.join(exclude)} and the embeddings)")
        prompts = parity_prompts(spec.tokenizerDir, engine["vocabSize"])
        calibration = None
        if spec.scheme in SMOOTHED:
            from .smoothquant import CALIBRATION_TEXTS
            calibration = [prompt_feed(engine, p)
                           for p in parity_prompts(spec.tokenizerDir, engine["vocabSize"], CALIBRATION_TEXTS)]
        smoothing = quantize_graph(src, os.path.join(work, "model.onnx"), spec.scheme, exclude, calibration)
        t_quant = time.perf_counter() - t0
        threshold = spec.minAgreement if spec.minAgreement is not None else MIN_AGREEMENT
        parity = token_parity(src, os.path.join(work, "model.onnx"), engine, prompts, threshold)
        log(f"int8 token agreement with fp32: {parity['agreement']:.3f} over {parity['tokens']} greedy tokens "
            f"(threshold {threshold:g}{', BELOW' if parity['belowThreshold'] else ''})")
        engine.update(weightDtype="int8", precisionParity=parity,
                      quantization={"scheme": spec.scheme, "float32": ["lm_head", "embeddings"], "nodesKept": exclude,
                                    **({"blockSize": BLOCK_SIZE} if spec.scheme == "matmul-nbits" else {}),
                                    **({"smoothing": smoothing} if smoothing else {})})
        with open(os.path.join(work, "engine.json"), "w") as f:
            json.dump(engine, f, indent=1)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    emit("quantize", outputDir=out, scheme=spec.scheme, agreement=parity["agreement"], threshold=parity["threshold"],
         belowThreshold=parity["belowThreshold"], parityTokens=parity["tokens"], bytes=size,
         quantizeSeconds=round(t_quant, 2), seconds=round(time.perf_counter() - t0, 2))
    return engine
