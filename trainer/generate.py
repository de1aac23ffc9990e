"""`python -m trainer generate`: the torch evaluation engine (docs/contracts.md §2, "torch engine").

The same job as the ONNX engine (src/engine/generate.ts, score.ts) on the trainer's own stack, for
models too large to export or evaluate on a CPU: bf16 on CUDA (fp32 on CPU), the adapter left
**unmerged** (PeftModel over the base it trained on: QLoRA's LoRA runs on the 4-bit NF4 base, not on
an fp32 merge), prompt tuning through PEFT's own soft prompt. It reads the tokenized test items (the
token ids the ONNX engine gets) and mirrors the engine's rules, so both produce the same greedy tokens:
prompts checked and cut from the left exactly as src/engine/prompts.ts does, batches sorted by length
and left-padded, a row ends at an EOS id (not part of the output), a stop sequence (removed) or
maxNewTokens. Speculative pairs use HF assisted generation (`assistant_model=`, one prompt at a
time: HF requires batch 1). Results go out as events (`sequence`, `batch`, `score`, `generated`); the
metrics are computed in TypeScript from them, as for the ONNX engine.
"""
import json
import time

import torch

from .events import EngineUnsupported, ModelNotFound, UnsupportedMethod, emit, log
from .methods import load_base, resolve_device

SPECULATIVE_BASELINE = 64  # items decoded target-only too, for the speedup (the ONNX engine's first chunk)


def precision_of(method, device, dtype):
    if method == "qlora":
        return "nf4-base"  # LoRA in the compute dtype on an NF4-quantized base
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def _load(path, device, dtype, quantize_4bit=False, field="modelPath"):
    try:
        model = load_base(path, device, dtype, quantize_4bit=quantize_4bit, field=field)
    except ModelNotFound as e:
        raise EngineUnsupported(f"eval.engine: \"torch\" cannot load {field} {path!r}: {e}") from None
    except (KeyError, RuntimeError, ImportError) as e:  # unknown architecture, bad weights, missing kernel
        raise EngineUnsupported(f"eval.engine: \"torch\" cannot load {field} {path!r} "
                                f"({type(e).__name__}: {e}); expected a causal LM transformers can run") from None
    return model.eval()


def load_model(spec, device, dtype):
    """(model, base model, soft prompt length). The adapter is applied, never merged."""
    if spec.adapterDir is not None and spec.method == "full":
        model = _load(spec.adapterDir, device, dtype, field="adapterDir")
        return model, model, 0
    base = _load(spec.modelPath, device, dtype, quantize_4bit=spec.method == "qlora")
    if spec.adapterDir is None:
        return base, base, 0
    from peft import PeftConfig, PeftModel
    try:
        config = PeftConfig.from_pretrained(spec.adapterDir)
        if spec.method == "prompt_tuning":
            config.prompt_tuning_init = "RANDOM"  # the trained prompt is in the adapter (see export.py)
        model = PeftModel.from_pretrained(base, spec.adapterDir, config=config).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise EngineUnsupported(f"eval.engine: \"torch\" cannot apply the {spec.method} adapter {spec.adapterDir!r} "
                                f"to {spec.modelPath!r} ({type(e).__name__}: {e})") from None
    prefix = config.num_virtual_tokens if spec.method == "prompt_tuning" else 0
    return model, base, prefix


def token_rules(model_dir, base):
    """EOS ids and the pad id, as the exporter writes them into engine.json (export.eos_and_pad)."""
    from transformers import AutoTokenizer
    from .export import eos_and_pad
    return eos_and_pad(AutoTokenizer.from_pretrained(model_dir), base.config, getattr(base, "generation_config", None))


def prepare(prompt, max_length, vocab, policy="truncate"):
    """src/engine/prompts.ts preparePrompts: (tokens, truncated, error); a prompt over `max_length`
    is cut from the left (`truncate`) or not run (`error`)."""
    if not prompt:
        return [], False, "empty prompt"
    bad = next((i for i in prompt if not isinstance(i, int) or i < 0 or i >= vocab), None)
    if bad is not None:
        return [], False, f"token id {bad} outside the vocabulary [0, {vocab})"
    if len(prompt) <= max_length:
        return list(prompt), False, None
    if policy == "error":
        return [], False, f"prompt has {len(prompt)} tokens, more than {max_length}"
    return list(prompt[len(prompt) - max_length:]), True, None


def plan_batches(items, size):
    """Sorted by length, ties in input order (prompts.ts planBatches)."""
    ordered = sorted(items, key=lambda it: (len(it[1]), it[0]))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def left_pad(rows, pad, device):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


def finish(generated, eos, stops, max_new):
    """src/engine/sequence-state.ts over one row's generated ids: (tokens, finishReason, generated count)."""
    tokens, count = [], 0
    for t in generated:
        count += 1
        if t in eos:
            return tokens, "eos", count
        tokens.append(t)
        stop = next((s for s in stops if len(s) <= len(tokens) and tokens[-len(s):] == s), None)
        if stop:
            return tokens[:-len(stop)], "stop", count
        if count >= max_new:
            return tokens, "length", count
    return tokens, "length", count


class StepClock:
    """A StoppingCriteria that timestamps every decoding step (the engine's ttftMs and stepMs) and ends rows
    whose output ends with a stop sequence; EOS and maxNewTokens are left to generate() itself."""

    def __init__(self, prompt_width, stops):
        self.start, self.marks, self.width, self.stops = time.perf_counter(), [], prompt_width, stops

    def __call__(self, input_ids, scores, **kwargs):
        self.marks.append(time.perf_counter())
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self.stops:
            out = input_ids[:, self.width:].tolist()
            for i, row in enumerate(out):
                done[i] = any(any(row[j:j + len(s)] == s for j in range(len(row) - len(s) + 1)) for s in self.stops)
        return done

    def timings(self):
        if not self.marks:
            return 0.0, []
        ttft = (self.marks[0] - self.start) * 1000
        return ttft, [(b - a) * 1000 for a, b in zip(self.marks, self.marks[1:])]


def soft_prompt_inputs(model, ids, mask, prefix):
    """Prompt tuning: [soft prompt; token embeddings] and the mask with P ones in front. PEFT's own generate
    drops position_ids, which shifts every left-padded row; from embeddings, HF derives them from this mask
    (cumsum − 1): 0..P-1 for the soft prompt, P + position for the tokens, as the export's graph has them."""
    base, b = model.get_base_model(), ids.shape[0]
    embed = base.get_input_embeddings()(ids)
    prompt = model.get_prompt(batch_size=b).to(embed.dtype)
    ones = torch.ones(b, prefix, dtype=mask.dtype, device=mask.device)
    return base, torch.cat([prompt, embed], dim=1), torch.cat([ones, mask], dim=1)


@torch.no_grad()
def decode(model, rows, eos, pad, spec, device, assistant=None, prefix=0, lookup=False):
    """One generate() call over left-padded rows: (generated id lists, StepClock). `lookup`: HF
    prompt-lookup decoding (`prompt_lookup_num_tokens`), proposals from the row's own tokens."""
    from transformers import StoppingCriteriaList
    ids, mask = left_pad(rows, pad, device)
    common = dict(do_sample=False, max_new_tokens=spec.maxNewTokens, eos_token_id=eos, pad_token_id=pad,
                  use_cache=True, temperature=None, top_p=None, top_k=None)
    if prefix:
        base, embeds, full_mask = soft_prompt_inputs(model, ids, mask, prefix)
        clock = StepClock(0, spec.stopSequences)  # from embeddings, generate returns only the new tokens
        out = base.generate(inputs_embeds=embeds, attention_mask=full_mask,
                            stopping_criteria=StoppingCriteriaList([clock]), **common)
        return out.tolist(), clock
    clock = StepClock(ids.shape[1], spec.stopSequences)
    kwargs = {"assistant_model": assistant} if assistant is not None else {}
    if lookup:
        kwargs = {"prompt_lookup_num_tokens": spec.gamma, "max_matching_ngram_size": spec.promptLookupNgram}
    out = model.generate(input_ids=ids, attention_mask=mask, stopping_criteria=StoppingCriteriaList([clock]),
                         **common, **kwargs)
    return out[:, ids.shape[1]:].tolist(), clock


def generate_all(model, prepared, eos, pad, spec, device, assistant=None, prefix=0):
    """Every runnable prompt in batches (batch 1 when assisted or prompt lookup); emits `sequence` and
    `batch` events. Returns (generated token total, wall ms, decoding rounds: the target passes of
    assisted generation)."""
    runnable = [(i, toks) for i, (toks, _, err) in enumerate(prepared) if err is None]
    lookup = spec.promptLookupNgram is not None
    size = 1 if assistant is not None or lookup else spec.batchSize
    total_generated, rounds, done, t0 = 0, 0, 0, time.perf_counter()
    for batch in plan_batches(runnable, size):
        generated, clock = decode(model, [toks for _, toks in batch], eos, pad, spec, device, assistant, prefix,
                                  lookup)
        rounds += len(clock.marks)
        for (index, _), row in zip(batch, generated):
            tokens, reason, count = finish(row, set(eos), spec.stopSequences, spec.maxNewTokens)
            total_generated += count
            emit("sequence", index=index, tokens=tokens, finishReason=reason, generatedTokens=count,
                 truncated=prepared[index][1], error="")
        done += len(batch)
        ttft, steps = clock.timings()
        emit("batch", size=len(batch), promptWidth=max(len(t) for _, t in batch), ttftMs=ttft, stepMs=steps,
             done=done, total=len(runnable))
    return total_generated, (time.perf_counter() - t0) * 1000, rounds


@torch.no_grad()
def forward_logits(model, ids, mask, pos, prefix):
    if not prefix:
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
    # PEFT's prompt-tuning forward ignores position_ids too: the soft prompt is prepended here.
    base, embeds, full_mask = soft_prompt_inputs(model, ids, mask, prefix)
    virtual = torch.arange(prefix, device=pos.device).expand(ids.shape[0], prefix)
    out = base(inputs_embeds=embeds, attention_mask=full_mask, position_ids=torch.cat([virtual, pos + prefix], dim=1))
    return out.logits[:, prefix:].float()


def score_all(model, items, max_positions, vocab, pad, batch_size, device, prefix):
    """src/engine/score.ts: Σ ln p(answer | prompt) per item, teacher-forced; emits one `score` per item."""
    work = []
    for index, item in enumerate(items):
        prompt, cont = item["promptIds"], item["answerIds"]
        if len(cont) > max_positions - 1:
            emit("score", index=index, sumLogProb=0, tokenCount=0, truncated=False,
                 error=f"continuation has {len(cont)} tokens, more than {max_positions - 1}")
            continue
        toks, truncated, err = prepare(prompt, max_positions - len(cont), vocab)
        cont_err = prepare(cont, max_positions, vocab)[2] if cont else None
        if err is not None or cont_err is not None:
            emit("score", index=index, sumLogProb=0, tokenCount=0, truncated=False,
                 error=err if err is not None else f"continuation: {cont_err}")
            continue
        if not cont:
            emit("score", index=index, sumLogProb=0, tokenCount=0, truncated=truncated, error="")
            continue
        work.append((index, toks + list(cont), len(toks), truncated))
    meta = {i: (p, tr) for i, _, p, tr in work}
    for batch in plan_batches([(i, t) for i, t, _, _ in work], batch_size):
        ids, mask = left_pad([t for _, t in batch], pad, device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = forward_logits(model, ids, mask, pos, prefix)
        for row, (index, toks) in enumerate(batch):
            offset, (plen, truncated) = ids.shape[1] - len(toks), meta[index]
            # Only the answer's positions, in float64: a 7B vocabulary × the whole batch would not be small.
            positions = torch.arange(offset + plen - 1, offset + len(toks) - 1, device=logits.device)
            targets = torch.tensor(toks[plen:], device=logits.device)
            logp = torch.log_softmax(logits[row, positions].double(), dim=-1)
            total = float(logp[torch.arange(len(targets), device=logits.device), targets].sum())
            emit("score", index=index, sumLogProb=total, tokenCount=len(toks) - plen, truncated=truncated, error="")


def read_items(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def generate(spec):
    device, dtype = resolve_device(spec.device)
    if spec.method == "qlora":
        from .methods import probe_4bit
        try:
            probe_4bit(device, dtype)
        except UnsupportedMethod as e:
            raise EngineUnsupported(f"eval.engine: \"torch\" cannot run the QLoRA base of {spec.modelPath!r}: {e}")
    items = read_items(spec.itemsPath)
    model, base, prefix = load_model(spec, device, dtype)
    eos, pad = token_rules(spec.adapterDir if spec.method == "full" and spec.adapterDir else spec.modelPath, base)
    vocab = base.config.vocab_size
    # The soft prompt occupies the first positions, as in the export's engine.json.
    max_positions = base.config.max_position_embeddings - prefix
    if spec.maxNewTokens >= max_positions:
        raise UnsupportedMethod(f"eval.maxNewTokens: got {spec.maxNewTokens}; expected < {max_positions} "
                                f"(the model's positions)")
    precision = precision_of(spec.method, device, dtype)
    emit("generating", device=device, precision=precision, items=len(items), maxPositions=max_positions)
    log(f"torch engine: {len(items)} items on {device} ({precision}), adapter {spec.adapterDir or 'none'}")
    prepared = [prepare(it["promptIds"], max_positions - spec.maxNewTokens, vocab, spec.longPrompt) for it in items]
    for index, (_, truncated, err) in enumerate(prepared):
        if err is not None:
            emit("sequence", index=index, tokens=[], finishReason="error", generatedTokens=0, truncated=truncated,
                 error=err)
    assistant, acceptance, baseline = None, None, None
    if spec.draftModelPath is not None:
        assistant = _load(spec.draftModelPath, device, dtype, field="draftModelPath")
        # A fixed number of draft tokens per target pass, like the ONNX engine's gamma.
        assistant.generation_config.num_assistant_tokens = spec.gamma
        assistant.generation_config.num_assistant_tokens_schedule = "constant"
        assistant.generation_config.assistant_confidence_threshold = 0.0
    generated, wall_ms, rounds = generate_all(model, prepared, eos, pad, spec, device, assistant, prefix)
    if assistant is not None or spec.promptLookupNgram is not None:
        # Assisted generation does not report acceptance: each target pass yields its accepted draft tokens
        # plus one of its own, so (tokens − passes) / (passes × gamma) is the accepted share of the proposals.
        acceptance = max(0.0, (generated - rounds) / (rounds * spec.gamma)) if rounds else None
        first = [p if i < SPECULATIVE_BASELINE else ([], False, "skipped") for i, p in enumerate(prepared)]
        baseline = _baseline_tokens_per_sec(model, first, eos, pad, spec, device)
    emit("generated", generatedTokens=generated, wallMs=wall_ms, acceptanceRate=acceptance,
         targetOnlyTokensPerSec=baseline)
    if spec.score:
        score_all(model, items, max_positions, vocab, pad, spec.batchSize, device, prefix)


def _baseline_tokens_per_sec(model, prepared, eos, pad, spec, device):
    """Target-only greedy decoding of the first prompts, one at a time, without emitting: the speedup's base."""
    runnable = [toks for toks, _, err in prepared if err is None]
    total, t0 = 0, time.perf_counter()
    for toks in runnable:
        generated, _ = decode(model, [toks], eos, pad, spec, device)
        total += finish(generated[0], set(eos), spec.stopSequences, spec.maxNewTokens)[2]
    seconds = time.perf_counter() - t0
    return total / seconds if seconds > 0 else None
