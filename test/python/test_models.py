"""Model directories: SmolLM2 from the GGUF (tokenizer fixed to match the original), tiny models."""
import hashlib
import json
import os
import time

import pytest

from trainer import models


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_smollm2_tokenizer_matches_the_original(smollm2_dir, tokenizer):
    # The GGUF conversion in transformers 4.57 would prepend <|im_start|> and call it EOS.
    assert tokenizer("Hello world 2024")["input_ids"] == [19556, 905, 216, 34, 32, 34, 36]
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tokenizer.decode([19556, 905, 30]) == "Hello world."
    config = json.load(open(os.path.join(smollm2_dir, "tokenizer_config.json")))
    assert "<|im_start|>assistant" in config["chat_template"]
    assert json.load(open(os.path.join(smollm2_dir, "generation_config.json")))["eos_token_id"] == 2


def test_materialize_is_idempotent(smollm2_dir):
    t0 = time.time()
    assert models.materialize_gguf(smollm2_dir) == smollm2_dir
    assert time.time() - t0 < 1


def test_tiny_is_deterministic_and_carries_the_tokenizer(tiny, smollm2_dir, tmp_path):
    again = models.make_tiny("llama", str(tmp_path / "again"), smollm2_dir, seed=0)
    other = models.make_tiny("llama", str(tmp_path / "other"), smollm2_dir, seed=1)
    weights = lambda d: _sha(os.path.join(d, "model.safetensors"))  # noqa: E731
    assert weights(again) == weights(tiny["llama"]) != weights(other)
    for family, path in tiny.items():
        assert models.is_complete(path)
        config = json.load(open(os.path.join(path, "config.json")))
        assert config["vocab_size"] == 49152 and config["num_key_value_heads"] == 2 and config["model_type"] == family
        assert _sha(os.path.join(path, "tokenizer.json")) == _sha(os.path.join(smollm2_dir, "tokenizer.json"))


@pytest.mark.parametrize("family", ["llama", "gemma", "mistral"])
def test_truncate_keeps_the_listed_layers_and_computes_like_them(tiny, tmp_path, family):
    import torch
    from transformers import AutoModelForCausalLM
    src = tiny[family]
    out = models.truncate(src, str(tmp_path / "cut"), [1])
    assert models.is_complete(out)
    full = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    cut = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert cut.config.num_hidden_layers == 1
    # The kept layer is the source's layer 1, renumbered: same weights, same embeddings and head.
    assert torch.equal(cut.model.layers[0].mlp.down_proj.weight, full.model.layers[1].mlp.down_proj.weight)
    assert torch.equal(cut.lm_head.weight, full.lm_head.weight)
    ids = torch.tensor([[1, 5, 9, 13]])
    # Its forward equals running the source's embeddings → layer 1 → norm → head by hand.
    with torch.no_grad():
        logits = cut(ids).logits
        full.model.layers = torch.nn.ModuleList([full.model.layers[1]])
        full.model.layers[0].self_attn.layer_idx = 0
        full.config.num_hidden_layers = 1
        expected = full(ids, use_cache=False).logits
    assert torch.allclose(logits, expected, atol=1e-6)


@pytest.mark.parametrize("layers", [[], [0, 0], [2]])
def test_truncate_rejects_bad_layer_lists(tiny, tmp_path, layers):
    from trainer.events import InvalidSpec
    with pytest.raises(InvalidSpec, match="--layers"):
        models.truncate(tiny["llama"], str(tmp_path / "cut"), layers)
