"""`python -m trainer stage` against a local hub (test/helpers/hub-server.ts, HF_ENDPOINT pointed at it).

The model is a few plain files: staging copies bytes and never loads them. Each hub failure must
come out typed (exit 2 with an `error` event naming the model and the cause), not as a traceback the
activity would retry.
"""
import json
import os
import subprocess

import pytest
from conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    dirs = {}
    for rev, weights in (("main", b"\x01" * 70_000), ("v2", b"\x02" * 50_000)):
        d = root / rev
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model_type": "llama", "rev": rev}))
        (d / "tokenizer.json").write_text('{"model": {}}')
        (d / "model.safetensors").write_bytes(weights)
        dirs[rev] = str(d)
    repos = {"acme/tiny": {"revisions": dirs}, "acme/gated": {"revisions": {"main": dirs["main"]}, "gated": True}}
    proc = subprocess.Popen(["node", "--import", "tsx", "test/helpers/hub-server.ts", json.dumps(repos)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline())
    yield info
    proc.kill()
    proc.wait()


def stage(hub, tmp_path, repo, revision=None, token=None, patterns=None, cache=None):
    spec = tmp_path / "stage.json"
    cache = cache or str(tmp_path / "cache")
    spec.write_text(json.dumps({"repoId": repo, "revision": revision, "cacheDir": cache, "allowPatterns": patterns}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub["endpoint"], HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    if token:
        env["HF_TOKEN"] = token
    return run_cli(["stage", "--spec", str(spec)], timeout=120, env=env)


def test_stages_a_revision_and_reports_its_sha_bytes_and_dir(hub, tmp_path):
    code, events, err = stage(hub, tmp_path, "acme/tiny", revision="v2")
    assert code == 0, err
    done = events[-1]
    assert done["event"] == "staged" and done["revision"] == hub["shas"]["acme/tiny@v2"]
    assert done["files"] == 3 and done["bytes"] == os.path.getsize(os.path.join(done["dir"], "model.safetensors")) + \
        os.path.getsize(os.path.join(done["dir"], "config.json")) + 13
    assert sorted(os.listdir(done["dir"])) == [".complete", "config.json", "model.safetensors", "tokenizer.json"]
    assert json.load(open(os.path.join(done["dir"], "config.json")))["rev"] == "v2"
    progress = [e for e in events if e["event"] == "staging"]
    assert progress and progress[-1]["bytes"] == progress[-1]["totalBytes"] == done["bytes"]
    # A completed stage is reused: the same directory, no second download.
    code, again, err = stage(hub, tmp_path, "acme/tiny", revision=done["revision"])
    assert code == 0, err
    assert [e["event"] for e in again] == ["staged"] and again[0]["dir"] == done["dir"]


def test_allow_patterns_fetch_only_the_tokenizer_and_config(hub, tmp_path):
    code, events, err = stage(hub, tmp_path, "acme/tiny", patterns=["*.json", "tokenizer*"])
    assert code == 0, err
    d = events[-1]["dir"]
    assert sorted(os.listdir(d)) == [".complete", "config.json", "tokenizer.json"]
    assert events[-1]["revision"] == hub["shas"]["acme/tiny@main"]


def test_gated_model_with_a_token(hub, tmp_path):
    code, events, err = stage(hub, tmp_path, "acme/gated", token=hub["token"])
    assert code == 0, err
    assert events[-1]["event"] == "staged"


@pytest.mark.parametrize("repo, revision, token, kind, words", [
    ("acme/gated", None, None, "ModelGated", ["acme/gated", "401", "HF_TOKEN is not set"]),
    ("acme/gated", None, "hf_wrong", "ModelGated", ["acme/gated", "403", "HF_TOKEN is set"]),
    ("acme/tiny", "no-such-branch", None, "RevisionNotFound", ["acme/tiny", "'no-such-branch'"]),
    ("acme/missing", None, None, "ModelNotFound", ["acme/missing", "no such model"]),
])
def test_hub_failures_are_typed_and_name_the_model_and_cause(hub, tmp_path, repo, revision, token, kind, words):
    code, events, err = stage(hub, tmp_path, repo, revision=revision, token=token)
    assert code == 2, err
    assert events[-1]["event"] == "error" and events[-1]["type"] == kind, events
    for w in words:
        assert w in events[-1]["message"]
    assert not os.path.exists(tmp_path / "cache") or not os.listdir(tmp_path / "cache")


def test_an_unreachable_hub_is_retryable(tmp_path):
    code, events, err = stage({"endpoint": "http://127.0.0.1:9"}, tmp_path, "acme/tiny")
    assert code == 1, err  # infrastructure: the activity retries


def test_a_malformed_spec_is_invalid(hub, tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"repoId": "acme/tiny", "cacheDir": "", "extra": 1}))
    code, events, _ = run_cli(["stage", "--spec", str(spec)], timeout=60)
    assert code == 2 and events[-1]["type"] == "InvalidSpec"
