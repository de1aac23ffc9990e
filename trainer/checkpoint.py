"""Checkpoint and final-output directories (docs/contracts.md §2), written atomically.

Every directory is assembled under a temp name and renamed into place, so `checkpoints/step-<N>/`
either does not exist or is complete; the caller prints the `checkpoint` event only afterwards.

A checkpoint holds:
  adapter_model.safetensors + adapter_config.json  PEFT's own adapter (what evaluation would use)
  trainable.safetensors   every trainable parameter by name, untruncated: the resume source. PEFT's
                          AdaLoRA save drops pruned ranks, so its adapter file cannot resume exactly.
  optimizer.pt, scheduler.pt, rng.pt (python/numpy/torch/cuda), adalora.pt (rank allocator)
  trainer_state.json      step, data position (examples consumed), loss history, run identity
"""
import json
import os
import random
import shutil

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .events import InvalidSpec

STATE_VERSION = 1


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


def save_checkpoint(output_dir, model, optimizer, scheduler, state, extra=None):
    """Write `output_dir/checkpoints/step-<state.step>/` atomically; returns its path."""
    final = os.path.join(output_dir, "checkpoints", f"step-{state['step']}")
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = _atomic_dir(final)
    if hasattr(model, "peft_config"):
        model.save_pretrained(tmp)
    save_file(trainable_state(model), os.path.join(tmp, "trainable.safetensors"))
    torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
    torch.save(scheduler.state_dict(), os.path.join(tmp, "scheduler.pt"))
    torch.save(rng_state(), os.path.join(tmp, "rng.pt"))
    for name, obj in (extra or {}).items():
        torch.save(obj, os.path.join(tmp, f"{name}.pt"))
    with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
        json.dump({"version": STATE_VERSION, **state}, f, indent=1)
    return _commit(tmp, final)


def read_state(ckpt_dir):
    """trainer_state.json of a checkpoint: read before any heavy work, to fail fast on a bad path."""
    path = os.path.join(ckpt_dir or "", "trainer_state.json")
    if not os.path.isfile(path):
        raise InvalidSpec(f"--resume-from: got {ckpt_dir!r}; expected a checkpoint directory with trainer_state.json")
    with open(path) as f:
        state = json.load(f)
    if state.get("version") != STATE_VERSION:
        raise InvalidSpec(f"--resume-from: trainer_state.json version {state.get('version')}; expected {STATE_VERSION}")
    return state


def check_compatible(state, identity):
    for key, want in identity.items():
        if state.get(key) != want:
            raise InvalidSpec(f"--resume-from: the checkpoint has {key}={state.get(key)!r}; the spec implies "
                              f"{want!r}: resuming would not continue the same run")


def load_checkpoint(ckpt_dir, model, optimizer, scheduler):
    """Restore weights, optimizer and scheduler in place; returns the extra states (e.g. adalora)."""
    weights = load_file(os.path.join(ckpt_dir, "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in params if params[n].requires_grad and n not in weights]
    if missing or any(n not in params for n in weights):
        raise InvalidSpec(f"--resume-from: trainable parameters do not match the model (e.g. {(missing or list(weights))[0]})")
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t)
    device = next(iter(params.values())).device
    # Our own files: weights_only=False is needed for python/numpy RNG states and bnb optimizer state.
    optimizer.load_state_dict(torch.load(os.path.join(ckpt_dir, "optimizer.pt"), map_location=device, weights_only=False))
    scheduler.load_state_dict(torch.load(os.path.join(ckpt_dir, "scheduler.pt"), weights_only=False))
    extra = {}
    for name in os.listdir(ckpt_dir):
        if name.endswith(".pt") and name not in ("optimizer.pt", "scheduler.pt", "rng.pt"):
            extra[name[:-3]] = torch.load(os.path.join(ckpt_dir, name), map_location=device, weights_only=False)
    return extra


def restore_rng(ckpt_dir):
    set_rng_state(torch.load(os.path.join(ckpt_dir, "rng.pt"), weights_only=False))


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
