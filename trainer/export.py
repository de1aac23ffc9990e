"""`python -m trainer export`: base model or merged adapter → model.onnx + engine.json, with parity.

Weights in float16 on a CUDA device, float32 on CPU (`dtype: auto`; export_dtype): half the bytes
of a 7B export (14 GB, not 28) and no 28 GB float32 copy in host memory. float16, not bfloat16:
ONNX Runtime's CPU and CUDA providers both run float16 graphs (CPU by inserting casts), not
bfloat16 ones. The graph's inputs and outputs stay float32 whatever the weights (onnx_graph.py
casts at the edges), so engine.json's `dtype` and the engine are unchanged; `weightDtype` says
which it is. LoRA, AdaLoRA and (IA)³ merge into a reload of the base in that dtype (QLoRA's adapter
too — 4-bit layers cannot take a merge); prompt tuning cannot merge and rides inside the graph
(onnx_graph.py); full fine-tuning exports its own weights.

Parity is part of the export, not a test: the reference is the unmerged PEFT model's own
PyTorch forward over the whole sequence without a cache; ONNX Runtime runs a left-padded prefill
from an empty past (all logits, and again keeping only the last position's), then one decode
step on the returned presents. The check is relative: max |Δ logits| over real (non-pad)
positions ÷ max |logits| of the reference must stay under `maxRelDiff` (default by weight dtype,
PARITY_REL_TOLERANCE), and under `maxAbsDiff` where the spec sets one; else the export fails
(exit 2). The torch model is freed before ONNX Runtime loads the graph, so the two never hold the
weights at once.
"""
import gc
import hashlib
import json
import os
import shutil
import time

import numpy as np
import torch

from .events import ExportParity, emit, log
from .methods import load_base
from .onnx_graph import LOGITS_TO_KEEP, OnnxDecoder, export_onnx, io_names, model_dims, prefix_kv

MERGEABLE = ("lora", "qlora", "adalora", "ia3")
EXTERNAL_DATA_BYTES = 1.8e9  # protobuf's hard limit is 2 GiB; leave headroom for the graph itself
# max |Δ logits| / max |logits|. float32: observed ~1e-6 on the tiny models and SmolLM2, so 1e-4
# leaves room for longer reductions. float16: a 10-bit mantissa (~5e-4 per rounding) accumulated
# through the layers; observed ~5e-4 on the tiny models (test_export.py), 1e-2 for 7B depth.
PARITY_REL_TOLERANCE = {"float32": 1e-4, "float16": 1e-2}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# Trained in bf16 with activations beyond float16's 65504 (HF's Gemma docs: no fp16): `auto`
# exports them in float32, which the parity check would otherwise fail on as inf/NaN.
FLOAT16_UNSAFE = ("gemma", "gemma2", "gemma3", "gemma3_text")


def export_dtype(requested, model_type=None):
    """(weight dtype name, device): `auto` is float16 on CUDA where there is one (float32 for the
    families in FLOAT16_UNSAFE), float32 on CPU. Traced on CUDA whenever there is one: the weights
    then never take host memory in float32."""
    cuda = torch.cuda.is_available()
    if requested == "auto":
        requested = "float16" if cuda and model_type not in FLOAT16_UNSAFE else "float32"
    return requested, "cuda" if cuda else "cpu"


def _load(spec, dtype=torch.float32, device="cpu"):
    """Returns (reference model, model to export, soft prompt embeddings or None, tokenizer dir)."""
    from peft import PeftConfig, PeftModel
    if spec.adapterDir is None:
        base = _base(spec.modelPath, dtype=dtype, device=device)
        return base, base, None, spec.modelPath
    if spec.method == "full":
        model = _base(spec.adapterDir, "adapterDir", dtype, device)
        return model, model, None, spec.adapterDir if _has_tokenizer(spec.adapterDir) else spec.modelPath
    config = PeftConfig.from_pretrained(spec.adapterDir)
    if spec.method == "prompt_tuning":
        # The adapter holds the trained prompt; TEXT init would reload a tokenizer from the
        # training machine's path just to be overwritten, so skip it.
        config.prompt_tuning_init = "RANDOM"
    peft_model = PeftModel.from_pretrained(_base(spec.modelPath, dtype=dtype, device=device), spec.adapterDir,
                                           config=config).eval()
    if spec.method == "prompt_tuning":
        with torch.no_grad():
            prompt = peft_model.get_prompt(batch_size=1).to(dtype)
        base = peft_model.get_base_model()
        return peft_model, base, prompt, spec.modelPath
    return peft_model, None, None, spec.modelPath  # merged after the reference is computed


def _base(path, field="modelPath", dtype=torch.float32, device="cpu"):
    model = load_base(path, device, dtype, field=field)
    model.config._attn_implementation = "eager"  # plain matmul/softmax: the most portable ONNX
    model.config.use_cache = True
    return model.eval()


def _has_tokenizer(path):
    return os.path.isfile(os.path.join(path, "tokenizer_config.json"))


def parity_batch(vocab, seed=0, length=7, pad=3):
    """Two rows, the second left-padded like the engine's batches, plus one decode token each."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, length + 1), generator=g)
    mask = torch.ones(2, length + 1, dtype=torch.long)
    mask[1, :pad] = 0
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, pos


@torch.no_grad()
def reference_logits(ref, ids, mask, pos, prompt=None):
    """float32 logits on the CPU, computed on the model's own device and dtype."""
    dev = ref.device
    ids, mask, pos = ids.to(dev), mask.to(dev), pos.to(dev)
    if prompt is None:
        return ref(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float().cpu()
    # PEFT's prompt-tuning forward ignores position_ids (it counts from the first virtual token
    # regardless of padding), so the padded reference is assembled from its own prompt here.
    base, p, b = ref.get_base_model(), prompt.shape[1], ids.shape[0]
    embeds = torch.cat([prompt.expand(b, -1, -1), base.get_input_embeddings()(ids)], dim=1)
    full_mask = torch.cat([torch.ones(b, p, dtype=mask.dtype, device=dev), mask], dim=1)
    full_pos = torch.cat([torch.arange(p, device=dev).expand(b, p), pos + p], dim=1)
    return base(inputs_embeds=embeds, attention_mask=full_mask, position_ids=full_pos).logits[:, p:].float().cpu()


def run_parity(onnx_path, config, ids, mask, pos, ref_logits):
    import onnxruntime as ort
    num_layers, kv_heads, head_dim = model_dims(config)
    inputs, _ = io_names(num_layers)
    # CUDA where this onnxruntime build has it (onnxruntime-gpu), which the freed torch model made room for.
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    sess = ort.InferenceSession(onnx_path, providers=providers)
    s = ids.shape[1] - 1
    feed = {"input_ids": ids[:, :s].numpy(), "attention_mask": mask[:, :s].numpy(), "position_ids": pos[:, :s].numpy()}
    feed.update({n: np.zeros((ids.shape[0], kv_heads, 0, head_dim), np.float32) for n in inputs[3:]})
    prefill = sess.run(None, {**feed, LOGITS_TO_KEEP: np.array(0, np.int64)})  # 0: every position
    # The engine's prefill keeps only the last position: it must be that column of the full one.
    last = sess.run(["logits"], {**feed, LOGITS_TO_KEEP: np.array(1, np.int64)})[0]
    if last.shape[1] != 1:
        raise ExportParity(f"{LOGITS_TO_KEEP}=1 returned logits of shape {list(last.shape)}; expected [b, 1, vocab]")
    feed = {"input_ids": ids[:, s:].numpy(), "attention_mask": mask.numpy(), "position_ids": pos[:, s:].numpy(),
            LOGITS_TO_KEEP: np.array(1, np.int64)}
    feed.update(dict(zip(inputs[3:], prefill[1:])))
    decode = sess.run(None, feed)
    valid = mask[:, :s].numpy().astype(bool)
    ref = ref_logits.numpy()
    d_prefill = max(float(np.abs(prefill[0] - ref[:, :s])[valid].max()),
                    float(np.abs(last[:, 0] - ref[:, s - 1]).max()))
    d_decode = float(np.abs(decode[0] - ref[:, s:]).max())
    if decode[1].shape[2] != s + 1:
        raise ExportParity(f"present.0.key has length {decode[1].shape[2]} after one decode step; expected {s + 1}")
    return d_prefill, d_decode


def relative_diff(diff, ref_logits, mask):
    """max |Δ| ÷ max |reference| over the positions parity compares (real tokens; the decode step)."""
    s = ref_logits.shape[1] - 1
    ref = ref_logits.numpy()
    scale = max(float(np.abs(ref[:, :s])[mask[:, :s].numpy().astype(bool)].max()), float(np.abs(ref[:, s:]).max()))
    return diff / scale if scale > 0 else float("inf")


def check_parity(spec, dtype_name, diff, rel):
    tol = spec.maxRelDiff if spec.maxRelDiff is not None else PARITY_REL_TOLERANCE[dtype_name]
    if not rel <= tol:  # `not <=` also catches NaN
        raise ExportParity(f"max |logits(onnx) - logits(pytorch)| / max |logits(pytorch)| = {rel:.3g} "
                           f"({dtype_name} weights); expected <= {tol:g}")
    if spec.maxAbsDiff is not None and not diff <= spec.maxAbsDiff:
        raise ExportParity(f"max |logits(onnx) - logits(pytorch)| = {diff:.3g}; expected <= {spec.maxAbsDiff:g}")
    return tol


def eos_and_pad(tok, config, gen_config):
    """The EOS ids (generation config, tokenizer, model config, in that order) and the pad id that
    engine.json records; the torch engine (generate.py) takes the same, so both stop alike."""
    eos = []
    for source in (getattr(gen_config, "eos_token_id", None), tok.eos_token_id, config.eos_token_id):
        for i in source if isinstance(source, list) else [source]:
            if isinstance(i, int) and i not in eos:
                eos.append(i)
    pad = next((i for i in (tok.pad_token_id, getattr(gen_config, "pad_token_id", None), config.pad_token_id, *eos)
                if isinstance(i, int)), 0)
    return eos, pad


def engine_config(config, gen_config, tok_dir, prefix_len, method):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tok_dir)
    eos, pad = eos_and_pad(tok, config, gen_config)
    bos = tok.bos_token_id if tok.bos_token_id is not None else config.bos_token_id
    num_layers, kv_heads, head_dim = model_dims(config)
    return {"numLayers": num_layers, "numKvHeads": kv_heads, "headDim": head_dim, "vocabSize": config.vocab_size,
            "bosTokenId": bos, "eosTokenIds": eos, "padTokenId": pad,
            # The soft prompt occupies the first positions: the engine gets what is left.
            "maxPositions": config.max_position_embeddings - prefix_len, "dtype": "float32",  # graph I/O
            "numVirtualTokens": prefix_len, "method": method, "modelType": config.model_type,
            **tokenizer_sha256(tok_dir)}


def tokenizer_sha256(tok_dir):
    """{"tokenizerSha256": sha256 of tokenizer.json} where there is one: speculative decoding
    compares token ids, so the engine refuses a draft whose tokenizer file differs from the
    target's even when the vocabulary sizes agree."""
    path = os.path.join(tok_dir, "tokenizer.json")
    if not os.path.isfile(path):
        return {}
    with open(path, "rb") as f:
        return {"tokenizerSha256": hashlib.sha256(f.read()).hexdigest()}


def _finish_onnx(tmp_dir, final_path):
    """Move the graph into place; large models become model.onnx + one model.onnx.data file.

    Over 2 GB the TorchScript exporter writes one file per tensor next to model.onnx. They are
    gathered into model.onnx.data one tensor at a time: `onnx.load(load_external_data=True)` +
    `save_model` would hold a second copy of every weight next to the torch model (4 GB more at
    1B parameters in fp32, 28 GB at 7B), which is what an export on a host sized for one copy can
    not afford.
    """
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data
    src = os.path.join(tmp_dir, "model.onnx")
    extra = [f for f in os.listdir(tmp_dir) if f != "model.onnx"]
    size = sum(os.path.getsize(os.path.join(tmp_dir, f)) for f in os.listdir(tmp_dir))
    if not extra and size < EXTERNAL_DATA_BYTES:
        os.replace(src, final_path)
        return
    model = onnx.load(src, load_external_data=False)
    location = os.path.basename(final_path) + ".data"
    with open(os.path.join(os.path.dirname(final_path), location), "wb") as data:
        for tensor in _get_all_tensors(model):
            if uses_external_data(tensor):
                info = ExternalDataInfo(tensor)
                with open(os.path.join(tmp_dir, info.location), "rb") as f:
                    f.seek(info.offset or 0)
                    raw = f.read(info.length) if info.length else f.read()
                del tensor.external_data[:]
            elif tensor.HasField("raw_data") and len(tensor.raw_data) >= 1024:
                raw = tensor.raw_data
                tensor.ClearField("raw_data")
            else:
                continue  # small tensors stay inline, as onnx.save_model's size_threshold=1024 keeps them
            data.seek(-data.tell() % 64, 1)  # 64-byte aligned offsets, so ORT can map tensors in place
            offset = data.tell()
            data.write(raw)
            # By hand: onnx's set_external_data insists on raw_data being present, and it is gone here.
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(raw)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del raw
    onnx.save_model(model, final_path)


def _free(*_models):
    """Drop the torch weights before ONNX Runtime loads its copy (callers `del` their names too)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def export(spec):
    t0 = time.perf_counter()
    with open(os.path.join(spec.adapterDir if spec.method == "full" and spec.adapterDir else spec.modelPath,
                           "config.json")) as f:
        model_type = json.load(f).get("model_type")
    dtype_name, device = export_dtype(spec.dtype, model_type)
    log(f"exporting {dtype_name} weights, traced on {device}")
    ref, model, prompt, tok_dir = _load(spec, TORCH_DTYPES[dtype_name], device)
    config = (model or ref.get_base_model()).config
    ids, mask, pos = parity_batch(config.vocab_size)
    ref_logits = reference_logits(ref, ids, mask, pos, prompt)
    if model is None:
        log(f"merging the {spec.method} adapter into the {dtype_name} base")
        model = ref.merge_and_unload().eval()
    prefix = prefix_kv(model, prompt) if prompt is not None else None
    wrapper = OnnxDecoder(model, prefix).eval()

    out = os.path.abspath(spec.outputDir)
    work = f"{out}.tmp-{os.getpid()}"  # renamed into place only when complete and at parity
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "raw"))
    try:
        with torch.no_grad():
            export_onnx(wrapper, os.path.join(work, "raw", "model.onnx"))
        gen_config, prefix_len = getattr(model, "generation_config", None), wrapper.prefix_len
        del ref, model, wrapper, prefix, prompt
        _free()
        _finish_onnx(os.path.join(work, "raw"), os.path.join(work, "model.onnx"))
        shutil.rmtree(os.path.join(work, "raw"))
        t_export = time.perf_counter() - t0
        d_prefill, d_decode = run_parity(os.path.join(work, "model.onnx"), config, ids, mask, pos, ref_logits)
        diff = max(d_prefill, d_decode)
        rel = relative_diff(diff, ref_logits, mask)
        tol = check_parity(spec, dtype_name, diff, rel)
        log(f"parity: prefill {d_prefill:.3g}, decode {d_decode:.3g}, relative {rel:.3g} (tolerance {tol:g})")
        engine = engine_config(config, gen_config, tok_dir, prefix_len, spec.method if spec.adapterDir else "base")
        engine["weightDtype"] = dtype_name
        with open(os.path.join(work, "engine.json"), "w") as f:
            json.dump(engine, f, indent=1)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    emit("export", outputDir=out, maxAbsDiff=diff, prefillMaxAbsDiff=d_prefill, decodeMaxAbsDiff=d_decode,
         maxRelDiff=rel, weightDtype=dtype_name, bytes=size, exportSeconds=round(t_export, 2), seconds=round(time.perf_counter() - t0, 2))
    return engine
