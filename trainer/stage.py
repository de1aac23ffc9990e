"""`python -m trainer stage --spec <json>`: fetch a hub model into this worker's cache (docs/contracts.md §2).

Spec: {"repoId": "owner/name", "revision": null | "main" | "<sha>", "cacheDir": "<dir>",
"allowPatterns": null | ["tokenizer*", ...]}. The revision is resolved to a commit sha first, and the
files land in `<cacheDir>/<sha>[-<patterns hash>]`: a partial download lives next to it as
`.partial` (huggingface_hub resumes its own `.incomplete` files there) and is renamed only once
complete, so a reader never sees half a model. The caller (activities/hub-stage.ts) holds the cache
lock: nothing here guards against a second writer.

Events: `staging` (bytes done/total, polled from the partial directory) and a final `staged` with
the resolved sha and the directory. Hub errors a retry would repeat become typed failures naming
the model and the cause; connection errors stay exceptions (exit 1: the activity retries).
"""
import hashlib
import json
import os
import shutil
import threading

from .events import InvalidSpec, ModelGated, ModelNotFound, RevisionNotFound, emit, log

MARKER = ".complete"
TOKENIZER_PATTERNS = ["*.json", "tokenizer*", "*.model", "*.txt"]  # config, tokenizer, special tokens; no weights


def parse_stage_spec(data):
    if not isinstance(data, dict):
        raise InvalidSpec(f"stage spec: got {type(data).__name__}; expected a JSON object")
    unknown = set(data) - {"repoId", "revision", "cacheDir", "allowPatterns", "repoType"}
    if unknown:
        raise InvalidSpec(f"stage spec: unknown field(s) {sorted(unknown)}; "
                          "expected repoId, revision, cacheDir, allowPatterns, repoType")
    for name in ("repoId", "cacheDir"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise InvalidSpec(f"stage spec: {name}: got {data.get(name)!r}; expected a non-empty string")
    rev = data.get("revision")
    if rev is not None and (not isinstance(rev, str) or not rev):
        raise InvalidSpec(f"stage spec: revision: got {rev!r}; expected a branch, tag or commit sha, or null")
    pats = data.get("allowPatterns")
    if pats is not None and (not isinstance(pats, list) or not all(isinstance(p, str) and p for p in pats)):
        raise InvalidSpec(f"stage spec: allowPatterns: got {pats!r}; expected a list of glob patterns, or null")
    kind = data.get("repoType", "model")
    if kind not in ("model", "dataset"):
        raise InvalidSpec(f"stage spec: repoType: got {kind!r}; expected 'model' or 'dataset'")
    return {"repoId": data["repoId"], "revision": rev, "cacheDir": data["cacheDir"], "allowPatterns": pats,
            "repoType": kind}


def staged_dir(cache_dir, sha, patterns):
    """Where a stage of `sha` lives; a tokenizer-only stage is another directory than the full one."""
    if not patterns:
        return os.path.join(cache_dir, sha)
    return os.path.join(cache_dir, f"{sha}-{hashlib.sha256(json.dumps(sorted(patterns)).encode()).hexdigest()[:12]}")


def _token_note():
    return "HF_TOKEN is set but the hub refused it" if os.environ.get("HF_TOKEN") else "HF_TOKEN is not set"


def _typed(err, repo, revision, kind="model"):
    """A hub error → the failure a retry would repeat, or None (let it propagate: retryable)."""
    from huggingface_hub.utils import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
    status = getattr(getattr(err, "response", None), "status_code", None)
    # GatedRepoError is a RepositoryNotFoundError: test it first. A 401 without an error code is
    # what the hub answers for an invalid token.
    if isinstance(err, GatedRepoError) or status in (401, 403):
        return ModelGated(f"{repo}: the hub refused access ({status}, gated or private repo); {_token_note()}")
    if isinstance(err, RevisionNotFoundError):
        return RevisionNotFound(f"{repo}: revision {revision!r} does not exist on the hub")
    if isinstance(err, RepositoryNotFoundError) or (isinstance(err, HfHubHTTPError) and status == 404):
        return ModelNotFound(f"{repo}: no such {kind} on the hub ({status})")
    return None


def _dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass  # renamed under us (.incomplete → final)
    return total


def stage(spec, every_s=1.0):
    from fnmatch import fnmatch

    from huggingface_hub import HfApi, snapshot_download

    repo, revision, patterns = spec["repoId"], spec["revision"], spec["allowPatterns"]
    kind = spec.get("repoType", "model")
    token = os.environ.get("HF_TOKEN") or None
    try:
        info = HfApi().repo_info(repo, revision=revision, repo_type=kind, files_metadata=True, token=token)
    except Exception as err:  # noqa: BLE001 - typed below or re-raised as is
        typed = _typed(err, repo, revision, kind)
        if typed:
            raise typed from None
        raise
    sha = info.sha
    files = [s for s in info.siblings or [] if not patterns or any(fnmatch(s.rfilename, p) for p in patterns)]
    total = sum(s.size or 0 for s in files)
    target = staged_dir(spec["cacheDir"], sha, patterns)
    if os.path.exists(os.path.join(target, MARKER)):
        emit("staged", repoId=repo, revision=sha, dir=target, bytes=total, files=len(files))
        return target
    partial = target + ".partial"
    os.makedirs(partial, exist_ok=True)
    log(f"staging {repo}@{sha[:12]}: {len(files)} files, {total} bytes into {target}")

    done = threading.Event()

    def progress():
        while not done.wait(every_s):
            emit("staging", repoId=repo, bytes=min(_dir_bytes(partial), total), totalBytes=total)

    poller = threading.Thread(target=progress, daemon=True)
    poller.start()
    try:
        # The sha, not the revision: the files come from the commit reported, even if a branch moves.
        snapshot_download(repo, revision=sha, repo_type=kind, local_dir=partial, allow_patterns=patterns, token=token,
                          max_workers=4)
    except Exception as err:  # noqa: BLE001
        typed = _typed(err, repo, revision, kind)
        if typed:
            raise typed from None
        raise
    finally:
        done.set()
        poller.join()
    shutil.rmtree(os.path.join(partial, ".cache"), ignore_errors=True)  # huggingface_hub's resume metadata
    with open(os.path.join(partial, MARKER), "w") as f:
        json.dump({"repoId": repo, "revision": sha, "requested": revision, "files": len(files), "bytes": total}, f)
    shutil.rmtree(target, ignore_errors=True)  # a marker-less leftover: never a complete stage
    os.rename(partial, target)
    emit("staging", repoId=repo, bytes=total, totalBytes=total)
    emit("staged", repoId=repo, revision=sha, dir=target, bytes=total, files=len(files))
    return target
