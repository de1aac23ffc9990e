"""PyTorch side of bench/engine-vs-hf.ts: HF `model.generate` (greedy, KV cache on, EOS off) on
token-id prompts, timed the way the engine is timed.

    .venv/bin/python bench/engine_hf_generate.py request.json > result.json

request: {"modelDir", "prompts": [[ids]], "maxNewTokens", "batchSize", "threads", "repeats",
          "eosTokenIds"?: [ids] (EOS on, bench/eval-qa.ts: each row's tokens end at its first EOS,
          which is kept, as the engine counts it)}
result:  {"tokens": [[ids]] (in prompt order), "wallMs": best of `repeats` timed runs after one
          warm-up run, "runsMs": every timed run, "generatedTokens", "torch", "transformers"}

Like the engine's generate(), prompts are sorted by length, batched, left-padded with an
attention mask, and each row yields exactly maxNewTokens tokens (EOS disabled on both sides).
"""
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def batches(prompts, size):
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))  # as planBatches
    return [order[i:i + size] for i in range(0, len(order), size)]


def left_pad(rows, pad):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids, mask


def until_eos(tokens, eos):
    for j, t in enumerate(tokens):
        if t in eos:
            return tokens[:j + 1]
    return tokens


@torch.no_grad()
def run(model, prompts, max_new, batch_size, pad, eos=None):
    out = [None] * len(prompts)
    for batch in batches(prompts, batch_size):
        ids, mask = left_pad([prompts[i] for i in batch], pad)
        gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new,
                             min_new_tokens=None, pad_token_id=pad, eos_token_id=eos, use_cache=True)
        for row, i in enumerate(batch):
            out[i] = gen[row, ids.shape[1]:].tolist()
            if eos:
                out[i] = until_eos(out[i], set(eos))
    return out


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    torch.set_num_threads(req["threads"])
    model = AutoModelForCausalLM.from_pretrained(req["modelDir"], dtype=torch.float32).eval()
    # generate() stops rows at the configured EOS; off here so both sides do the same work.
    model.generation_config.eos_token_id = None
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    args = (model, req["prompts"], req["maxNewTokens"], req["batchSize"], pad, req.get("eosTokenIds"))
    run(*args)  # warm-up: allocator and kernel selection
    runs, tokens = [], None
    for _ in range(req["repeats"]):
        t0 = time.perf_counter()
        tokens = run(*args)
        runs.append((time.perf_counter() - t0) * 1000)
    json.dump({"tokens": tokens, "wallMs": min(runs), "runsMs": runs,
               "generatedTokens": sum(len(t) for t in tokens),
               "torch": torch.__version__, "transformers": transformers.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
