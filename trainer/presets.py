"""Random-init Llama-shaped models of real sizes, built from a config (`python -m trainer tiny --preset`).

Large-model code paths (sharded safetensors, ONNX external data, gradient checkpointing, the
memory guard, bf16 on a GPU) only show up on models of real size, and no such model can be
downloaded where the tests and the GPU check run. These presets build one from a config instead.

Weights are never held whole in memory: the model is instantiated on the meta device (shapes
only), then each tensor is drawn, cast and written shard by shard, so peak RSS is about two 1 GiB
shards (safetensors serializes a shard into one buffer: tensors + bytes) whatever the size — a 7B-shaped model can be written on a host with 16 GB of RAM. The draw
follows HF's Llama `_init_weights` (normal(0, initializer_range) for linear and embedding weights,
ones for RMSNorm) so the model behaves like `from_config` would, though not bit for bit.
"""
import json
import os

from .events import InvalidSpec, log

# The brief's ~1B shape (Llama-3.2-1B's attention with TinyLlama's MLP width) and Llama-2-7B's dims.
# Vocabulary comes from the tokenizer (SmolLM2's 49152 ids), so the 7B shape is 6.88B, not 6.74B.
PRESETS = {
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
               tie_word_embeddings=False),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
               tie_word_embeddings=False),
}
DTYPES = ("float32", "bfloat16", "float16")
SHARD_BYTES = 1024**3  # safetensors serializes a whole shard into one buffer: peak RSS is about 2 shards


def llama_config(preset, vocab_size, overrides=None, **ids):
    """A LlamaConfig for `preset` ("1b", "7b" or "custom" = overrides only) with the tokenizer's ids."""
    from transformers import LlamaConfig
    if preset not in PRESETS and preset != "custom":
        raise InvalidSpec(f"--preset: got {preset!r}; expected one of tiny, {', '.join(PRESETS)}")
    fields = {**PRESETS.get(preset, {}), **(overrides or {})}
    try:
        return LlamaConfig(vocab_size=vocab_size, **ids, **fields)
    except (TypeError, ValueError) as err:
        raise InvalidSpec(f"--config: {err}") from None


def load_overrides(arg):
    """`--config` is inline JSON or a path to a JSON file of LlamaConfig fields."""
    if not arg:
        return {}
    text = arg
    if not arg.lstrip().startswith("{"):
        if not os.path.isfile(arg):
            raise InvalidSpec(f"--config: got {arg!r}; expected inline JSON or an existing JSON file")
        with open(arg) as f:
            text = f.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidSpec(f"--config: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise InvalidSpec(f"--config: got {type(value).__name__}; expected a JSON object of LlamaConfig fields")
    return value


def meta_model(config):
    """The model with shapes only (no storage): free to build at any size."""
    import torch
    from transformers import AutoModelForCausalLM
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def param_count(config):
    return sum(p.numel() for p in meta_model(config).parameters())


def _draw(name, shape, std, dtype, gen):
    import torch
    if name.endswith("norm.weight"):
        return torch.ones(shape, dtype=dtype)
    return torch.empty(shape, dtype=torch.float32).normal_(0.0, std, generator=gen).to(dtype)


def write_random(config, out_dir, dtype="float32", seed=0):
    """Sharded safetensors + index + config.json in `out_dir`. Returns (params, bytes written)."""
    import torch
    from safetensors.torch import save_file
    if dtype not in DTYPES:
        raise InvalidSpec(f"--dtype: got {dtype!r}; expected one of {', '.join(DTYPES)}")
    torch_dtype = getattr(torch, dtype)
    model = meta_model(config)
    # state_dict, not parameters: a tied lm_head appears once in parameters() but HF saves it
    # only once too (it drops the tied key), so follow what save_pretrained would write.
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    tensors = [(n, t.shape) for n, t in model.state_dict().items() if n not in tied]
    gen = torch.Generator().manual_seed(seed)
    itemsize = torch.tensor([], dtype=torch_dtype).element_size()
    shards, current, size = [], [], 0
    for name, shape in tensors:
        nbytes = shape.numel() * itemsize
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes
    shards.append(current)
    weight_map, total, params = {}, 0, 0
    for i, shard in enumerate(shards):
        fname = (f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" if len(shards) > 1 else "model.safetensors")
        data = {n: _draw(n, s, config.initializer_range, torch_dtype, gen) for n, s in shard}
        save_file(data, os.path.join(out_dir, fname), metadata={"format": "pt"})
        for n, t in data.items():
            weight_map[n] = fname
            total += t.numel() * itemsize
            params += t.numel()
        del data
        log(f"wrote {fname} ({i + 1}/{len(shards)})")
    if len(shards) > 1:
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    config.torch_dtype = dtype
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(out_dir)
    return params, total
