"""Sizes from config.json alone: parameter counts, the memory a training run needs, and MFU.

Why from the config: the memory guard for `full` must refuse before any weight is read (a 7B load
alone takes minutes and 14-28 GB), and `peftgrid validate` (src/config/resources.ts, the same
formulas in TypeScript) has only the config file. Shapes covered: Llama, Mistral, Qwen2, Gemma and
Gemma 2 (the decoder families of the study); others return None and the trainer counts on the
meta device instead (no memory, exact).

The estimate (bytes), per parameter N and trainable parameter T, batch B, length S, hidden H,
layers L, vocabulary V, activation bytes a (2 under bf16 autocast, 4 in float32):
- weights: full 4·N (float32 master weights, trainer/methods.py) + 2·N on CUDA (autocast's bf16
  copies of them); PEFT 2·N on CUDA (bf16), 4·N on CPU; QLoRA 0.52·N_linear + 2·N_other (NF4 with
  double-quantized constants; embeddings, norms and lm_head stay bf16);
- trainable: 4·T weights (PEFT keeps adapters in float32) + 4·T gradients + optimizer states
  (adamw 8·T, adamw_8bit 2·T, sgd 0);
- activations: without checkpointing L·B·S·H·17·a (Korthikanti et al. 2022: 34·B·S·H bytes per layer
  at 16 bit, flash/SDPA attention so no S² term); with it L·B·S·H·a (each layer's input) + one
  layer's 17·B·S·H·a recomputed; logits B·S·V·(a + 8) (their float32 upcast in the loss, and its grad);
- overhead: on CUDA 1 GiB for the context and cuBLAS workspaces; on CPU 1 GiB for the process
  itself (Python, torch, transformers resident; measured: SmolLM2 full fine-tune at batch 4 x 256,
  estimate 4.2 GiB without it, peak RSS 5.3 GiB).
It is an estimate: allocator fragmentation and the data's real lengths move it by ±10-20%.
"""
import os

GRADIENT_CHECKPOINTING_MIN_PARAMS = 1_000_000_000  # 'auto' turns it on from here (a 1B model at
# batch 8 x 512 keeps ~4 GB of activations without it; below, the recompute costs more than it saves)

GIB = 1024**3
CUDA_OVERHEAD_BYTES = GIB
HOST_PROCESS_BYTES = GIB  # CPU training: what the trainer process holds before any tensor
OPTIMIZER_STATE_BYTES = {"adamw": 8, "adamw_8bit": 2, "sgd": 0}  # per trainable parameter
ACTIVATION_VALUES_PER_LAYER = 17  # 34 bytes per token per hidden unit at 16 bit

# Dense bf16 peak FLOP/s by device name (vendor datasheets, no sparsity). Matched as substrings of
# torch.cuda.get_device_name(), first match wins, so the more specific names come first.
PEAK_BF16_FLOPS = [
    ("H200 NVL", 835e12), ("H200", 989e12), ("GH200", 989e12),
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12),
    ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12), ("L40", 181e12), ("L4", 121e12),
    ("A10", 125e12), ("A6000", 155e12),
]

_TIED_BY_DEFAULT = {"gemma": True, "gemma2": True}  # what each HF config class assumes when the key is absent


def _shape(config):
    c = dict(config)
    kind = c.get("model_type")
    if kind not in ("llama", "mistral", "qwen2", "gemma", "gemma2"):
        return None
    h, heads = c["hidden_size"], c["num_attention_heads"]
    head_dim = c.get("head_dim") or h // heads
    return dict(kind=kind, h=h, i=c["intermediate_size"], layers=c["num_hidden_layers"], heads=heads,
                kv=c.get("num_key_value_heads") or heads, head_dim=head_dim, vocab=c["vocab_size"],
                tied=c.get("tie_word_embeddings", _TIED_BY_DEFAULT.get(kind, False)),
                qkv_bias=bool(c.get("attention_bias")) or kind == "qwen2", mlp_bias=bool(c.get("mlp_bias")))


def param_breakdown(config):
    """{'linear', 'other'} parameter counts of a decoder from its config.json dict, or None for an unknown shape."""
    s = _shape(config)
    if s is None:
        return None
    h, q, kv = s["h"], s["heads"] * s["head_dim"], s["kv"] * s["head_dim"]
    attn = h * q + 2 * h * kv + q * h + (q + 2 * kv if s["qkv_bias"] else 0)
    mlp = 3 * h * s["i"] + ((2 * s["i"] + h) if s["mlp_bias"] else 0)
    norms = (4 if s["kind"] == "gemma2" else 2) * h
    linear = s["layers"] * (attn + mlp)
    embed = s["vocab"] * h
    other = s["layers"] * norms + embed + h + (0 if s["tied"] else embed)
    return {"linear": linear, "other": other, "layers": s["layers"], "hidden": h, "vocab": s["vocab"]}


def param_count(config):
    b = param_breakdown(config)
    return None if b is None else b["linear"] + b["other"]


def lora_param_count(config, r, targets=("q_proj", "k_proj", "v_proj", "o_proj")):
    """Trainable parameters of a LoRA adapter of rank r on the named projections (A: r x in, B: out x r)."""
    s = _shape(config)
    if s is None:
        return None
    h, q, kv, i = s["h"], s["heads"] * s["head_dim"], s["kv"] * s["head_dim"], s["i"]
    dims = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    return s["layers"] * sum(r * (a + b) for a, b in (dims[t] for t in targets if t in dims))


def read_config(model_dir):
    import json
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def count_from_config(model_dir):
    """Parameter count without reading weights: the config formula, else the model built on the meta device."""
    config = read_config(model_dir)
    n = param_count(config)
    if n is not None:
        return n
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    return sum(p.numel() for p in model.parameters())


def resolve_gradient_checkpointing(setting, n_params):
    """'auto' → on from GRADIENT_CHECKPOINTING_MIN_PARAMS; a boolean is the user's choice."""
    if setting == "auto":
        return n_params >= GRADIENT_CHECKPOINTING_MIN_PARAMS
    return bool(setting)


def train_memory_bytes(config, method, optimizer, batch_size, seq_len, checkpointing, device, trainable=None):
    """The estimate above as {'weights', 'trainable', 'activations', 'overhead', 'total'} (bytes), or None."""
    b = param_breakdown(config)
    if b is None:
        return None
    n = b["linear"] + b["other"]
    cuda = device == "cuda"
    act = 2 if cuda else 4
    if method == "full":
        weights, trainable = 4 * n + (2 * n if cuda else 0), n
    elif method == "qlora":
        weights = 0.52 * b["linear"] + 2 * b["other"]
    else:
        weights = (2 if cuda else 4) * n
    if trainable is None:
        trainable = lora_param_count(config, 8) if method in ("lora", "qlora", "adalora") else 0
    per_trainable = 8 + OPTIMIZER_STATE_BYTES[optimizer]
    tokens_hidden = batch_size * seq_len * b["hidden"] * act
    one_layer = ACTIVATION_VALUES_PER_LAYER * tokens_hidden
    layers = b["layers"] * tokens_hidden + one_layer if checkpointing else b["layers"] * one_layer
    logits = batch_size * seq_len * b["vocab"] * (act + 8)
    parts = {"weights": int(weights), "trainable": int(per_trainable * trainable), "activations": int(layers + logits),
             "overhead": CUDA_OVERHEAD_BYTES if cuda else HOST_PROCESS_BYTES}
    parts["total"] = sum(parts.values())
    return parts


def _meminfo_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def device_memory_bytes(device):
    """Total memory of the device a run trains on: the GPU's, or the host's RAM on CPU.

    Total, not free: ModelTooLarge is non-retryable, so it must mean "can never fit here", not
    "does not fit next to whatever else runs now". PEFTGRID_DEVICE_MEMORY_BYTES overrides it (a
    MIG slice or a shared GPU, where the total is not yours; and the tests).
    """
    override = os.environ.get("PEFTGRID_DEVICE_MEMORY_BYTES")
    if override:
        return int(float(override))
    if device == "cuda":
        import torch
        return torch.cuda.mem_get_info()[1]
    return _meminfo_total()


def peak_flops(device):
    """Dense bf16 peak FLOP/s of this CUDA device from PEAK_BF16_FLOPS; None on CPU or an unlisted GPU."""
    if device != "cuda":
        return None  # no meaningful datasheet figure for a shared CPU
    import torch
    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_BF16_FLOPS if key in name), None)


def flops_per_token(n_params, n_trainable):
    """Model FLOPs per trained token: 2·N forward, 2·N backward through every layer (activation
    gradients, needed even where weights are frozen), 2·T for the trainable weights' gradients.
    Full fine-tuning (T = N) gives the usual 6·N; recompute under checkpointing is not counted
    (that would be hardware FLOPs utilisation), nor is attention's S² term."""
    return 4 * n_params + 2 * n_trainable


def peak_memory(device):
    """(bytes, source): the CUDA caching allocator's peak, or this process's peak RSS on CPU."""
    if device == "cuda":
        import torch
        return int(torch.cuda.max_memory_allocated()), "cuda.max_memory_allocated"
    import resource
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "ru_maxrss"  # Linux: KiB


def check_fits(spec, device, n_params, checkpointing):
    """Raise ModelTooLarge when `full` fine-tuning of spec's model cannot fit in the device's memory.

    Only `full` is refused: it is the one method whose footprint grows with every parameter (16-18
    bytes each); PEFT methods that do not fit fail the same way on any device, and their remedy
    (a smaller batch or maxLength) is not a method change. An unknown shape is let through.
    """
    from .events import ModelTooLarge
    from .spec import FullSpec
    if not isinstance(spec.method, FullSpec):
        return
    t = spec.training
    need = train_memory_bytes(read_config(spec.modelPath), "full", t.optimizer, t.batchSize, t.maxLength,
                              checkpointing, device)
    have = device_memory_bytes(device)
    if need is None or have is None or need["total"] <= have:
        return
    gib = lambda b: f"{b / GIB:.1f} GiB"  # noqa: E731
    raise ModelTooLarge(
        f"method.method: full fine-tuning of {spec.modelPath} ({n_params / 1e9:.2f}B parameters) needs about "
        f"{gib(need['total'])} on {device} (weights {gib(need['weights'])}, gradients and {t.optimizer} states "
        f"{gib(need['trainable'])}, activations at batch {t.batchSize} x {t.maxLength} {gib(need['activations'])}) "
        f"but the device has {gib(have)}; expected a method that fits: lora or qlora (or a smaller model)")


def run_resources(device, dtype, n_params, n_trainable, tokens, seconds, checkpointing):
    """The `resources` event's fields: peak memory, and MFU where the device's peak is known.

    MFU = flops_per_token(N, T) x tokens/s / peak FLOP/s, tokens = real (non-pad) tokens of this
    process's steps, seconds = those steps' wall time. None on CPU, on an unlisted GPU, or when
    training ran in float32 (the table holds bf16 peaks).
    """
    import torch
    peak_bytes, source = peak_memory(device)
    fpt = float(flops_per_token(n_params, n_trainable))
    peak = peak_flops(device) if dtype == torch.bfloat16 else None
    mfu = fpt * tokens / seconds / peak if peak and seconds > 0 and tokens > 0 else None
    return {"peakMemoryBytes": peak_bytes, "peakMemorySource": source, "mfu": mfu, "flopsPerToken": fpt,
            "peakFlops": peak, "gradientCheckpointing": bool(checkpointing)}
