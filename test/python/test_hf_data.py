"""`python -m trainer export-dataset`: a save_to_disk DatasetDict split → JSON lines (hfDisk datasets).

The directory is written by the real `datasets` library, so the test holds the export to what that
version's `save_to_disk` writes. Bad input comes out typed (exit 2 with an InvalidSpec `error`
event naming the directory and the cause), never as a traceback the activity would retry.
"""
import json

import pytest
from conftest import run_cli


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
    out = tmp_path / "out.jsonl"
    code, events, _ = run_cli(["export-dataset", "--path", str(dataset_dir / path), "--split", split,
                               "--out", str(out)], timeout=120)
    assert code == 2
    assert events[-1]["event"] == "error" and events[-1]["type"] == "InvalidSpec"
    assert message in events[-1]["message"]
    assert not out.exists()
