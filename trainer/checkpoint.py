"""Checkpoint and final-output directories (docs/contracts.md §2), written atomically.

Every directory is assembled under a temp name and renamed into place, so `checkpoints/step-<N>/`
either does not exist or is complete; the caller prints the `checkpoint` event only afterwards.

A checkpoint holds:
  adapter_model.safetensors + adapter_config.json  PEFT's own adapter (what evaluation would use)
  trainable.safetensors   every trainable parameter by name, untruncated: the resume source. PEFT's
                          AdaLoRA save drops pruned ranks, so its adapter file cannot resume exactly.
  optimizer.safetensors, scheduler.safetensors, rng.safetensors (python/numpy/torch/cuda),
  adalora.safetensors     (rank allocator): nested state without pickle, see statefile.py
  trainer_state.json      step, data position (examples consumed), loss history, run identity
  + carried inputs        files the caller asks to travel with it (distill.py: the target's outputs)

Nothing here unpickles: a checkpoint comes from a shared bucket, and anyone who can write there must
not be able to run code on the workers that resume it.

A checkpoint `--resume-from` cannot use (another STATE_VERSION, a missing or unreadable file, a load
failure after a library upgrade, parameters that do not match the model, another run's identity)
raises CheckpointRejected (exit 3): the activity then falls back to an older checkpoint or a fresh
start instead of retrying the same one. The cheap checks (state, identity, file headers) run before
the model is built.
"""
import json
import os
import random
import shutil
from contextlib import contextmanager

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .events import CheckpointRejected, InvalidSpec
from .statefile import check_file, load_tree, save_tree

# 2: optimizer/scheduler/rng/extra state in safetensors + JSON (statefile.py). Version 1 held pickles
# (*.pt) that this code refuses to load at all, so a version-1 checkpoint is rejected, never half-read.
STATE_VERSION = 2
WEIGHTS = "trainable.safetensors"
STATE_FILES = ("optimizer", "scheduler", "rng")  # + the method's extras, e.g. "adalora"
# What a bad file can raise while being parsed or applied. Not MemoryError/OutOfMemoryError: a full
# GPU is not the checkpoint's fault, and another checkpoint would not fit either.
LOAD_ERRORS = (OSError, ValueError, TypeError, KeyError, IndexError, RuntimeError, SafetensorError)
EXPECTED = f"expected a checkpoint written by this trainer (state version {STATE_VERSION})"


def _atomic_dir(final):
    tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    return tmp


def _commit(tmp, final):
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def state_file(name):
    return f"{name}.safetensors"


def trainable_state(model):
    return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in model.named_parameters() if p.requires_grad}


def rng_state():
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(output_dir, model, optimizer, scheduler, state, extra=None, carry=()):
    """Write `output_dir/checkpoints/step-<state.step>/` atomically; returns its path. `carry`: files
    copied in as they are (inputs a resume elsewhere needs, e.g. distill.py's generated targets)."""
    final = os.path.join(output_dir, "checkpoints", f"step-{state['step']}")
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = _atomic_dir(final)
    if hasattr(model, "peft_config"):
        model.save_pretrained(tmp)
    save_file(trainable_state(model), os.path.join(tmp, WEIGHTS))
    trees = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
             **(extra or {})}
    for name, tree in trees.items():
        save_tree(os.path.join(tmp, state_file(name)), tree)
    for path in carry:
        shutil.copy2(path, tmp)
    with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
        json.dump({"version": STATE_VERSION, **state}, f, indent=1)
    return _commit(tmp, final)


@contextmanager
def loading(ckpt_dir, name):
    """Turn any failure to read or apply checkpoint file `name` into CheckpointRejected (exit 3)."""
    try:
        yield
    except LOAD_ERRORS as e:
        if isinstance(e, torch.OutOfMemoryError):
            raise
        raise CheckpointRejected(f"--resume-from: {name} of {ckpt_dir} cannot be used ({type(e).__name__}: "
                                 f"{str(e)[:500]}); {EXPECTED}") from e


def read_state(ckpt_dir, extras=()):
    """trainer_state.json of a checkpoint, and a header check of every file the resume will load.

    Runs before any heavy work, so a rejected checkpoint costs well under a second. A path that is not
    a directory at all is the caller's mistake, which another checkpoint would repeat: InvalidSpec.
    """
    if not os.path.isdir(ckpt_dir or ""):
        raise InvalidSpec(f"--resume-from: got {ckpt_dir!r}; expected a checkpoint directory (step-<N>)")
    with loading(ckpt_dir, "trainer_state.json"):
        with open(os.path.join(ckpt_dir, "trainer_state.json")) as f:
            state = json.load(f)
        if not isinstance(state, dict):
            raise ValueError(f"got a JSON {type(state).__name__}; expected an object")
    if state.get("version") != STATE_VERSION:
        raise CheckpointRejected(f"--resume-from: trainer_state.json of {ckpt_dir} has version "
                                 f"{state.get('version')!r}; expected {STATE_VERSION}")
    for key, kind, expected in (("step", int, "an integer"), ("position", int, "an integer"),
                                ("losses", list, "a list")):
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise CheckpointRejected(f"--resume-from: trainer_state.json of {ckpt_dir} has {key}="
                                     f"{state.get(key)!r}; expected {expected}")
    with loading(ckpt_dir, WEIGHTS):
        with safe_open(os.path.join(ckpt_dir, WEIGHTS), framework="pt"):
            pass
    for name in (*STATE_FILES, *extras):
        with loading(ckpt_dir, state_file(name)):
            check_file(os.path.join(ckpt_dir, state_file(name)))
    return state


def check_compatible(state, identity, run_key=None):
    for key, want in identity.items():
        if state.get(key) != want:
            raise CheckpointRejected(f"--resume-from: the checkpoint has {key}={state.get(key)!r}; the spec implies "
                                     f"{want!r}: resuming would not continue the same run")
    # An empty runKey (a hand-run trainer, an old checkpoint) proves nothing either way.
    if run_key and state.get("runKey") and state["runKey"] != run_key:
        raise CheckpointRejected(f"--resume-from: the checkpoint has runKey={state['runKey']!r}; the spec has "
                                 f"{run_key!r}: resuming would not continue the same run")


def load_checkpoint(ckpt_dir, model, optimizer, scheduler, extras=()):
    """Restore weights, optimizer and scheduler in place; returns the extra states by name (e.g. adalora)."""
    params = dict(model.named_parameters())
    with loading(ckpt_dir, WEIGHTS):
        weights = load_file(os.path.join(ckpt_dir, WEIGHTS))
    missing = [n for n in params if params[n].requires_grad and n not in weights]
    unknown = [n for n in weights if n not in params]
    if missing or unknown:
        raise CheckpointRejected(f"--resume-from: {WEIGHTS} of {ckpt_dir} does not match the model's trainable "
                                 f"parameters (missing {missing[:3]}, unknown {unknown[:3]}); expected the same "
                                 f"method on the same model")
    wrong = [f"{n}: {tuple(t.shape)} vs {tuple(params[n].shape)}" for n, t in weights.items()
             if t.shape != params[n].shape]
    if wrong:
        raise CheckpointRejected(f"--resume-from: {WEIGHTS} of {ckpt_dir} has other shapes than the model "
                                 f"(checkpoint vs model: {wrong[:3]}); expected the same method on the same model")
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t)
    device = next(iter(params.values())).device
    with loading(ckpt_dir, state_file("optimizer")):
        optimizer.load_state_dict(load_tree(os.path.join(ckpt_dir, state_file("optimizer")), device))
    with loading(ckpt_dir, state_file("scheduler")):
        scheduler.load_state_dict(load_tree(os.path.join(ckpt_dir, state_file("scheduler"))))
    extra = {}
    for name in extras:
        with loading(ckpt_dir, state_file(name)):
            extra[name] = load_tree(os.path.join(ckpt_dir, state_file(name)), device)
    return extra


def restore_rng(ckpt_dir):
    with loading(ckpt_dir, state_file("rng")):
        set_rng_state(load_tree(os.path.join(ckpt_dir, state_file("rng"))))


def save_final(output_dir, model, log_record, model_path=None):
    """`output_dir/final/`: the adapter (or, for full fine-tuning, a loadable model dir) + training_log.json."""
    final = os.path.join(output_dir, "final")
    tmp = _atomic_dir(final)
    model.save_pretrained(tmp, safe_serialization=True)
    if not hasattr(model, "peft_config") and model_path:
        # A full fine-tune is a whole model: carry the tokenizer so the directory stands alone.
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                     "chat_template.jinja", "tokenizer.model"):
            src = os.path.join(model_path, name)
            if os.path.isfile(src) and not os.path.exists(os.path.join(tmp, name)):
                shutil.copy2(src, tmp)
    with open(os.path.join(tmp, "training_log.json"), "w") as f:
        json.dump(log_record, f, indent=1)
    return _commit(tmp, final)
