"""The training loop: plain PyTorch, one optimizer step per batch, resume as a first-class path.

Why not HF Trainer: the durable protocol needs checkpoints at exact steps with the data position
in them, a SIGTERM path that checkpoints between steps, AdaLoRA's update_and_allocate on every
optimizer step, and bit-for-bit resume on CPU. All of that is clearer in forty lines of loop.

Determinism: the data order is a pure function of (seed, position) (see data.py); the global
RNGs (dropout, LoRA init) are seeded once and, on resume, restored from rng.safetensors right before
the first step, after the model is built. Same machine, same thread count → same losses.
"""
import math
import os
import random
import signal
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from . import resources
from .data import IGNORE_INDEX, Shard, batch_indices, collate
from .events import EXIT_DONE, EXIT_PREEMPTED, emit, log
from .methods import (adalora_state, build_model, build_optimizer, build_scheduler, count_params, is_adalora,
                      load_adalora_state, resolve_device)

CLIP_NORM = 1.0  # gradient clipping, as in the study (HF Trainer's max_grad_norm default)


class Preemption:
    """SIGTERM/SIGINT only set a flag: the loop finishes its step, checkpoints, then exits 75.

    The handler does no I/O (it may interrupt a write to the event stream): it records which signal
    arrived and the last step completed at that moment (`step`, kept current by the loop), and the
    loop announces both in a `preempting` event before it saves.
    """

    def __enter__(self):
        self.requested = False
        self.step = 0
        self.signal_name, self.signal_step = None, None
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, _frame):
        if not self.requested:
            self.signal_name, self.signal_step = signal.Signals(signum).name, self.step
        self.requested = True


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def causal_lm_loss(logits, labels):
    # Prompt tuning prepends virtual tokens to the logits: the real tokens are the last S positions.
    logits = logits[:, -labels.shape[1]:-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


def train(spec, resume_from=None, carry=(), finalize=None):
    """Run `spec` to its final directory; returns the exit code (EXIT_DONE or EXIT_PREEMPTED).

    `carry`: files copied into every checkpoint, so a resume on another machine finds them there
    (distill.py's generated targets). `finalize(model) -> model`: applied before the final save
    (distill.py merges a LoRA draft into a plain model).
    """
    with Preemption() as stop:
        return _train(spec, resume_from, stop, tuple(carry), finalize)


def _train(spec, resume_from, stop, carry, finalize):
    t = spec.training
    shard = Shard(spec.trainData)
    adalora = is_adalora(spec)
    extras = ("adalora",) if adalora else ()
    # Before the model is built: a rejected checkpoint (exit 3) must cost the fallback nothing.
    resumed = ckpt.read_state(resume_from, extras) if resume_from else None
    identity = {"method": spec.method_name, "seed": t.seed, "batchSize": t.batchSize, "maxSteps": t.maxSteps,
                "examples": len(shard)}
    if resumed:
        ckpt.check_compatible(resumed, identity, spec.runKey)
    device, dtype = resolve_device(spec.device)
    log(f"run {spec.runKey or '(no runKey)'}: {spec.method_name} on {device} ({dtype}), {len(shard)} examples")

    # From config.json only: a full fine-tune that cannot fit fails here, before any weight is read.
    n_params = resources.count_from_config(spec.modelPath)
    checkpointing = resources.resolve_gradient_checkpointing(t.gradientCheckpointing, n_params)
    resources.check_fits(spec, device, n_params, checkpointing)
    seed_everything(t.seed)
    model = build_model(spec, device, dtype, checkpointing)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(t.optimizer, params, t.lr, device)
    scheduler = build_scheduler(t.scheduler, optimizer, t.warmupSteps, t.maxSteps)
    cfg = model.config  # PeftModel forwards to the base model's config
    # Pad positions are masked out of attention and loss: any valid id would do.
    pad_id = next((i for i in (cfg.pad_token_id, cfg.eos_token_id) if isinstance(i, int)), 0)

    # lrs beside losses: the report's per-step curves; None for steps of a checkpoint written before lrs were kept.
    step, position, losses, lrs = 0, 0, [], []
    if resumed:
        extra = ckpt.load_checkpoint(resume_from, model, optimizer, scheduler, extras)
        if adalora:
            with ckpt.loading(resume_from, ckpt.state_file("adalora")):
                load_adalora_state(model, extra["adalora"])
        step, position, losses = resumed["step"], resumed["position"], list(resumed["losses"])
        lrs = list(resumed.get("lrs") or [])[:len(losses)]
        lrs = [None] * (len(losses) - len(lrs)) + lrs
        ckpt.restore_rng(resume_from)
        log(f"resumed from {resume_from} at step {step} (data position {position})")
    trainable, total = count_params(model)
    emit("start", step=step, maxSteps=t.maxSteps, device=device, trainableParams=int(trainable),
         totalParams=int(total))

    def save(loss):
        state = {**identity, "step": step, "position": position, "losses": losses, "lrs": lrs, "runKey": spec.runKey}
        extra = {"adalora": adalora_state(model)} if adalora else None
        path = ckpt.save_checkpoint(spec.outputDir, model, optimizer, scheduler, state, extra, carry)
        emit("checkpoint", step=step, dir=os.path.abspath(path), loss=loss)
        return step

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" and dtype == torch.bfloat16
                else nullcontext())
    model.train()
    saved, started = (step if resumed else -1), time.perf_counter()
    loop_tokens, loop_seconds = 0, 0.0  # this process's steps only (MFU), checkpoint saves excluded
    stop.step = step
    while True:
        if stop.requested:
            emit("preempting", signal=stop.signal_name, signalStep=stop.signal_step, step=step)
            log(f"received {stop.signal_name} after step {stop.signal_step}: checkpointing step {step}")
            if saved != step:  # the periodic checkpoint of this step may already exist
                save(losses[-1] if losses else None)
            log(f"preempted at step {step}")
            return EXIT_PREEMPTED
        if step >= t.maxSteps:
            break
        t0 = time.perf_counter()
        batch = collate(shard, batch_indices(len(shard), t.seed, position, t.batchSize), pad_id, t.maxLength)
        batch = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
        lr = optimizer.param_groups[0]["lr"]
        with autocast:
            out = model(**batch)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        optimizer.step()
        step, position = step + 1, position + t.batchSize
        if adalora:
            # PEFT: after optimizer.step, before zero_grad (it reads the gradients). HF Trainer skips it.
            model.base_model.update_and_allocate(step)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            # AdaLoRA adds its orthogonality regularizer to out.loss: report the cross-entropy alone.
            loss = causal_lm_loss(out.logits, batch["labels"]).item() if adalora else out.loss.item()
        del out  # the logits are batch x length x vocab floats: free them before the next forward
        losses.append(loss)
        lrs.append(lr)
        # Completed from here on (set before it is announced, so a signal that arrives after the
        # step event can never report an older step): the checkpoint on a signal covers it.
        stop.step = step
        now = time.perf_counter()
        tokens = int(batch["attention_mask"].sum())
        loop_tokens, loop_seconds = loop_tokens + tokens, loop_seconds + (now - t0)
        emit("step", step=step, loss=loss, lr=lr, gradNorm=float(grad_norm), tokens=tokens, tokensPerSec=tokens / (now - t0),
             elapsedMs=round((now - started) * 1000), stepMs=round((now - t0) * 1000))
        if step % t.checkpointEverySteps == 0:
            saved = save(loss)

    window = losses[-t.lossWindow:]
    train_loss = sum(window) / len(window) if window else float("nan")
    perplexity = math.exp(min(train_loss, 700.0)) if window else None  # 700: below float overflow
    record = {"steps": step, "losses": losses, "lrs": lrs, "lossWindow": len(window), "trainLoss": train_loss,
              "trainPerplexity": perplexity,
              "definition": "trainLoss = mean cross-entropy of the last lossWindow steps; "
                            "trainPerplexity = exp(trainLoss)",
              "method": spec.method_name, "runKey": spec.runKey, "maxSteps": t.maxSteps}
    if adalora:
        record["rankPattern"] = {k: int(sum(v)) for k, v in (adalora_state(model)["rank_pattern"] or {}).items()}
    record["gradientCheckpointing"] = checkpointing
    final = ckpt.save_final(spec.outputDir, finalize(model) if finalize else model, record, spec.modelPath)
    emit("resources", **resources.run_resources(device, dtype, total, trainable, loop_tokens, loop_seconds,
                                                checkpointing))
    emit("done", step=step, finalDir=os.path.abspath(final), trainLoss=train_loss, trainPerplexity=perplexity)
    return EXIT_DONE
