"""Base-model loading and the PEFT wrapping of each method, in one code path for train and export.

Default module names per family: Llama, Gemma and Mistral share the HF projection names
(q/k/v/o_proj; gate/up/down_proj), so one table serves all three; `template` models fall back to
their config's `model_type`, then to the Llama names. Names are checked against the loaded model.
"""
import os

import torch

from .events import InvalidSpec, ModelNotFound, UnsupportedMethod
from .spec import AdaLoraSpec, FullSpec, IA3Spec, LoraSpec, PromptTuningSpec, QLoraSpec

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
# (IA)³ paper: rescale keys, values and the feed-forward input of the down projection.
IA3_TARGETS, IA3_FEEDFORWARD = ["k_proj", "v_proj", "down_proj"], ["down_proj"]
FAMILY_MODULES = {f: {"lora": ATTENTION, "ia3": (IA3_TARGETS, IA3_FEEDFORWARD)}
                  for f in ("llama", "gemma", "gemma2", "mistral", "qwen2")}


def family_modules(family, model):
    return FAMILY_MODULES.get(family) or FAMILY_MODULES.get(model.config.model_type) or FAMILY_MODULES["llama"]


def resolve_device(requested):
    if requested == "cuda" and not torch.cuda.is_available():
        raise UnsupportedMethod("device: got \"cuda\"; expected a machine with CUDA (none is visible here)")
    device = "cuda" if requested in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    # bf16 halves memory on GPUs that support it; CPU trains in float32 for exact, portable results.
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return device, dtype


def probe_4bit(device, dtype):
    """One NF4 forward/backward on `device`: a missing 4-bit kernel fails here, typed, not mid-run."""
    try:
        import bitsandbytes as bnb
        layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=dtype, quant_type="nf4",
                                  compress_statistics=True).to(device)
        x = torch.randn(2, 64, device=device, dtype=dtype, requires_grad=True)
        layer(x).float().sum().backward()
    except Exception as e:
        raise UnsupportedMethod(f"method.method: \"qlora\" needs bitsandbytes 4-bit kernels on {device}, which fail "
                                f"here ({type(e).__name__}: {e}); expected lora on this machine")


def load_base(path, device="cpu", dtype=torch.float32, quantize_4bit=False, field="modelPath"):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    kwargs = {"dtype": dtype}
    if quantize_4bit:
        probe_4bit(device, dtype)
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": device}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise ModelNotFound(f"{field}: got {path!r}; expected a loadable causal-LM directory ({e})")
    return model if quantize_4bit else model.to(device)


def _check_modules(model, names, field):
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [n for n in names if n not in present]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise InvalidSpec(f"{field}: got {missing} which the model does not have; expected names from {linear}")
    return names


def peft_config(spec, model, total_steps):
    """The PEFT config of a train spec's method (None for full fine-tuning)."""
    from peft import AdaLoraConfig, IA3Config, LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType
    m, defaults = spec.method, family_modules(spec.family, model)
    if isinstance(m, AdaLoraSpec):
        targets = _check_modules(model, m.targetModules or defaults["lora"], "method.targetModules")
        return AdaLoraConfig(task_type=TaskType.CAUSAL_LM, init_r=m.initR, target_r=m.targetR, tinit=m.tinit,
                             tfinal=m.tfinal, deltaT=m.deltaT, lora_alpha=m.alpha, lora_dropout=m.dropout,
                             total_step=total_steps, target_modules=targets)
    if isinstance(m, LoraSpec):  # also QLoRA: the same adapter on a 4-bit base
        targets = _check_modules(model, m.targetModules or defaults["lora"], "method.targetModules")
        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=m.r, lora_alpha=m.alpha, lora_dropout=m.dropout,
                          target_modules=targets)
    if isinstance(m, IA3Spec):
        targets, ff = (m.targetModules, m.feedforwardModules) if m.targetModules else defaults["ia3"]
        if m.targetModules and m.feedforwardModules is None:
            ff = [n for n in IA3_FEEDFORWARD if n in targets]
        _check_modules(model, targets, "method.targetModules")
        return IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=targets, feedforward_modules=ff)
    if isinstance(m, PromptTuningSpec):
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=m.numVirtualTokens,
                                  prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=m.initText,
                                  tokenizer_name_or_path=os.path.abspath(spec.modelPath))
    return None


# Non-reentrant checkpointing: it needs no input that requires grad, works under autocast, and is
# what PyTorch recommends (the reentrant variant silently drops gradients of frozen-input layers).
CHECKPOINTING_KWARGS = {"use_reentrant": False}


def build_model(spec, device, dtype, checkpointing=False):
    """Load the base model for `spec` and wrap it for its method. Returns the trainable model.

    `checkpointing`: recompute each decoder layer's activations in the backward pass instead of
    keeping them (trainer/resources.py resolves training.gradientCheckpointing to it).
    """
    m = spec.method
    qlora = isinstance(m, QLoraSpec)
    # Full fine-tuning keeps float32 master weights (bf16 AdamW updates underflow); autocast does the rest.
    base_dtype = torch.float32 if isinstance(m, FullSpec) else dtype
    model = load_base(spec.modelPath, device, base_dtype, quantize_4bit=qlora)
    model.config.use_cache = False  # no KV cache while training
    if qlora:
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing,
                                                gradient_checkpointing_kwargs=CHECKPOINTING_KWARGS)
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=CHECKPOINTING_KWARGS)
    config = peft_config(spec, model, spec.training.maxSteps)
    if config is None:
        model.requires_grad_(True)
        return model
    if checkpointing:
        # The embeddings are frozen under PEFT: make their output require grad, so a checkpointed
        # first layer has an input to differentiate (PEFT's own recipe; a no-op cost otherwise).
        model.enable_input_require_grads()
    from peft import get_peft_model
    try:
        return get_peft_model(model, config)
    except ValueError as e:  # PEFT's own config checks (e.g. IA3 feedforward ⊆ target)
        raise InvalidSpec(f"method: PEFT rejected the config: {e}")


def count_params(model):
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))


def build_optimizer(name, params, lr, device):
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    try:
        import bitsandbytes as bnb
        # Probe one real 8-bit step (a tensor above bnb's 4096-element threshold) so that a
        # missing kernel fails here, typed, instead of mid-run; never fall back silently.
        probe = torch.nn.Parameter(torch.zeros(4096, device=device))
        probe.grad = torch.ones_like(probe)
        bnb.optim.AdamW8bit([probe], lr=lr).step()
        return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=0.0)
    except Exception as e:
        raise UnsupportedMethod(f"training.optimizer: \"adamw_8bit\" cannot run on {device} here "
                                f"(bitsandbytes: {type(e).__name__}: {e}); expected adamw or sgd on this machine")


def build_scheduler(name, optimizer, warmup, total):
    from transformers import get_scheduler
    hf_name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[name]
    return get_scheduler(hf_name, optimizer, num_warmup_steps=warmup, num_training_steps=total)


def adalora_state(model):
    """AdaLoRA's rank-allocator statistics: PEFT does not save them, exact resume needs them."""
    alloc, cfg = model.base_model.rankallocator, model.peft_config[model.base_model.trainable_adapter_name]
    return {"ipt": alloc.ipt, "exp_avg_ipt": alloc.exp_avg_ipt, "exp_avg_unc": alloc.exp_avg_unc,
            "rank_pattern": cfg.rank_pattern}


def load_adalora_state(model, state):
    """Restore adalora_state(); a ValueError if it does not fit this model (the caller rejects the checkpoint)."""
    alloc, cfg = model.base_model.rankallocator, model.peft_config[model.base_model.trainable_adapter_name]
    params = dict(model.base_model.model.named_parameters())  # the names the allocator sees
    for key in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
        # The allocator indexes these by parameter name and updates them in place against the
        # gradients: a foreign name or shape would fail (or silently skew ranks) steps later.
        stats = state[key]
        bad = [n for n, v in stats.items() if n not in params or getattr(v, "shape", None) != params[n].shape]
        if bad:
            raise ValueError(f"{key} holds {bad[:3]}, which are not parameters of this model with that shape")
    alloc.ipt, alloc.exp_avg_ipt, alloc.exp_avg_unc = state["ipt"], state["exp_avg_ipt"], state["exp_avg_unc"]
    cfg.rank_pattern = state["rank_pattern"]


def is_adalora(spec):
    return isinstance(spec.method, AdaLoraSpec)
