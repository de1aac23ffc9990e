"""`python -m trainer merge` (what `peftgrid fetch --merged` runs): LoRA and (IA)³ adapters merge
into a standalone model with the adapter's logits; prompt tuning and an existing --out are refused."""
import os

import pytest
import torch
from peft import IA3Config, LoraConfig, PeftModel, PromptTuningConfig, get_peft_model
from transformers import AutoModelForCausalLM

from conftest import run_cli


def _adapter(base_dir, out, config):
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), config)
    with torch.no_grad():  # a fresh LoRA is a no-op (B = 0): give every adapter weight a value
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(out)
    return out


IDS = torch.tensor([[1, 5, 9, 42, 7, 3]])


@pytest.mark.parametrize("config", [
    LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"]),
], ids=["lora", "ia3"])
def test_merge_matches_the_adapter_on_its_base(tiny, tmp_path, config):
    base = tiny["llama"]
    adapter = _adapter(base, str(tmp_path / "adapter"), config)
    out = tmp_path / "merged"
    code, events, stderr = run_cli(["merge", "--base", base, "--adapter", adapter, "--out", str(out)])
    assert code == 0, stderr
    assert events == []
    assert not (out / "adapter_config.json").exists()
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
    plain = AutoModelForCausalLM.from_pretrained(base).eval()
    with torch.no_grad():
        got, want, before = merged(IDS).logits, ref(IDS).logits, plain(IDS).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - before).abs().max() > 1e-3, "the adapter changed nothing: the check could not fail"
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_prompt_tuning_cannot_merge(tiny, tmp_path):
    base = tiny["llama"]
    adapter = _adapter(base, str(tmp_path / "pt"), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    code, events, _ = run_cli(["merge", "--base", base, "--adapter", adapter, "--out", str(tmp_path / "m")])
    assert code == 2
    assert events[-1]["type"] == "InvalidSpec"
    assert "cannot be merged" in events[-1]["message"] and "--adapter" in events[-1]["message"]
    assert not (tmp_path / "m").exists()


def test_an_existing_out_is_never_overwritten(tiny, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, events, _ = run_cli(["merge", "--base", tiny["llama"], "--adapter", tiny["llama"], "--out", str(out)])
    assert code == 2
    assert "already exists" in events[-1]["message"]
    assert os.listdir(out) == ["mine.txt"]
