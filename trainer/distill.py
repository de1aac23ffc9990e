"""`python -m trainer distill`: a speculative draft fine-tuned on the target's own greedy outputs.

Two phases in one process. First the target (base, or base + adapter, loaded as `trainer generate`
loads it) decodes every training prompt greedily, batched, EOS on, at most `maxNewTokens` tokens;
each prompt with the target's output becomes one example of `distill-targets.pgtok`, the output
(with the EOS the target emitted, so the draft learns where answers end) as its answer: the
trained loss covers those tokens only (data.collate masks the prompt). Then the draft trains on
that shard through train.py's own loop, so events, checkpoints, SIGTERM and resume are training's.

Durability: the generated shard is copied into every checkpoint (train's `carry`), so a resume
(`--resume-from`, on any machine) reads the very examples the interrupted attempt trained on
instead of decoding again, and the resumed loss curve continues the uninterrupted one. A LoRA
draft is merged at the end (train's `finalize`): `final/` is always a plain HF model directory
with the draft's tokenizer, exported and evaluated like any draft.
"""
import gc
import os
import time
from dataclasses import replace
from types import SimpleNamespace

import torch

from .data import Shard, write_pgtok
from .events import CheckpointRejected, InvalidSpec, log
from .generate import decode, finish, load_model, plan_batches, prepare, token_rules
from .methods import resolve_device
from .train import train

TARGETS = "distill-targets.pgtok"


def target_examples(target, shard, device, dtype):
    """[(prompt + target output, prompt length)] for every training prompt the target can run.

    Prompts are cut from the left as the engines cut them (generate.prepare); a prompt that cannot
    run at all (empty, ids outside the vocabulary) is left out and counted in the log."""
    gspec = SimpleNamespace(modelPath=target.modelPath, adapterDir=target.adapterDir, method=target.method,
                            maxNewTokens=target.maxNewTokens, stopSequences=[], gamma=1, promptLookupNgram=None)
    model, base, prefix = load_model(gspec, device, dtype)
    eos, pad = token_rules(target.adapterDir if target.method == "full" and target.adapterDir else target.modelPath,
                           base)
    max_positions = base.config.max_position_embeddings - prefix
    if target.maxNewTokens >= max_positions:
        raise InvalidSpec(f"distill.maxNewTokens: got {target.maxNewTokens}; expected < {max_positions} "
                          "(the target's positions)")
    prompts = [[int(t) for t in shard[i][0][:shard[i][1]]] for i in range(len(shard))]
    prepared = [prepare(p, max_positions - target.maxNewTokens, base.config.vocab_size) for p in prompts]
    runnable = [(i, toks) for i, (toks, _, err) in enumerate(prepared) if err is None]
    outputs, t0, generated = {}, time.perf_counter(), 0
    for batch in plan_batches(runnable, target.batchSize):
        rows, _ = decode(model, [toks for _, toks in batch], eos, pad, gspec, device, prefix=prefix)
        for (index, toks), row in zip(batch, rows):
            tokens, reason, count = finish(row, set(eos), [], target.maxNewTokens)
            generated += count
            # The EOS id the target emitted is part of what the draft must predict.
            outputs[index] = (toks, tokens + ([row[count - 1]] if reason == "eos" else []))
        log(f"target outputs: {len(outputs)}/{len(runnable)} prompts, {generated} tokens, "
            f"{time.perf_counter() - t0:.1f} s")
    del model, base
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    skipped = len(prompts) - len(runnable)
    if skipped:
        log(f"{skipped} training prompts could not run on the target and are left out")
    examples = [(toks + out, len(toks)) for toks, out in (outputs[i] for i, _ in runnable)]
    if not examples:
        raise InvalidSpec("trainData: no training prompt could run on the target; expected at least one")
    return examples


def merge_lora(model):
    """The LoRA draft as a plain model: `final/` is then a model directory, not an adapter."""
    merged = model.merge_and_unload()
    # PEFT leaves `peft_config` on the unwrapped model; save_final would take it for an adapter
    # and leave the tokenizer out of the directory.
    if hasattr(merged, "peft_config"):
        del merged.peft_config
    return merged


def distill(spec, target, resume_from=None):
    """Generate (or, resuming, take from the checkpoint) the target's outputs, then train the draft."""
    os.makedirs(spec.outputDir, exist_ok=True)
    path = os.path.join(spec.outputDir, TARGETS)
    if resume_from:
        carried = os.path.join(resume_from, TARGETS)
        if not os.path.isfile(carried):
            # Decoding again could give other examples than the ones trained on so far.
            raise CheckpointRejected(f"--resume-from: {resume_from} has no {TARGETS}; expected a checkpoint "
                                     "written by `trainer distill`")
        path = carried
        log(f"resuming: the target outputs come from {carried}")
    else:
        device, dtype = resolve_device(spec.device)
        shard = Shard(spec.trainData)
        log(f"distill: {len(shard)} training prompts through the target {target.modelPath} on {device}")
        write_pgtok(path, target_examples(target, shard, device, dtype))
    finalize = merge_lora if spec.method_name == "lora" else None
    return train(replace(spec, trainData=path), resume_from=resume_from, carry=(path,), finalize=finalize)
