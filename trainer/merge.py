"""`python -m trainer merge`: a run's adapter merged into its base → a standalone safetensors model dir.

What `peftgrid fetch --merged` runs. LoRA, QLoRA, AdaLoRA and (IA)³ merge into a full-precision
reload of the base (QLoRA's adapter too: 4-bit layers cannot take a merge, and a merged model is
for use elsewhere, not for more 4-bit training). Prompt tuning cannot merge (its soft prompt is an
input, not a weight delta): an InvalidSpec error that says so. A full fine-tune's final directory is
already a model: it is loaded and saved as is.

The output is written to `<out>.tmp-<pid>` and renamed into place when complete; an existing
`out` is refused, never overwritten. Log lines go to stderr; stdout carries only an `error` event
on failure (the protocol's one stream), so the CLI reads nothing else from it.
"""
import json
import os
import shutil

from .events import InvalidSpec, ModelNotFound, log

# Method names as PEFT writes them in adapter_config.json → whether merge_and_unload applies.
MERGEABLE = {"LORA", "ADALORA", "IA3"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "chat_template.jinja", "vocab.json", "merges.txt", "generation_config.json")
DTYPES = ("float32", "bfloat16", "float16")


def adapter_kind(adapter_dir):
    """`(peft_type or "full", base path recorded in the adapter)`; ModelNotFound when it is neither."""
    cfg = os.path.join(adapter_dir, "adapter_config.json")
    if os.path.isfile(cfg):
        with open(cfg) as f:
            c = json.load(f)
        return str(c.get("peft_type", "")).upper(), c.get("base_model_name_or_path")
    if os.path.isfile(os.path.join(adapter_dir, "config.json")):
        return "full", None
    raise ModelNotFound(f"--adapter: got {adapter_dir!r}; expected a PEFT adapter or model directory")


def merge(base, adapter_dir, out, dtype="float32", revision=None):
    """Writes the merged model (and the base's tokenizer files) to `out`; returns `out`.

    Every refusal comes before torch is imported, so it takes well under a second."""
    if dtype not in DTYPES:
        raise InvalidSpec(f"--dtype: got {dtype!r}; expected one of {', '.join(DTYPES)}")
    out = os.path.abspath(out)
    if os.path.exists(out):
        raise InvalidSpec(f"--out: got {out!r}, which already exists; expected a new directory (nothing overwritten)")
    kind, _ = adapter_kind(adapter_dir)
    if kind != "full" and kind not in MERGEABLE:
        raise InvalidSpec(f"adapter: got a {kind} adapter; it cannot be merged into the base weights "
                          "(prompt tuning's soft prompt is an input, not a weight delta): fetch --adapter instead")
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype)
    try:
        if kind == "full":
            model = AutoModelForCausalLM.from_pretrained(adapter_dir, dtype=torch_dtype)
        else:
            from peft import PeftModel
            pin = {"revision": revision} if revision else {}
            base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype, **pin)
            log(f"merging the {kind} adapter into {base} ({dtype})")
            model = PeftModel.from_pretrained(base_model, adapter_dir).merge_and_unload()
    except (OSError, ValueError) as e:
        raise ModelNotFound(f"--base: got {base!r}; expected a loadable causal-LM directory or hub id ({e})")
    work = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        model.eval().save_pretrained(work, safe_serialization=True)
        src = adapter_dir if kind == "full" else base
        if os.path.isdir(src):
            for name in TOKENIZER_FILES:
                path = os.path.join(src, name)
                if os.path.isfile(path) and not os.path.exists(os.path.join(work, name)):
                    shutil.copy2(path, work)
        else:  # a hub id: the tokenizer comes from the same (cached) repo
            from transformers import AutoTokenizer
            AutoTokenizer.from_pretrained(src, **({"revision": revision} if revision else {})).save_pretrained(work)
        if os.path.exists(out):  # appeared while merging: still never overwritten
            raise InvalidSpec(f"--out: {out!r} appeared while merging; nothing overwritten")
        os.rename(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"merged model written to {out}")
    return out
