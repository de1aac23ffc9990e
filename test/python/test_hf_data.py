"""`python -m trainer export-dataset`: a save_to_disk DatasetDict split → JSON lines (hfDisk datasets).

The directory is written by the real `datasets` library, so the test holds the export to what that
version's `save_to_disk` writes. Bad input comes out typed (exit 2 with an InvalidSpec `error`
event naming the directory and the cause), never as a traceback the activity would retry.
"""
import json
import os
import re
import subprocess

import pytest
from conftest import ROOT, run_cli

from trainer.events import InvalidSpec
from trainer.hf_data import export_split


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    from datasets import Dataset, DatasetDict

    root = tmp_path_factory.mktemp("hf")
    train = Dataset.from_dict({
        "question": ["what is 2 + 2?", "what is the capital of france?", "café?"],
        "answer": ["4", "paris", None],
        "choices": [["3", "4"], ["paris", "rome"], ["oui", "non"]],
    })
    DatasetDict(train=train, validation=train.select([0])).save_to_disk(str(root / "dict"))
    train.save_to_disk(str(root / "single"))
    return root


def test_exports_every_row_of_the_split_as_json_lines(dataset_dir, tmp_path):
    out = tmp_path / "train.jsonl"
    code, events, stderr = run_cli(["export-dataset", "--path", str(dataset_dir / "dict"), "--split", "train",
                                    "--out", str(out)], timeout=120)
    assert code == 0, stderr
    assert events == []
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"question": "what is 2 + 2?", "answer": "4", "choices": ["3", "4"]},
        {"question": "what is the capital of france?", "answer": "paris", "choices": ["paris", "rome"]},
        # A missing value stays null: the JSONL parser counts the row as missing-field, not this export.
        {"question": "café?", "answer": None, "choices": ["oui", "non"]},
    ]
    assert not (tmp_path / "train.jsonl.tmp").exists()


@pytest.mark.parametrize("path,split,message", [
    ("dict", "test", "has no split 'test'; it has ['train', 'validation']"),
    ("single", "train", "holds one Dataset, expected a DatasetDict"),
    ("nothing", "train", "is not a directory"),
])
def test_bad_input_is_an_invalid_spec(dataset_dir, tmp_path, path, split, message):
    # In process (importing datasets per subprocess costs seconds); the CLI's exit code is checked below.
    out = tmp_path / "out.jsonl"
    with pytest.raises(InvalidSpec, match=re.escape(message)):
        export_split(str(dataset_dir / path), split, str(out))
    assert not out.exists() and not (tmp_path / "out.jsonl.tmp").exists()


def test_the_cli_reports_bad_input_as_exit_2_with_an_error_event(dataset_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    code, events, _ = run_cli(["export-dataset", "--path", str(dataset_dir / "dict"), "--split", "test",
                               "--out", str(out)], timeout=120)
    assert code == 2
    assert events[-1]["event"] == "error" and events[-1]["type"] == "InvalidSpec"
    assert "has no split 'test'" in events[-1]["message"]
    assert not out.exists()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A local hub (test/helpers/hub-server.ts) with one dataset repo: JSON lines named by split, and a
    model repo of the same name, which a dataset stage must not see."""
    root = tmp_path_factory.mktemp("hub-datasets")
    data = root / "data"
    (data / "data").mkdir(parents=True)
    (data / "data" / "train.jsonl").write_text("".join(
        json.dumps({"instruction": f"is {i} even?", "output": "yes" if i % 2 == 0 else "no"}) + "\n" for i in range(5)))
    (data / "data" / "test.jsonl").write_text(json.dumps({"instruction": "is 7 even?", "output": "no"}) + "\n")
    (data / "README.md").write_text("# a dataset card\n")
    model = root / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    repos = {"acme/parity": {"revisions": {"main": str(data)}, "type": "dataset"},
             "acme/other": {"revisions": {"main": str(model)}}}
    proc = subprocess.Popen(["node", "--import", "tsx", "test/helpers/hub-server.ts", json.dumps(repos)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline())
    yield info
    proc.kill()
    proc.wait()


def test_a_hub_dataset_is_staged_like_a_model_then_its_files_export_by_split(hub, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub["endpoint"], HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    spec = tmp_path / "stage.json"
    spec.write_text(json.dumps({"repoId": "acme/parity", "revision": None, "cacheDir": str(tmp_path / "cache"),
                                "allowPatterns": None, "repoType": "dataset"}))
    code, events, err = run_cli(["stage", "--spec", str(spec)], timeout=120, env=env)
    assert code == 0, err
    done = events[-1]
    assert done["event"] == "staged" and done["revision"] == hub["shas"]["acme/parity@main"]
    assert sorted(os.listdir(os.path.join(done["dir"], "data"))) == ["test.jsonl", "train.jsonl"]
    out = tmp_path / "train.jsonl"
    code, _, err = run_cli(["export-dataset", "--files", "--path", done["dir"], "--split", "train", "--out", str(out)],
                           timeout=120, env=env)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["instruction"] for r in rows] == [f"is {i} even?" for i in range(5)]
    # A model repo is not a dataset repo: the dataset API does not know it.
    spec.write_text(json.dumps({"repoId": "acme/other", "revision": None, "cacheDir": str(tmp_path / "cache2"),
                                "allowPatterns": None, "repoType": "dataset"}))
    code, events, _ = run_cli(["stage", "--spec", str(spec)], timeout=120, env=env)
    assert code == 2 and events[-1]["type"] == "ModelNotFound" and "no such dataset" in events[-1]["message"]
