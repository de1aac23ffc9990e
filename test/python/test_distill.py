"""`python -m trainer distill` on tiny models: the target's greedy outputs become the draft's
training answers (loss on them only), the draft ends as a plain model, and resume reads the
outputs carried in the checkpoint instead of decoding again."""
import json
import os

import pytest
import torch
import torch.nn.functional as F
from conftest import resolved_method, run_cli

from trainer import distill as distill_mod
from trainer import models
from trainer.data import Shard
from trainer.events import CheckpointRejected, InvalidSpec, UnsupportedMethod
from trainer.spec import parse_distill_spec

MAX_NEW = 5


@pytest.fixture(scope="module")
def draft_dir(tmp_path_factory, smollm2_dir):
    # Same shape and tokenizer as the target (tiny llama, seed 0), other weights.
    return models.make_tiny("llama", str(tmp_path_factory.mktemp("draft") / "llama"), smollm2_dir, seed=1)


@pytest.fixture
def make_distill(make_spec, tiny, draft_dir):
    def make(method=None, out="out", **training):
        spec = make_spec(method=method, out=out, **{"batchSize": 4, **training})
        return {**spec, "modelPath": draft_dir, "runKey": "test-distill",
                "distill": {"modelPath": tiny["llama"], "maxNewTokens": MAX_NEW, "batchSize": 3}}
    return make


def run(data, events, resume_from=None):
    spec, target = parse_distill_spec(data)
    code = distill_mod.distill(spec, target, resume_from=resume_from)
    return code, events.read()


def greedy(model_dir, prompt):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW, do_sample=False,
                             eos_token_id=model.config.eos_token_id, pad_token_id=model.config.eos_token_id)
    return out[0, len(prompt):].tolist()


def test_targets_are_the_target_greedy_outputs_and_the_draft_ends_plain(make_distill, shard, tiny, events):
    data = make_distill(method={"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0}, maxSteps=4,
                        checkpointEverySteps=2)
    code, evs = run(data, events)
    assert code == 0 and [e["event"] for e in evs][-2:] == ["resources", "done"]
    targets, prompts = Shard(os.path.join(data["outputDir"], distill_mod.TARGETS)), Shard(shard)
    assert len(targets) == len(prompts)
    for i in range(len(prompts)):
        toks, plen = targets[i]
        prompt = prompts[i][0][:prompts[i][1]].tolist()
        assert plen == len(prompt) and toks[:plen].tolist() == prompt  # the prompt as it was, not the answer
        assert toks[plen:].tolist() == greedy(tiny["llama"], prompt)  # HF generate of the target, greedy
    ckpts = [e for e in evs if e["event"] == "checkpoint"]
    assert [c["step"] for c in ckpts] == [2, 4]
    assert distill_mod.TARGETS in os.listdir(ckpts[0]["dir"])  # carried for a resume elsewhere
    final = evs[-1]["finalDir"]
    names = set(os.listdir(final))
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names and "adapter_config.json" not in names
    from transformers import AutoModelForCausalLM
    merged = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    draft = AutoModelForCausalLM.from_pretrained(data["modelPath"], dtype=torch.float32)
    # The merge changed the projections LoRA targets and nothing else.
    q = "model.layers.0.self_attn.q_proj.weight"
    sd, sd0 = merged.state_dict(), draft.state_dict()
    assert not torch.equal(sd[q], sd0[q]) and torch.equal(sd["model.embed_tokens.weight"], sd0["model.embed_tokens.weight"])


def test_the_loss_covers_the_target_outputs_only(make_distill, events):
    # One batch holds all four examples, so step 1's loss is the untrained draft's mean cross-entropy
    # over the batch's labelled tokens, whatever their order.
    data = make_distill(method={"method": "full"}, maxSteps=1)
    _, evs = run(data, events)
    step1 = next(e for e in evs if e["event"] == "step")["loss"]
    from transformers import AutoModelForCausalLM
    draft = AutoModelForCausalLM.from_pretrained(data["modelPath"], dtype=torch.float32).eval()
    targets = Shard(os.path.join(data["outputDir"], distill_mod.TARGETS))
    out_nll, out_n, all_nll, all_n = 0.0, 0, 0.0, 0
    with torch.no_grad():
        for i in range(len(targets)):
            toks, plen = targets[i]
            ids = torch.tensor(toks, dtype=torch.long)[None]
            nll = F.cross_entropy(draft(input_ids=ids).logits[0, :-1], ids[0, 1:], reduction="none")
            out_nll, out_n = out_nll + float(nll[plen - 1:].sum()), out_n + len(toks) - plen
            all_nll, all_n = all_nll + float(nll.sum()), all_n + len(toks) - 1
    assert out_n == len(targets) * MAX_NEW  # the tiny random target never emits EOS: MAX_NEW each
    assert step1 == pytest.approx(out_nll / out_n, rel=1e-5)
    assert abs(step1 - all_nll / all_n) > 1e-3  # the prompt tokens are not learned


def test_resume_reads_the_carried_outputs_and_continues_the_curve(make_distill, events, monkeypatch):
    lora = {"method": "lora", "r": 4, "alpha": 8, "dropout": 0.1}
    data = make_distill(method=lora, out="a", maxSteps=6, checkpointEverySteps=3, batchSize=2, lr=1e-2)
    _, whole = run(data, events)
    ckpt = os.path.join(data["outputDir"], "checkpoints", "step-3")

    def no_decoding(*a, **k):
        raise AssertionError("resume decoded the target again")
    monkeypatch.setattr(distill_mod, "target_examples", no_decoding)
    _, resumed = run({**data, "outputDir": data["outputDir"] + "-resumed"}, events, resume_from=ckpt)
    a = [e for e in whole if e["event"] == "step"][3:]
    b = [e for e in resumed if e["event"] == "step"]
    assert [e["step"] for e in b] == [4, 5, 6]
    assert [(e["loss"], e["gradNorm"]) for e in b] == [(e["loss"], e["gradNorm"]) for e in a]
    assert resumed[-1]["trainLoss"] == whole[-1]["trainLoss"]
    os.remove(os.path.join(ckpt, distill_mod.TARGETS))
    with pytest.raises(CheckpointRejected, match=r"has no distill-targets.pgtok"):
        run({**data, "outputDir": data["outputDir"] + "-again"}, events, resume_from=ckpt)


def test_spec_errors_name_the_field(make_distill, tmp_path):
    data = make_distill()
    with pytest.raises(UnsupportedMethod, match=r"^method.method: got \"ia3\"; expected one of lora, full"):
        parse_distill_spec({**data, "method": resolved_method({"method": "ia3"})})
    with pytest.raises(InvalidSpec, match=r"^distill: missing"):
        parse_distill_spec({k: v for k, v in data.items() if k != "distill"})
    with pytest.raises(InvalidSpec, match=r"^distill.maxNewTokens: got 0; expected an integer >= 1"):
        parse_distill_spec({**data, "distill": {**data["distill"], "maxNewTokens": 0}})
    with pytest.raises(InvalidSpec, match=r"^distill.method: got null with an adapterDir"):
        parse_distill_spec({**data, "distill": {**data["distill"], "adapterDir": str(tmp_path)}})


def test_cli_runs_distill_with_the_train_protocol(make_distill, tmp_path):
    data = make_distill(method={"method": "full"}, maxSteps=2, checkpointEverySteps=1)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    code, evs, err = run_cli(["distill", "--spec", str(path)])
    assert code == 0, err
    assert [e["event"] for e in evs] == ["start", "step", "checkpoint", "step", "checkpoint", "resources", "done"]
    assert "target outputs: 4/4 prompts" in err
