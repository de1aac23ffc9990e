"""Shared fixtures: the SmolLM2 tokenizer directory, tiny random models, a tiny QA shard.

Everything heavy is session-scoped and built in-process (imports cost more than the models).
SmolLM2 lives where infra/bootstrap.sh puts it; if it is missing, the fixture materializes it
there with the trainer's own command (about 25 s, once).
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from trainer import models  # noqa: E402
from trainer.data import write_pgtok  # noqa: E402

FAMILIES = ["llama", "gemma", "mistral"]
QA = [("what is the capital of france?", "paris"), ("what color is the sky?", "blue"),
      ("how many legs does a spider have?", "eight"), ("who wrote hamlet?", "william shakespeare")]


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CUDA (skipped without it)")


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm2_dir():
    path = models.SMOLLM2_DIR
    if not models.is_complete(path):
        models.materialize_gguf(path)
    return path


@pytest.fixture(scope="session")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, smollm2_dir):
    root = tmp_path_factory.mktemp("tiny")
    return {f: models.make_tiny(f, str(root / f), smollm2_dir, seed=0) for f in FAMILIES}


def qa_examples(tokenizer, qa=QA):
    out = []
    for q, a in qa:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        answer = tokenizer(a)["input_ids"] + [tokenizer.eos_token_id]
        out.append((prompt + answer, len(prompt)))
    return out


@pytest.fixture(scope="session")
def shard(tmp_path_factory, tokenizer):
    path = str(tmp_path_factory.mktemp("data") / "train.pgtok")
    write_pgtok(path, qa_examples(tokenizer))
    return path


def grid_schema():
    with open(os.path.join(ROOT, "schema", "grid.schema.json")) as f:
        return json.load(f)


def resolved_method(method):
    """A method entry with the grid schema's defaults filled in, as the TypeScript side sends it.

    The trainer requires every hyperparameter (defaults live once, in src/config/schema.ts); tests
    name only the ones they care about and take the rest from the generated JSON Schema."""
    entries = grid_schema()["properties"]["methods"]["items"]["oneOf"]
    props = next((e["properties"] for e in entries if e["properties"]["method"].get("const") == method.get("method")), {})
    return {**{k: p["default"] for k, p in props.items() if "default" in p}, **method}


@pytest.fixture
def make_spec(tiny, shard, tmp_path):
    """A valid train-spec dict for a tiny model; keyword overrides merge into `training`/`method`."""
    def make(family="llama", method=None, out="out", **training):
        return {"runKey": f"test-{family}", "modelPath": tiny[family], "family": family,
                "method": resolved_method(method or {"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0}),
                "trainData": shard, "outputDir": str(tmp_path / out),
                "training": {"maxSteps": 4, "lr": 1e-3, "warmupSteps": 0, "scheduler": "constant",
                             "optimizer": "adamw", "batchSize": 2, "checkpointEverySteps": 100, "seed": 7,
                             "maxLength": 512, "device": "cpu", "gradientCheckpointing": "auto",
                             **training},
                "device": "cpu"}
    return make


def run_cli(args, timeout=300, **kw):
    """`python -m trainer ...` as the activity runs it; returns (returncode, events, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "trainer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kw)
    return proc.returncode, parse_events(proc.stdout), proc.stderr


def parse_events(stdout):
    # Every stdout line must be a JSON object with an `event`: that is the contract.
    events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert all(isinstance(e, dict) and "event" in e for e in events), stdout
    return events


class Events:
    """Collects the JSON lines an in-process run prints (capsys captures sys.stdout)."""

    def __init__(self, capsys):
        self.capsys = capsys

    def read(self):
        return parse_events(self.capsys.readouterr().out)


@pytest.fixture
def events(capsys):
    return Events(capsys)
