"""`--resume-from` a checkpoint the trainer cannot use → a CheckpointRejected error event and exit 3.

The activity falls back to the previous checkpoint, then to a fresh start, on exit 3 (issue 12
point 4); exit 2 would fail the run, exit 1 would retry the same checkpoint. Every case runs the
CLI's own `main()` in-process (its exit code is the one the process returns); one runs the real
subprocess. Checkpoints planted with a pickle payload prove that no file is ever unpickled.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, parse_events, resolved_method
from test_statefile import plant_pickle

import trainer.__main__ as cli
import trainer.train
from trainer.spec import parse_train_spec
from trainer.statefile import load_tree, save_tree
from trainer.train import train

LORA = {"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0}
ADALORA = {"method": "adalora", "initR": 6, "targetR": 2, "tinit": 1, "tfinal": 1, "deltaT": 1, "alpha": 8,
           "dropout": 0.0}
STATE_FILES = ["trainer_state.json", "trainable.safetensors", "optimizer.safetensors", "scheduler.safetensors",
               "rng.safetensors"]


def spec_of(tiny, shard, out, method=LORA, run_key="test-llama", **training):
    # As conftest's make_spec, but usable by the module-scoped checkpoints below.
    return {"runKey": run_key, "modelPath": tiny["llama"], "family": "llama", "method": resolved_method(method),
            "trainData": shard, "outputDir": str(out), "device": "cpu",
            "training": {"maxSteps": 4, "lr": 1e-3, "warmupSteps": 0, "scheduler": "constant", "optimizer": "adamw",
                         "batchSize": 2, "checkpointEverySteps": 2, "seed": 7, "maxLength": 512, "device": "cpu",
                         "gradientCheckpointing": "auto", **training}}


def trained_checkpoint(spec):
    train(parse_train_spec(spec))  # 4 steps, checkpoints at 2 and 4: resume from the middle one
    return os.path.join(spec["outputDir"], "checkpoints", "step-2")


@pytest.fixture(scope="module")
def lora_ckpt(tiny, shard, tmp_path_factory):
    return trained_checkpoint(spec_of(tiny, shard, tmp_path_factory.mktemp("lora") / "out"))


@pytest.fixture(scope="module")
def adalora_ckpt(tiny, shard, tmp_path_factory):
    return trained_checkpoint(spec_of(tiny, shard, tmp_path_factory.mktemp("adalora") / "out", ADALORA))


@pytest.fixture
def copy(tmp_path):
    """A private copy of a module checkpoint, free to damage."""
    def make(src):
        return str(shutil.copytree(src, tmp_path / "step-2"))
    return make


@pytest.fixture
def resume(tiny, shard, tmp_path, monkeypatch, capsys):
    """Run `python -m trainer train --spec … --resume-from DIR` in-process: (exit code, events)."""
    monkeypatch.setattr(cli, "claim_stdout", lambda: None)  # keep stdout where capsys reads it
    monkeypatch.setattr(cli, "die_with_parent", lambda: None)

    build_model = trainer.train.build_model

    def run(ckpt_dir, method=LORA, build=True, **over):
        # build=False: the rejection must come before the model is loaded, so the fallback is cheap.
        monkeypatch.setattr(trainer.train, "build_model",
                            build_model if build else lambda *a: pytest.fail("the model was built"))
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec_of(tiny, shard, tmp_path / "resumed", method, **over)))
        capsys.readouterr()
        code = cli.main(["train", "--spec", str(path), "--resume-from", str(ckpt_dir)])
        return code, parse_events(capsys.readouterr().out)
    return run


def assert_rejected(result, *fragments):
    code, evs = result
    assert code == 3, evs
    assert evs[-1]["event"] == "error" and evs[-1]["type"] == "CheckpointRejected", evs
    for fragment in fragments:
        assert fragment in evs[-1]["message"], evs[-1]["message"]


def test_a_normal_resume_still_works_and_ignores_planted_pt_files(lora_ckpt, copy, resume, tmp_path):
    # The version-1 names, planted with live payloads: the trainer must never open them.
    ckpt_dir, marker = copy(lora_ckpt), tmp_path / "pwned"
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt", "adalora.pt", "training_args.bin"):
        plant_pickle(os.path.join(ckpt_dir, name), marker)
    code, evs = resume(ckpt_dir)
    assert code == 0 and evs[0] == {**evs[0], "event": "start", "step": 2} and evs[-1]["event"] == "done"
    assert [e["step"] for e in evs if e["event"] == "step"] == [3, 4]
    assert not marker.exists()


def test_another_state_version_is_rejected_before_the_model_loads(lora_ckpt, copy, resume, tmp_path):
    ckpt_dir, marker = copy(lora_ckpt), tmp_path / "pwned"
    path = os.path.join(ckpt_dir, "trainer_state.json")
    state = json.load(open(path))
    json.dump({**state, "version": 1}, open(path, "w"))
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):  # what a version-1 checkpoint held
        plant_pickle(os.path.join(ckpt_dir, name), marker)
    assert_rejected(resume(ckpt_dir, build=False), "trainer_state.json", "version 1; expected 2")
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["missing", "unreadable", "pickle"])
@pytest.mark.parametrize("name", STATE_FILES)
def test_a_damaged_file_is_rejected_before_the_model_loads(lora_ckpt, copy, resume, tmp_path, name, damage):
    ckpt_dir, marker = copy(lora_ckpt), tmp_path / "pwned"
    path = os.path.join(ckpt_dir, name)
    os.remove(path)
    if damage == "unreadable":
        os.mkdir(path)  # reads fail with an OSError, as an unreadable file does (tests may run as root)
    elif damage == "pickle":
        plant_pickle(path, marker)
    assert_rejected(resume(ckpt_dir, build=False), name, ckpt_dir)
    assert not marker.exists()


@pytest.mark.parametrize("state, fragment", [
    ({"step": "2"}, "step='2'; expected an integer"),
    ({"losses": None}, "losses=None; expected a list"),
])
def test_a_malformed_trainer_state_is_rejected(lora_ckpt, copy, resume, state, fragment):
    ckpt_dir = copy(lora_ckpt)
    path = os.path.join(ckpt_dir, "trainer_state.json")
    json.dump({**json.load(open(path)), **state}, open(path, "w"))
    assert_rejected(resume(ckpt_dir, build=False), fragment)


def test_a_json_array_state_is_rejected(lora_ckpt, copy, resume):
    ckpt_dir = copy(lora_ckpt)
    json.dump([1], open(os.path.join(ckpt_dir, "trainer_state.json"), "w"))
    assert_rejected(resume(ckpt_dir, build=False), "got a JSON list; expected an object")


def test_another_runs_identity_is_rejected(lora_ckpt, resume):
    assert_rejected(resume(lora_ckpt, build=False, batchSize=3), "batchSize=2; the spec implies 3")


def test_another_run_key_is_rejected_but_an_empty_one_proves_nothing(lora_ckpt, copy, resume):
    assert_rejected(resume(lora_ckpt, build=False, run_key="other"),
                    "runKey='test-llama'; the spec has 'other'")
    ckpt_dir = copy(lora_ckpt)
    path = os.path.join(ckpt_dir, "trainer_state.json")
    json.dump({**json.load(open(path)), "runKey": ""}, open(path, "w"))
    assert resume(ckpt_dir, run_key="other")[0] == 0


@pytest.mark.parametrize("method, fragment", [
    ({**LORA, "r": 8}, "has other shapes than the model"),  # same names, other rank
    ({**LORA, "targetModules": ["q_proj"]}, "does not match the model's trainable parameters"),
])
def test_trainable_parameters_that_do_not_match_the_model_are_rejected(lora_ckpt, resume, method, fragment):
    assert_rejected(resume(lora_ckpt, method), "trainable.safetensors", fragment)


def test_an_optimizer_state_the_library_cannot_load_is_rejected(lora_ckpt, copy, resume):
    # What a library upgrade on another worker looks like: a file that parses, which the optimizer refuses.
    ckpt_dir = copy(lora_ckpt)
    path = os.path.join(ckpt_dir, "optimizer.safetensors")
    state = load_tree(path)
    save_tree(path, {**state, "param_groups": state["param_groups"] * 2})
    assert_rejected(resume(ckpt_dir), "optimizer.safetensors", "ValueError", "parameter groups")


def test_an_rng_state_torch_cannot_restore_is_rejected(lora_ckpt, copy, resume):
    import torch
    ckpt_dir = copy(lora_ckpt)
    path = os.path.join(ckpt_dir, "rng.safetensors")
    save_tree(path, {**load_tree(path), "torch": torch.zeros(3, dtype=torch.uint8)})
    assert_rejected(resume(ckpt_dir), "rng.safetensors", "RuntimeError")


def test_a_state_tree_naming_a_missing_tensor_is_rejected(lora_ckpt, copy, resume):
    from safetensors.torch import save_file
    ckpt_dir = copy(lora_ckpt)
    save_file({}, os.path.join(ckpt_dir, "scheduler.safetensors"), metadata={"peftgrid.tree": '{"tensor":"0"}'})
    assert_rejected(resume(ckpt_dir), "scheduler.safetensors", "does not hold")


@pytest.mark.parametrize("damage", ["missing", "pickle"])
def test_adalora_without_a_usable_allocator_state_is_rejected(adalora_ckpt, copy, resume, tmp_path, damage):
    ckpt_dir, marker = copy(adalora_ckpt), tmp_path / "pwned"
    path = os.path.join(ckpt_dir, "adalora.safetensors")
    os.remove(path)
    if damage == "pickle":
        plant_pickle(path, marker)
    assert_rejected(resume(ckpt_dir, ADALORA, build=False), "adalora.safetensors")
    assert not marker.exists()


def test_adalora_allocator_state_of_other_parameters_is_rejected(adalora_ckpt, copy, resume):
    ckpt_dir = copy(adalora_ckpt)
    path = os.path.join(ckpt_dir, "adalora.safetensors")
    state = load_tree(path)
    assert state["ipt"], "the allocator has statistics to resume"
    state["ipt"] = {f"x.{n}": t for n, t in state["ipt"].items()}
    save_tree(path, state)
    assert_rejected(resume(ckpt_dir, ADALORA), "adalora.safetensors", "ipt holds ['x.")


def test_adalora_resumes_from_its_own_checkpoint(adalora_ckpt, resume):
    code, evs = resume(adalora_ckpt, ADALORA)
    assert code == 0 and evs[0]["step"] == 2


def test_a_path_that_is_no_checkpoint_directory_stays_invalid_spec(resume, tmp_path):
    # The caller's mistake, which no older checkpoint would fix: exit 2, not a fallback.
    code, evs = resume(tmp_path / "nowhere", build=False)
    assert code == 2 and evs[-1]["type"] == "InvalidSpec" and "expected a checkpoint directory" in evs[-1]["message"]


def test_the_cli_process_exits_3_without_running_a_planted_payload(lora_ckpt, tiny, shard, tmp_path):
    ckpt_dir, marker = shutil.copytree(lora_ckpt, tmp_path / "step-2"), tmp_path / "pwned"
    for name in STATE_FILES:
        plant_pickle(os.path.join(ckpt_dir, name), marker)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(spec_of(tiny, shard, tmp_path / "resumed")))
    proc = subprocess.run([sys.executable, "-m", "trainer", "train", "--spec", str(spec), "--resume-from",
                           str(ckpt_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    evs = parse_events(proc.stdout)
    assert proc.returncode == 3, proc.stderr
    assert [e["event"] for e in evs] == ["error"] and evs[0]["type"] == "CheckpointRejected"
    assert "Traceback" not in proc.stderr and not marker.exists()
