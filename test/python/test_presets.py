"""Sized random-init Llamas (`python -m trainer tiny --preset 1b|7b|custom`): counts on the meta device,
and the shard-by-shard writer on a small custom shape (the real sizes are for the benches)."""
import json
import os

import pytest
import torch

import trainer.__main__ as cli
from trainer import models, presets
from trainer.__main__ import main
from trainer.events import InvalidSpec

SMOLLM2_VOCAB = 49152


def llama_params(vocab, hidden, inter, layers, heads, kv_heads, tied=False):
    """Closed form: embeddings (+ lm_head), per layer q/k/v/o + gate/up/down + 2 RMSNorms, final norm."""
    head_dim = hidden // heads
    attn = 2 * hidden * hidden + 2 * hidden * kv_heads * head_dim
    return vocab * hidden * (1 if tied else 2) + layers * (attn + 3 * hidden * inter + 2 * hidden) + hidden


def test_1b_preset_parameter_count():
    config = presets.llama_config("1b", SMOLLM2_VOCAB)
    n = presets.param_count(config)
    assert n == llama_params(SMOLLM2_VOCAB, 2048, 5632, 16, 32, 8) == 922_814_464


def test_7b_preset_is_llama2_7b():
    # Llama-2-7B's published count, with its own 32000-token vocabulary.
    assert presets.param_count(presets.llama_config("7b", 32000)) == 6_738_415_616
    assert presets.param_count(presets.llama_config("7b", SMOLLM2_VOCAB)) == 6_878_924_800


def test_overrides_and_tied_embeddings_count():
    config = presets.llama_config("1b", SMOLLM2_VOCAB, {"num_hidden_layers": 2, "tie_word_embeddings": True})
    assert presets.param_count(config) == llama_params(SMOLLM2_VOCAB, 2048, 5632, 2, 32, 8, tied=True)


def test_meta_build_allocates_nothing():
    model = presets.meta_model(presets.llama_config("7b", SMOLLM2_VOCAB))
    assert all(p.device.type == "meta" for p in model.parameters())


def test_bad_preset_and_config_are_invalid_spec(tmp_path):
    with pytest.raises(InvalidSpec, match="--preset"):
        presets.llama_config("3b", SMOLLM2_VOCAB)
    with pytest.raises(InvalidSpec, match="--config"):
        presets.load_overrides("[1, 2]")
    with pytest.raises(InvalidSpec, match="--config"):
        presets.load_overrides(str(tmp_path / "missing.json"))
    (tmp_path / "c.json").write_text('{"num_hidden_layers": 3}')
    assert presets.load_overrides(str(tmp_path / "c.json")) == {"num_hidden_layers": 3}


def test_cli_rejects_config_on_tiny_and_other_families(tmp_path, capsys, monkeypatch):
    # In-process main() must not take this process's fd 1 for events (claim_stdout): every later
    # test that reads the trainer's events from stdout would see none.
    monkeypatch.setattr(cli, "claim_stdout", lambda: None)
    assert main(["tiny", "--family", "llama", "--config", "{}", "--out", str(tmp_path / "a")]) == 2
    assert main(["tiny", "--family", "gemma", "--preset", "1b", "--out", str(tmp_path / "b")]) == 2
    assert "expected llama" in capsys.readouterr().err


SMALL = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 128}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sharded_write_loads_back(smollm2_dir, tmp_path, monkeypatch, dtype):
    # Shards of ~1 MB force several files, as 2 GB shards do at 1B.
    monkeypatch.setattr(presets, "SHARD_BYTES", 1 << 20)
    out = str(tmp_path / "m")
    models.make_sized("custom", out, smollm2_dir, seed=1, overrides=SMALL, dtype=dtype)
    assert models.is_complete(out)
    index = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    assert len(set(index["weight_map"].values())) > 2
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(out, dtype=getattr(torch, dtype))
    expected = presets.param_count(presets.llama_config("custom", SMOLLM2_VOCAB, SMALL))
    assert sum(p.numel() for p in model.parameters()) == expected
    assert torch.equal(model.model.norm.weight, torch.ones(64, dtype=getattr(torch, dtype)))
    std = model.model.layers[0].mlp.up_proj.weight.float().std().item()
    assert 0.015 < std < 0.025  # initializer_range 0.02, as from_config draws
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(logits).all()
    assert json.load(open(os.path.join(out, "generation_config.json")))["eos_token_id"] == 2
