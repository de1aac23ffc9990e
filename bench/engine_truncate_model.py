"""Writes a shallow copy of a causal LM: the same embeddings, final norm, lm_head and tokenizer,
but only the decoder layers listed in --layers. Used as the draft model of speculative decoding
(test/unit/engine-speculative.test.ts, bench/engine-speculative.ts): sharing everything but depth
with the target makes its greedy choices agree with the target's far more often than an
unrelated model's would, without any training.

    .venv/bin/python bench/engine_truncate_model.py --src HF_DIR --out DIR --layers 0,1

The output is a normal HF directory (config.json with num_hidden_layers updated), written to a
temp sibling and renamed into place, so `python -m trainer export` can take it as modelPath.
"""
import argparse
import os
import shutil

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def truncate(src, out, layers):
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    total = model.config.num_hidden_layers
    if not layers or any(i < 0 or i >= total for i in layers) or len(set(layers)) != len(layers):
        raise SystemExit(f"--layers: got {layers}; expected distinct indices in [0, {total})")
    decoder = model.model
    decoder.layers = torch.nn.ModuleList([decoder.layers[i] for i in layers])
    # Each attention module indexes the KV cache by its layer_idx: renumber the kept ones.
    for new, layer in enumerate(decoder.layers):
        layer.self_attn.layer_idx = new
    model.config.num_hidden_layers = len(layers)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in layers]
    tmp = f"{os.path.abspath(out).rstrip('/')}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp, save_jinja_files=False)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f"kept layers {layers} of {total} from {src} in {out}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True, help="HF model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--layers", required=True, help="comma-separated decoder layer indices to keep, e.g. 0,1")
    args = p.parse_args()
    truncate(args.src, args.out, [int(x) for x in args.layers.split(",") if x.strip()])


if __name__ == "__main__":
    main()
