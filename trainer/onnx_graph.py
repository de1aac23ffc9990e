"""The exported graph: a thin nn.Module over an HF causal LM with flat KV-cache I/O (contracts §2).

Why the wrapper builds its own 4-D attention mask: transformers 4.57 builds masks with
torch.vmap, which the TorchScript exporter cannot trace, and its "all ones → no mask" shortcuts
would be baked into a traced graph. The mask here is plain tensor ops on the runtime
`attention_mask`: causal by cache slot, padding from the mask, the model's sliding window where
it has one, and the diagonal always open so a pad query never has a fully masked row (a NaN
there would poison the KV cache of later steps).

Prompt tuning: the soft prompt's keys/values are precomputed once and live in the graph as
constants; each call prepends them to the incoming past, prepends P ones to the mask, shifts
positions by P, and slices them off the presents. The engine sees an ordinary model.

Grouped-query attention without copies (GROUPED_ATTENTION): HF's eager attention repeats every
key/value head for each query head that shares it (`repeat_kv`), which in the traced graph is an
Expand + Reshape of the whole KV cache per layer and per call: a decode step copies the cache
`heads / kv_heads` times over (3x for SmolLM2, 4x for Mistral) to compute one row. The traced
graph instead folds each group's query heads into the rows of one matmul against the shared
head: query [b, kv, g·q, d] × key [b, kv, d, k]. Same arithmetic, one softmax per row, no copy;
the export's parity run checks it against HF's eager logits, computed before the switch.

`num_logits_to_keep` (int64 scalar, like HF's `logits_to_keep`): the lm_head runs on the last N
query positions only, so a prefill that needs one next-token distribution does not compute and
copy vocab × sequence floats (49,152 per token for SmolLM2). N ≤ 0 or N ≥ sequence keeps all.
"""
import warnings

import torch
from transformers import DynamicCache

NEG = torch.finfo(torch.float32).min
LOGITS_TO_KEEP = "num_logits_to_keep"
GROUPED_ATTENTION = "peftgrid_grouped"


def grouped_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, softcap=None, **_):
    """HF's eager attention (llama/mistral/gemma `eager_attention_forward`, with Gemma 2's logit
    softcap) for query [b, h, q, d] and key/value [b, kv, k, d], without repeating key/value: the
    g = h / kv query heads of a group are rows of one matmul. Returns ([b, q, h, d], weights)."""
    b, h, q_len, d = query.shape
    kv = key.shape[1]
    rows = query.reshape(b, kv, (h // kv) * q_len, d)  # head h·g+i, query t → row i·q + t of group h
    weights = torch.matmul(rows, key.transpose(2, 3)) * scaling
    if softcap is not None:
        weights = torch.tanh(weights / softcap) * softcap
    k_len = key.shape[2]
    if attention_mask is not None:
        grouped = weights.view(b, kv, h // kv, q_len, k_len) + attention_mask[:, :, None, :, :k_len]
        weights = grouped.view(b, kv, (h // kv) * q_len, k_len)
    weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, value).view(b, h, q_len, d)
    return out.transpose(1, 2).contiguous(), weights


def _register_grouped_attention():
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
    AttentionInterface.register(GROUPED_ATTENTION, grouped_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(GROUPED_ATTENTION, eager_mask)


def io_names(num_layers):
    past = [f"past_key_values.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]


def graph_inputs(num_layers):
    """The exported graph's inputs: io_names' plus the logits count, last (contracts §2)."""
    return [*io_names(num_layers)[0], LOGITS_TO_KEEP]


def dynamic_axes(num_layers):
    inputs, outputs = io_names(num_layers)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total_sequence"},
            "position_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "kept_sequence"}}
    axes.update({n: {0: "batch", 2: "past_sequence"} for n in inputs[3:]})
    axes.update({n: {0: "batch", 2: "total_sequence"} for n in outputs[1:]})
    return axes


def model_dims(config):
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers, config.num_key_value_heads, head_dim


def attention_mask_4d(mask2d, query_len, window=None):
    total = mask2d.shape[1]
    q = torch.arange(query_len, device=mask2d.device) + (total - query_len)  # cache slot of each query
    k = torch.arange(total, device=mask2d.device)
    allowed = k[None, :] <= q[:, None]
    if window:
        allowed = allowed & (k[None, :] > q[:, None] - window)  # HF: kv_idx > q_idx - sliding_window
    allowed = (allowed[None, None] & mask2d[:, None, None, :].bool()) | (k[None, :] == q[:, None])[None, None]
    return torch.where(allowed, 0.0, NEG)


def _mask_for(model, mask2d, query_len):
    config = model.config
    window = getattr(config, "sliding_window", None)
    if getattr(config, "use_sliding_window", True) is False:  # Qwen2-style configs switch it off
        window = None
    types = set(getattr(config, "layer_types", None) or [])
    if {"full_attention", "sliding_attention"} <= types:
        # Hybrid models (Gemma 2/3) take one mask per attention type.
        return {"full_attention": attention_mask_4d(mask2d, query_len),
                "sliding_attention": attention_mask_4d(mask2d, query_len, window)}
    return attention_mask_4d(mask2d, query_len, window)


class OnnxDecoder(torch.nn.Module):
    def __init__(self, model, prefix=None):
        super().__init__()
        self.model = model
        self.num_layers = model.config.num_hidden_layers
        # Traced with the copy-free GQA (module docstring); the reference logits and the prompt
        # prefix were computed with HF's eager attention before this.
        _register_grouped_attention()
        model.config._attn_implementation = GROUPED_ATTENTION
        self.prefix_len = 0 if prefix is None else prefix[0][0].shape[2]
        for i, (k, v) in enumerate(prefix or []):
            self.register_buffer(f"prefix_{i}_key", k, persistent=False)
            self.register_buffer(f"prefix_{i}_value", v, persistent=False)

    def forward(self, input_ids, attention_mask, position_ids, *rest):
        b, s, p = input_ids.shape[0], input_ids.shape[1], self.prefix_len
        past = list(rest[:2 * self.num_layers])
        keep = rest[2 * self.num_layers] if len(rest) > 2 * self.num_layers else None
        if p:
            for i in range(self.num_layers):
                for j, kv in enumerate(("key", "value")):
                    pre = getattr(self, f"prefix_{i}_{kv}")
                    past[2 * i + j] = torch.cat([pre.expand(b, -1, -1, -1), past[2 * i + j]], dim=2)
            attention_mask = torch.cat([attention_mask.new_ones(b, p), attention_mask], dim=1)
            position_ids = position_ids + p
        # float32 I/O whatever the weights (a float16 export casts here and at the outputs): the engine
        # reads and feeds Float32Array. The casts are only traced where the dtypes differ: the tracer
        # records a float32 → float32 `.to()` as a Cast node, and ORT kept the ones on the presents,
        # a full copy of the KV cache every step (20 ms of a 230 ms 16-row decode step of SmolLM2).
        past = [_as(t, self.model.dtype) for t in past]
        cache = DynamicCache.from_legacy_cache(tuple((past[2 * i], past[2 * i + 1]) for i in range(self.num_layers)))
        extra = {} if keep is None else {"logits_to_keep": _kept_positions(input_ids, keep)}
        out = self.model(input_ids=input_ids, attention_mask=_mask_for(self.model, attention_mask, s),
                         position_ids=position_ids, past_key_values=cache, use_cache=True, **extra)
        presents = [_as(t[:, :, p:] if p else t, torch.float32)
                    for layer in out.past_key_values.to_legacy_cache() for t in layer]
        return (_as(out.logits, torch.float32), *presents)


def _as(tensor, dtype):
    """`tensor` in `dtype`, with no traced op when it already is (OnnxDecoder.forward)."""
    return tensor if tensor.dtype == dtype else tensor.to(dtype)


def _kept_positions(input_ids, keep):
    """Indices of the last `keep` query positions (all when keep ≤ 0 or ≥ s), from tensor ops only:
    Python ints taken from shapes would be baked into the trace as constants."""
    from_end = torch.ones_like(input_ids[0]).flip(0).cumsum(0).flip(0)  # s, s-1, …, 1
    keep = torch.where(keep > 0, keep, from_end[0])
    return torch.nonzero(from_end <= keep).squeeze(1)  # HF takes a tensor as the positions to keep


@torch.no_grad()
def prefix_kv(base_model, prompt_embeds):
    """Per-layer (key, value) [1, kvHeads, P, headDim] of the soft prompt, run as the first P tokens."""
    p = prompt_embeds.shape[1]
    dev = prompt_embeds.device
    # A cache made without the config keeps every position: the model's own cache for a sliding-window
    # config (Mistral) keeps only the last window-1 of them, which would cut a prompt longer than the
    # window (the tiny Mistral's window is 4; 20 virtual tokens came back as 3).
    out = base_model(inputs_embeds=prompt_embeds, attention_mask=torch.ones(1, p, dtype=torch.long, device=dev),
                     position_ids=torch.arange(p, device=dev)[None], use_cache=True, past_key_values=DynamicCache())
    return [(k.detach().clone(), v.detach().clone()) for k, v in out.past_key_values.to_legacy_cache()]


def export_onnx(wrapper, path, opset=17):
    """Trace with a non-empty past (so no shape-0 branch is baked in) and export with dynamic axes."""
    num_layers, kv_heads, head_dim = model_dims(wrapper.model.config)
    b, s, past = 2, 3, 2
    dev = wrapper.model.device  # traced where the weights are (CUDA for a float16 export)
    args = (torch.ones(b, s, dtype=torch.long), torch.ones(b, past + s, dtype=torch.long),
            torch.arange(past, past + s).expand(b, s).contiguous(),
            *[torch.zeros(b, kv_heads, past, head_dim) for _ in range(2 * num_layers)],
            torch.tensor(2, dtype=torch.long))  # < s, so the slicing is what gets traced
    args = tuple(a.to(dev) for a in args)
    _, outputs = io_names(num_layers)
    inputs = graph_inputs(num_layers)
    with warnings.catch_warnings():
        # The tracer warns about every Python-level shape check in transformers; the parity run
        # (empty past, padding, a decode step) is what proves the graph generalizes.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(wrapper, args, path, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes(num_layers), opset_version=opset, dynamo=False,
                          do_constant_folding=True)
