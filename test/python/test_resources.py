"""trainer/resources.py: parameter counts from config.json, gradient checkpointing, the memory guard
for `full`, and the `resources` event (peak memory, MFU)."""
import json
import os

import pytest
import torch
from conftest import ROOT, run_cli

from trainer import methods, resources
from trainer import train as train_mod
from trainer.events import ModelTooLarge
from trainer.spec import parse_train_spec
from trainer.train import train

with open(os.path.join(ROOT, "test", "fixtures", "model-shapes.json")) as _f:
    SHAPES = json.load(_f)


def real_count(config_dict):
    from transformers import AutoConfig, AutoModelForCausalLM
    config = AutoConfig.for_model(**config_dict)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(SHAPES["models"]))
def test_param_count_from_config_matches_the_model_built_from_it(name):
    entry = SHAPES["models"][name]
    assert resources.param_count(entry["config"]) == entry["params"] == real_count(entry["config"])


@pytest.mark.parametrize("family", ["llama", "gemma", "mistral"])
def test_param_count_of_the_tiny_models_on_disk(tiny, family):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(tiny[family])
    assert resources.count_from_config(tiny[family]) == sum(p.numel() for p in model.parameters())


def test_param_count_of_smollm2(smollm2_dir):
    from safetensors import safe_open
    with safe_open(os.path.join(smollm2_dir, "model.safetensors"), "pt") as f:
        stored = sum(f.get_slice(k).get_shape().numel() if hasattr(f.get_slice(k).get_shape(), "numel")
                     else int(torch.Size(f.get_slice(k).get_shape()).numel()) for k in f.keys())
    # Tied embeddings: lm_head is not stored, and not counted twice.
    assert resources.count_from_config(smollm2_dir) == stored == 134_515_008


def test_unknown_shapes_are_counted_on_the_meta_device(tmp_path):
    from transformers import GPT2Config
    GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100).save_pretrained(tmp_path)
    assert resources.param_count(resources.read_config(str(tmp_path))) is None
    assert resources.count_from_config(str(tmp_path)) == real_count(GPT2Config(n_layer=2, n_embd=32, n_head=2,
                                                                               vocab_size=100).to_dict())


def test_lora_param_count_matches_peft(tiny):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny["mistral"]),
                           LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    trainable, _ = model.get_nb_trainable_parameters()
    assert resources.lora_param_count(resources.read_config(tiny["mistral"]), 4) == trainable


@pytest.mark.parametrize("setting, n, expected", [
    ("auto", resources.GRADIENT_CHECKPOINTING_MIN_PARAMS - 1, False),
    ("auto", resources.GRADIENT_CHECKPOINTING_MIN_PARAMS, True),
    (True, 10, True), (False, 10**10, False)])
def test_auto_turns_checkpointing_on_from_the_threshold(setting, n, expected):
    assert resources.resolve_gradient_checkpointing(setting, n) is expected


def test_estimates_match_the_typescript_fixture():
    # The same cases run through src/config/resources.ts in test/unit/config-resources.test.ts.
    for case in SHAPES["estimates"]:
        got = resources.train_memory_bytes(SHAPES["models"][case["model"]]["config"], case["method"],
                                           case["optimizer"], case["batchSize"], case["maxLength"],
                                           case["checkpointing"], case["device"])
        assert got == case["bytes"], case


# --- gradient checkpointing in training --------------------------------------------------------

METHOD_CASES = {
    "lora": {"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
    "qlora": {"method": "qlora", "r": 4, "alpha": 8, "dropout": 0.0},
    "ia3": {"method": "ia3"},
    "prompt_tuning": {"method": "prompt_tuning", "numVirtualTokens": 4},
    "adalora": {"method": "adalora", "initR": 4, "targetR": 2, "tinit": 1, "tfinal": 1, "deltaT": 1, "dropout": 0.0},
    "full": {"method": "full"},
}


def run_counting_recompute(monkeypatch, spec):
    """Trains `spec`; returns (losses, resources event, forward calls of decoder layer 0)."""
    calls = []
    build = methods.build_model

    def counted(*args, **kw):
        model = build(*args, **kw)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # A pre-hook: checkpoint recompute stops early (once it has what backward needs), before
        # a forward hook would fire.
        base.model.layers[0].register_forward_pre_hook(lambda *_: calls.append(1))
        return model

    monkeypatch.setattr(train_mod, "build_model", counted)
    assert train(parse_train_spec(spec)) == 0
    with open(os.path.join(spec["outputDir"], "final", "training_log.json")) as f:
        record = json.load(f)
    return record, len(calls)


@pytest.mark.parametrize("method", list(METHOD_CASES))
def test_checkpointing_recomputes_and_leaves_the_losses_unchanged(monkeypatch, make_spec, events, method):
    if method == "qlora":
        pytest.importorskip("bitsandbytes")
    runs = {}
    for on in (False, True):
        spec = make_spec(method=dict(METHOD_CASES[method]), out=f"gc-{on}", maxSteps=4, gradientCheckpointing=on)
        runs[on] = run_counting_recompute(monkeypatch, spec)
        emitted = [e for e in events.read() if e["event"] == "resources"]
        assert len(emitted) == 1 and emitted[0]["gradientCheckpointing"] is on
    (off, calls_off), (on, calls_on) = runs[False], runs[True]
    assert calls_off == 4 and calls_on == 8  # each step's layer 0 ran again in the backward pass
    assert on["gradientCheckpointing"] is True and off["gradientCheckpointing"] is False
    assert on["losses"] == pytest.approx(off["losses"], rel=1e-5, abs=1e-6)


def test_auto_leaves_a_tiny_model_without_checkpointing(monkeypatch, make_spec, events):
    record, calls = run_counting_recompute(monkeypatch, make_spec(out="auto", maxSteps=2))
    assert calls == 2 and record["gradientCheckpointing"] is False


def test_the_resources_event_on_cpu(make_spec, events):
    assert train(parse_train_spec(make_spec(out="res", maxSteps=2))) == 0
    evs = events.read()
    names = [e["event"] for e in evs]
    assert names[-2:] == ["resources", "done"]
    res = evs[-2]
    assert res["peakMemorySource"] == "ru_maxrss" and res["peakMemoryBytes"] > 50 * 2**20  # torch alone is more
    assert res["mfu"] is None and res["peakFlops"] is None  # no datasheet peak for a CPU
    start = evs[0]
    assert res["flopsPerToken"] == 4 * start["totalParams"] + 2 * start["trainableParams"]


def test_mfu_is_model_flops_over_the_device_peak(monkeypatch):
    monkeypatch.setattr(resources, "peak_memory", lambda device: (123, "cuda.max_memory_allocated"))
    monkeypatch.setattr(resources, "peak_flops", lambda device: 1e12)
    got = resources.run_resources("cuda", torch.bfloat16, 1_000_000, 1_000_000, tokens=5000, seconds=2.0,
                                  checkpointing=True)
    assert got["flopsPerToken"] == 6e6  # full fine-tuning: the usual 6·N
    assert got["mfu"] == pytest.approx(6e6 * 2500 / 1e12)
    assert resources.run_resources("cuda", torch.float32, 10, 0, 10, 1.0, False)["mfu"] is None


def test_peak_flops_table_matches_device_names(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 PCIe")
    assert resources.peak_flops("cuda") == 756e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    assert resources.peak_flops("cuda") == 989e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA L40S")
    assert resources.peak_flops("cuda") == 362e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Some Future GPU")
    assert resources.peak_flops("cuda") is None


# --- the memory guard --------------------------------------------------------------------------

def test_full_that_cannot_fit_is_refused_before_any_weight_loads(monkeypatch, make_spec):
    spec = parse_train_spec(make_spec(method={"method": "full"}, out="big"))
    need = resources.train_memory_bytes(resources.read_config(spec.modelPath), "full", "adamw", 2, 512, False, "cpu")
    monkeypatch.setenv("PEFTGRID_DEVICE_MEMORY_BYTES", str(need["total"] - 1))

    def no_load(*a, **kw):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(methods, "load_base", no_load)
    with pytest.raises(ModelTooLarge) as err:
        train(spec)
    msg = str(err.value)
    assert spec.modelPath in msg and "lora or qlora" in msg and "full fine-tuning" in msg
    assert f"{need['total'] / 2**30:.1f} GiB" in msg


def test_full_that_fits_and_lora_are_not_refused(monkeypatch, make_spec, events):
    spec = make_spec(method={"method": "full"}, out="fits", maxSteps=1)
    need = resources.train_memory_bytes(resources.read_config(spec["modelPath"]), "full", "adamw", 2, 512, False,
                                        "cpu")
    monkeypatch.setenv("PEFTGRID_DEVICE_MEMORY_BYTES", str(need["total"]))
    assert train(parse_train_spec(spec)) == 0
    monkeypatch.setenv("PEFTGRID_DEVICE_MEMORY_BYTES", "1")  # LoRA is never refused by the guard
    assert train(parse_train_spec(make_spec(out="lora", maxSteps=1))) == 0


def test_the_cli_exits_2_with_a_typed_error(make_spec, tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(make_spec(method={"method": "full"}, out="cli")))
    code, evs, _ = run_cli(["train", "--spec", str(spec_path)],
                           env={**os.environ, "PEFTGRID_DEVICE_MEMORY_BYTES": "1000000"})
    assert code == 2
    assert [e["type"] for e in evs if e["event"] == "error"] == ["ModelTooLarge"]
    assert not [e for e in evs if e["event"] == "start"]  # refused before the model was built
