"""llama.cpp sides of bench/eval-qa.ts, from token ids, greedy, EOS on. Runs with the llama.cpp
virtualenv's Python (infra/llamacpp-build.sh), not .venv's.

    $PEFTGRID_CACHE/llamacpp-venv/bin/python bench/eval_llamacpp.py request.json > result.json

request: {"ggufPath", "prompts": [[ids]], "maxNewTokens", "threads", "eosTokenIds": [ids], "nCtx"
          (per sequence), "batchSize"}
batchSize 1: llama-cpp-python's simple API (`Llama.generate`), one prompt at a time.
batchSize B > 1: its low-level API (llama_batch, B sequences in one context with a KV stream
each): prompts sorted by length as the engine plans its batches, B at a time; their prompts are
packed into llama_decode calls of up to 2048 tokens (one logits row per prompt), then every step
decodes one token for each unfinished sequence in one call; argmax of the logits (first maximum,
as llama.cpp's greedy sampler).
result:  {"tokens": [[ids]] (in prompt order, each ending at its first EOS, which is kept, as in
          bench/engine_hf_generate.py), "wallMs": the timed pass over every prompt, after one
          warm-up prompt (model load excluded), "generatedTokens", "llamaCpp": the package
          version, "system": llama.cpp's system info (the CPU features it was built for)}

Per prompt the KV cache is cleared and the model state reset, so nothing is reused from the
previous prompt (Llama.generate would otherwise reuse a matching prefix: the shared system
prompt). Sampling: temp 0 (llama.cpp's greedy sampler), top_k 1, no repetition penalty.
"""
import json
import sys
import time

import llama_cpp
import llama_cpp.llama_cpp as llama_c_api
import numpy as np
from llama_cpp import Llama

_default_model_params = llama_c_api.llama_model_default_params


def model_params():
    """llama.cpp's default model parameters without its extra CPU buffer types (weight repacking
    into the AMX tile layout on CPUs with AMX_INT8): with them, loading a Q8_0 GGUF segfaulted on
    this machine's Xeon (AMX_INT8 = 1 in the system info) while F32 ran. Q8_0 then runs on ggml's
    AVX-512 VNNI kernels, the same instruction set the int8 engine side uses. Llama() reads the
    defaults through llama_cpp.llama_cpp's function, so it is replaced there for both paths."""
    params = _default_model_params()
    params.use_extra_bufts = False
    return params


llama_c_api.llama_model_default_params = model_params


def generate(llm, prompt, max_new, eos):
    llm.reset()
    llm._ctx.kv_cache_clear()  # noqa: SLF001 (the public reset() keeps the KV for prefix reuse)
    out = []
    for token in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        out.append(token)
        if token in eos or len(out) >= max_new:
            break
    return out


class Batched:
    """B sequences decoded together through llama.cpp's C API."""

    PACK = 2048  # tokens per prefill llama_decode

    def __init__(self, gguf_path, n_ctx_seq, batch_size, threads):
        llama_cpp.llama_backend_init()
        self.model = llama_cpp.llama_model_load_from_file(gguf_path.encode(), model_params())
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * batch_size
        params.n_batch = self.PACK
        params.n_ubatch = 512
        params.n_seq_max = batch_size
        params.kv_unified = False  # one KV stream per sequence: attention only over its own context
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as Llama() by default
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))
        self.batch = llama_cpp.llama_batch_init(self.PACK, 0, 1)  # one sequence id per token
        self.size = batch_size

    def _decode(self, entries):
        """entries: (token, pos, seq, wants_logits); returns the argmax for each wanting one, in order."""
        b = self.batch
        for k, (token, pos, seq, out) in enumerate(entries):
            b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = token, pos, 1, out
            b.seq_id[k][0] = seq
        b.n_tokens = len(entries)
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} for {len(entries)} tokens")
        return [int(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, k), shape=(self.n_vocab,)).argmax())
                for k, e in enumerate(entries) if e[3]]

    def run(self, prompts, max_new, eos):
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        out = [None] * len(prompts)
        for start in range(0, len(order), self.size):
            rows = order[start:start + self.size]
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
            gen = {i: [] for i in rows}
            pending = []  # prefill entries, packed into PACK-token decodes; prompts never split
            for seq, i in enumerate(rows):
                p = prompts[i]
                if pending and len(pending) + len(p) > self.PACK:
                    self._prefill(pending, rows, gen)
                    pending = []
                pending += [(t, pos, seq, pos == len(p) - 1) for pos, t in enumerate(p)]
            self._prefill(pending, rows, gen)
            while True:
                live = [(seq, i) for seq, i in enumerate(rows)
                        if len(gen[i]) < max_new and gen[i][-1] not in eos]
                if not live:
                    break
                nxt = self._decode([(gen[i][-1], len(prompts[i]) + len(gen[i]) - 1, seq, True) for seq, i in live])
                for (_, i), t in zip(live, nxt):
                    gen[i].append(t)
            for i in rows:
                out[i] = gen[i]
        return out

    def _prefill(self, entries, rows, gen):
        seqs = [seq for _, _, seq, want in entries if want]
        for seq, t in zip(seqs, self._decode(entries)):
            gen[rows[seq]].append(t)


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    eos = set(req["eosTokenIds"])
    prompts = req["prompts"]
    max_new = req["maxNewTokens"]
    if req["batchSize"] > 1:
        runner = Batched(req["ggufPath"], req["nCtx"], req["batchSize"], req["threads"])
        runner.run(prompts[:req["batchSize"]], max_new, eos)  # warm-up: one batch
        t0 = time.perf_counter()
        tokens = runner.run(prompts, max_new, eos)
    else:
        llm = Llama(model_path=req["ggufPath"], n_ctx=req["nCtx"], n_threads=req["threads"],
                    n_threads_batch=req["threads"], n_batch=512, logits_all=False, verbose=False)
        generate(llm, prompts[0], max_new, eos)  # warm-up: buffers and thread pool
        t0 = time.perf_counter()
        tokens = [generate(llm, p, max_new, eos) for p in prompts]
    wall_ms = (time.perf_counter() - t0) * 1000
    json.dump({"tokens": tokens, "wallMs": wall_ms, "generatedTokens": sum(len(t) for t in tokens),
               "llamaCpp": llama_cpp.__version__,
               "system": llama_cpp.llama_print_system_info().decode()}, sys.stdout)


if __name__ == "__main__":
    main()
