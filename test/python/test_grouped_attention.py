"""The exported graph's copy-free grouped-query attention (trainer/onnx_graph.py) against HF's
eager attention on the same weights: every family the study uses, with padding, Mistral's sliding
window and Gemma 2's logit softcap. The function must be called (not silently bypassed) and give
the same logits."""
import pytest
import torch
from transformers import (Gemma2Config, Gemma2ForCausalLM, GemmaConfig, GemmaForCausalLM, LlamaConfig,
                          LlamaForCausalLM, MistralConfig, MistralForCausalLM)

from trainer import onnx_graph

DIMS = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=8,
            head_dim=8)


@pytest.mark.parametrize("config_cls, model_cls, extra", [
    (LlamaConfig, LlamaForCausalLM, {"num_key_value_heads": 2}),
    (LlamaConfig, LlamaForCausalLM, {"num_key_value_heads": 8}),  # multi-head (Llama-2-7B): groups of 1
    (MistralConfig, MistralForCausalLM, {"num_key_value_heads": 2, "sliding_window": 4}),
    (GemmaConfig, GemmaForCausalLM, {"num_key_value_heads": 1}),
    (Gemma2Config, Gemma2ForCausalLM, {"num_key_value_heads": 4, "sliding_window": 4,
                                       "attn_logit_softcapping": 2.0}),
])
def test_grouped_attention_equals_eager(monkeypatch, config_cls, model_cls, extra):
    calls = []
    real = onnx_graph.grouped_attention
    monkeypatch.setattr(onnx_graph, "grouped_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    onnx_graph._register_grouped_attention()
    torch.manual_seed(0)
    model = model_cls(config_cls(**DIMS, **extra)).eval()
    model.config._attn_implementation = "eager"
    ids = torch.randint(0, 256, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, :3] = 0
    with torch.no_grad():
        eager = model(input_ids=ids, attention_mask=mask).logits
        model.config._attn_implementation = onnx_graph.GROUPED_ATTENTION
        grouped = model(input_ids=ids, attention_mask=mask).logits
    assert len(calls) == DIMS["num_hidden_layers"]
    valid = mask.bool()
    assert torch.allclose(grouped[valid], eager[valid], atol=1e-5, rtol=0)
