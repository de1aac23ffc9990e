"""llama.cpp side of bench/eval-qa.ts: llama-cpp-python's simple API (`Llama.generate`), one prompt
at a time, from token ids, greedy, EOS on. Runs with the llama.cpp virtualenv's Python
(infra/llamacpp-build.sh), not .venv's.

    $PEFTGRID_CACHE/llamacpp-venv/bin/python bench/eval_llamacpp.py request.json > result.json

request: {"ggufPath", "prompts": [[ids]], "maxNewTokens", "threads", "eosTokenIds": [ids], "nCtx"}
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
from llama_cpp import Llama


def generate(llm, prompt, max_new, eos):
    llm.reset()
    llm._ctx.kv_cache_clear()  # noqa: SLF001 (the public reset() keeps the KV for prefix reuse)
    out = []
    for token in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        out.append(token)
        if token in eos or len(out) >= max_new:
            break
    return out


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    llm = Llama(model_path=req["ggufPath"], n_ctx=req["nCtx"], n_threads=req["threads"],
                n_threads_batch=req["threads"], n_batch=512, logits_all=False, verbose=False)
    eos = set(req["eosTokenIds"])
    prompts = req["prompts"]
    generate(llm, prompts[0], req["maxNewTokens"], eos)  # warm-up: buffers and thread pool
    t0 = time.perf_counter()
    tokens = [generate(llm, p, req["maxNewTokens"], eos) for p in prompts]
    wall_ms = (time.perf_counter() - t0) * 1000
    json.dump({"tokens": tokens, "wallMs": wall_ms, "generatedTokens": sum(len(t) for t in tokens),
               "llamaCpp": llama_cpp.__version__,
               "system": llama_cpp.llama_print_system_info().decode()}, sys.stdout)


if __name__ == "__main__":
    main()
