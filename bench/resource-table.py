"""The study's model shapes, their memory estimates, and the table in docs/operations.md.

`--fixture` writes test/fixtures/model-shapes.json: each shape's config (as in its hub config.json)
and parameter count, plus estimate cases that test/python/test_resources.py and
test/unit/config-resources.test.ts both check (trainer/resources.py and src/config/resources.ts
must agree to the byte). Without it, prints the markdown table of docs/operations.md, computed by
trainer/resources.py's train_memory_bytes (bf16 on CUDA, batch 8 x 512, AdamW 8-bit as the grid's
defaults, gradient checkpointing as 'auto' resolves it).

    .venv/bin/python bench/resource-table.py [--fixture]
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from trainer import resources  # noqa: E402

GIB = 2**30
SHAPES = {
    # hub config.json values that decide the shape (Llama-2, Mistral v0.1, Gemma 1, TinyLlama 1.1B, SmolLM2)
    "llama-2-7b": dict(model_type="llama", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, vocab_size=32000, tie_word_embeddings=False),
    "mistral-7b": dict(model_type="mistral", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=8, vocab_size=32000, tie_word_embeddings=False),
    "gemma-7b": dict(model_type="gemma", hidden_size=3072, intermediate_size=24576, num_hidden_layers=28,
                     num_attention_heads=16, num_key_value_heads=16, head_dim=256, vocab_size=256000),
    "gemma-2b": dict(model_type="gemma", hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
                     num_attention_heads=8, num_key_value_heads=1, head_dim=256, vocab_size=256000),
    "gemma-2-2b": dict(model_type="gemma2", hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                       num_attention_heads=8, num_key_value_heads=4, head_dim=256, vocab_size=256000),
    "tinyllama-1.1b": dict(model_type="llama", hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                           tie_word_embeddings=False),
    "smollm2-135m": dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, head_dim=64, vocab_size=49152,
                         tie_word_embeddings=True),
    "qwen2-0.5b": dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
}
CASES = [(m, method, opt, dev, ckpt) for m in ("llama-2-7b", "gemma-2b", "smollm2-135m", "gemma-2-2b")
         for method, opt in (("full", "adamw"), ("full", "adamw_8bit"), ("full", "sgd"), ("lora", "adamw_8bit"),
                             ("qlora", "adamw_8bit"), ("ia3", "adamw"))
         for dev in ("cuda", "cpu") for ckpt in (False, True)]


def fixture():
    cases = [{"model": m, "method": method, "optimizer": opt, "batchSize": 8, "maxLength": 512,
              "checkpointing": ckpt, "device": dev,
              "bytes": resources.train_memory_bytes(SHAPES[m], method, opt, 8, 512, ckpt, dev)}
             for m, method, opt, dev, ckpt in CASES]
    return {"models": {k: {"config": v, "params": resources.param_count(v)} for k, v in SHAPES.items()},
            "estimates": cases, "requirements": requirements()}


def host_and_scratch(config, method):
    """Host RAM and scratch disk (bytes) of a gpu worker running one such run, beside the GPU figure.

    Host: the larger of loading (from_pretrained reads the bf16 weights through host memory) and
    the export's parity check (ONNX Runtime's CPU provider runs a float16 graph by casting its
    weights to float32: 4 bytes per parameter), + 8 GiB for Python, torch, the tokenizer, the worker.
    A full fine-tune's checkpoint save stages its 12 bytes per parameter there too.
    Scratch: the model cache (bf16 safetensors) + two checkpoints (the local one and a restored
    one; a full fine-tune's holds float32 weights and AdamW's two states, 12 bytes per parameter)
    + the export written twice (the raw graph, then model.onnx.data) + the merged model.
    """
    n = resources.param_count(config)
    bf16 = 2 * n
    host = max(bf16, 4 * n) + 8 * GIB
    if method == "full":
        host = max(host, 12 * n + 8 * GIB)  # a checkpoint save stages float32 weights + AdamW states on the host
    checkpoint = 12 * n if method == "full" else GIB  # an adapter and its optimizer state: megabytes
    # The export is float16, but float32 for Gemma (trainer/export.py's FLOAT16_UNSAFE).
    export = (4 if config["model_type"].startswith("gemma") else 2) * n
    scratch = bf16 + 2 * checkpoint + 2 * export + bf16
    return host, scratch


TABLE_MODELS = ("tinyllama-1.1b", "gemma-2b", "llama-2-7b", "mistral-7b", "gemma-7b")
TABLE_METHODS = ("lora", "qlora", "ia3", "prompt_tuning", "full")


def requirements():
    """One row per (model, method): the estimate at the grid's defaults (batch 8 x 512, AdamW 8-bit;
    AdamW for full), checkpointing as 'auto' resolves it."""
    rows = []
    for name in TABLE_MODELS:
        config = SHAPES[name]
        n = resources.param_count(config)
        ckpt = resources.resolve_gradient_checkpointing("auto", n)
        for method in TABLE_METHODS:
            opt = "adamw" if method == "full" else "adamw_8bit"
            gpu = resources.train_memory_bytes(config, method, opt, 8, 512, ckpt, "cuda")["total"]
            host, scratch = host_and_scratch(config, method)
            rows.append({"model": name, "params": n, "method": method, "optimizer": opt, "checkpointing": ckpt,
                         "gpuBytes": gpu, "hostBytes": host, "scratchBytes": scratch})
    return rows


def table():
    rows = ["| model (shape) | params | method | gradient checkpointing | GPU memory | host memory | scratch disk |",
            "| --- | --: | --- | --- | --: | --: | --: |"]
    for r in requirements():
        label = f"{r['method']} ({r['optimizer']})" if r["method"] == "full" else r["method"]
        rows.append(f"| {r['model']} | {r['params'] / 1e9:.2f}B | {label} | {'on' if r['checkpointing'] else 'off'} | "
                    f"{r['gpuBytes'] / GIB:.0f} GiB | {r['hostBytes'] / GIB:.0f} GiB | {r['scratchBytes'] / GIB:.0f} GiB |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--fixture" in sys.argv:
        path = os.path.join(ROOT, "test", "fixtures", "model-shapes.json")
        with open(path, "w") as f:
            json.dump(fixture(), f, indent=1)
            f.write("\n")
        print(f"wrote {path}")
    else:
        print(table())
