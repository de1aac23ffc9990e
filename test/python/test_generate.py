"""The torch engine's own rules (trainer/generate.py), without the ONNX side: the stopping and
prompt rules the onnx engine applies (src/engine/sequence-state.ts, prompts.ts), the spec checks,
and EngineUnsupported for a model directory it cannot load. Token identity with the onnx engine is
tested in test/activity/torch-engine-parity.test.ts."""
import json
import os

import pytest

from trainer import events, generate
from trainer.spec import load_json, parse_generate_spec


def test_finish_mirrors_the_engine_sequence_state():
    eos, stops = {2}, [[7, 8]]
    assert generate.finish([5, 6, 2, 9], eos, stops, 10) == ([5, 6], "eos", 3)  # EOS counted, not output
    assert generate.finish([5, 7, 8, 9], eos, stops, 10) == ([5], "stop", 3)  # stop tokens removed
    assert generate.finish([5, 6, 7, 9], eos, stops, 4) == ([5, 6, 7, 9], "length", 4)
    assert generate.finish([5, 6], eos, [], 2) == ([5, 6], "length", 2)


def test_prepare_and_plan_mirror_the_engine_prompt_rules():
    assert generate.prepare([], 4, 10) == ([], False, "empty prompt")
    assert generate.prepare([1, 12], 4, 10)[2] == "token id 12 outside the vocabulary [0, 10)"
    assert generate.prepare([1, 2, 3, 4, 5, 6], 4, 10) == ([3, 4, 5, 6], True, None)  # cut from the left
    assert generate.prepare([1, 2, 3, 4, 5, 6], 4, 10, "error") == ([], False, "prompt has 6 tokens, more than 4")
    items = [(0, [1, 2, 3]), (1, [1]), (2, [4, 5, 6]), (3, [9, 9])]
    assert [[i for i, _ in b] for b in generate.plan_batches(items, 2)] == [[1, 3], [0, 2]]


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return str(path)


def test_spec_errors_name_the_field(tmp_path, tiny):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"promptIds": [1], "answerIds": [2]}) + "\n")
    base = {"modelPath": tiny["llama"], "itemsPath": str(items), "maxNewTokens": 4, "batchSize": 2}
    assert parse_generate_spec(base).device == "auto"
    with pytest.raises(events.InvalidSpec, match=r"^maxNewTokens: got 0; expected an integer >= 1"):
        parse_generate_spec({**base, "maxNewTokens": 0})
    with pytest.raises(events.InvalidSpec, match=r"^stopSequences: got \[\[\]\]"):
        parse_generate_spec({**base, "stopSequences": [[]]})
    with pytest.raises(events.InvalidSpec, match=r"^method: got null with an adapterDir"):
        parse_generate_spec({**base, "adapterDir": str(tmp_path)})
    with pytest.raises(events.InvalidSpec, match=r"^--spec: got"):
        load_json(str(tmp_path / "missing.json"))


def test_a_model_directory_without_weights_is_engine_unsupported(tmp_path, tiny):
    onnx_only = tmp_path / "onnx-only"
    onnx_only.mkdir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (onnx_only / f).write_bytes(open(os.path.join(tiny["llama"], f), "rb").read())
    (onnx_only / "model.onnx").write_bytes(b"not torch weights")
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"promptIds": [1, 2], "answerIds": [3]}) + "\n")
    spec = parse_generate_spec({"modelPath": str(onnx_only), "itemsPath": str(items), "maxNewTokens": 2,
                                "batchSize": 1, "device": "cpu"})
    with pytest.raises(events.EngineUnsupported, match=r'eval.engine: "torch" cannot load modelPath .*onnx-only'):
        generate.generate(spec)
    assert events.EngineUnsupported.exit_code == events.EXIT_INVALID


def test_qlora_is_evaluated_on_its_nf4_base_unmerged(tmp_path, tiny, monkeypatch):
    import io

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(1)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny["llama"], dtype=torch.float32),
                          LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    peft.save_pretrained(str(tmp_path / "adapter"))
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"promptIds": [30, 40, 50], "answerIds": [60, 2]}) + "\n")
    spec = parse_generate_spec({"modelPath": tiny["llama"], "itemsPath": str(items), "maxNewTokens": 3, "batchSize": 1,
                                "device": "cpu", "adapterDir": str(tmp_path / "adapter"), "method": "qlora"})
    loaded, base, _ = generate.load_model(spec, "cpu", torch.float32)
    # The base's projections are bitsandbytes 4-bit layers, and the adapter is a PEFT wrapper over them.
    import bitsandbytes as bnb
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in base.modules())
    assert type(loaded).__name__.startswith("Peft")
    out = io.StringIO()
    monkeypatch.setattr(events, "_events", out)
    generate.generate(spec)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["event"] == "generating" and lines[0]["precision"] == "nf4-base"
    assert [e["event"] for e in lines].count("sequence") == 1 and lines[-1]["event"] == "score"


def _sequences(spec, monkeypatch):
    import io
    out = io.StringIO()
    monkeypatch.setattr(events, "_events", out)
    generate.generate(spec)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_index = {e["index"]: e["tokens"] for e in lines if e["event"] == "sequence"}
    return [by_index[i] for i in sorted(by_index)], next(e for e in lines if e["event"] == "generated")


def test_prompt_lookup_decoding_returns_the_greedy_tokens(tmp_path, tiny, monkeypatch):
    # Prompts that repeat a span (as a passage an extractive answer is copied from does): HF's
    # prompt-lookup decoding proposes from them, and greedy verification keeps the output unchanged.
    items = tmp_path / "items.jsonl"
    prompts = [[30, 41, 52, 63, 74, 30, 41, 52], [90, 91, 92, 93, 90, 91], [15, 16, 17]]
    items.write_text("".join(json.dumps({"promptIds": p, "answerIds": [60, 2]}) + "\n" for p in prompts))
    base = {"modelPath": tiny["llama"], "itemsPath": str(items), "maxNewTokens": 12, "batchSize": 2,
            "device": "cpu", "score": False}
    greedy, _ = _sequences(parse_generate_spec(base), monkeypatch)
    looked_up, totals = _sequences(parse_generate_spec({**base, "promptLookupNgram": 3, "gamma": 4}), monkeypatch)
    assert looked_up == greedy
    assert totals["targetOnlyTokensPerSec"] is not None and totals["acceptanceRate"] is not None
    with pytest.raises(events.InvalidSpec, match=r"^promptLookupNgram: got 0"):
        parse_generate_spec({**base, "promptLookupNgram": 0})
