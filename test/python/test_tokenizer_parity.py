"""Token-id parity: the TypeScript tokenizer (src/data, @huggingface/tokenizers) against the Rust
`tokenizers` library on the same tokenizer.json.

Shards are tokenized in TypeScript and trained on in Python, and evaluation prompts are tokenized
in TypeScript for a model trained on them: one differing id anywhere is a silent accuracy bug. So
every comparison here must be exact, on >= 1,000 varied records (unicode, punctuation, digits, long
passages, whitespace runs, chat special tokens) and on each prompt format built from them.

Runs on SmolLM2-135M-Instruct's tokenizer (the bootstrap materializes it) and on two small
SentencePiece-style tokenizers (Llama-2-like and Gemma-like pipelines) built here with `tokenizers`,
so the byte-level and the metaspace/byte-fallback code paths are both covered.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import unicodedata
from pathlib import Path

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2_DIR = Path(os.environ.get("PEFTGRID_TOKENIZER_DIR", ROOT / ".data" / "models" / "smollm2-135m-instruct"))
SAMPLES = ROOT / "datasets" / "samples"
MIN_RECORDS = 1000

UNICODE = [
    "café", "naïve", "résumé", "Ångström", "straße", "ǅemal", "e\u0301", "ﬁancé", "日本語のテキスト", "中文问答", "한국어",
    "עברית", "العربية", "Ελληνικά", "Русский", "हिन्दी", "ไทย", "😀", "👍🏽", "👨‍👩‍👧", "🇳🇴", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "Ω≈ç√∫", "½ ¾ ²",
    "ｆｕｌｌｗｉｄｔｈ", "zero\u200bwidth", "\u00a0nbsp", "\u3000ideographic", "soft\u00adhyphen", "\ufeffbom",
]
PUNCT = ["...", "?!", "—", "–", "«quoted»", "“curly”", "'s", "'S", "'ll", "n't", "(a)", "[b]", "{c}", "<tag>", "@#$%^&*", "\\n", "\\t", "`code`", "~/path/to.file", "a,b;c:d"]
# Non-ASCII digits (Nd, Nl, No) are where JavaScript's \d and Rust's char::is_numeric disagree.
DIGITS = ["0", "7", "42", "1234567890", "3.14159", "1,000,000", "2024-06-01", "10:45", "-17", "1e-9", "0x1F", "٣٤٥", "१२३", "½", "x²", "Ⅻ", "①②"]
# U+0085 and U+FEFF are where JavaScript's \s and Oniguruma's \s disagree (see src/data/tokenizer.ts).
WHITESPACE = [" ", "  ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n ", "\u2028", "  \t \n  ", "\u0085", "  \u0085", "\ufeff", "  \ufeff", "\u180e", "\u2060", "\u00a0\u00a0"]
SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "[INST]", "[/INST]", "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<|im_st", "im_end|>", "<start_of_turn", "</s"]
WORDS = "the a of to in is was for on that with as by at from his her which who where when what why how river city bridge story answer question passage".split()


def _phrase(rng: random.Random, n: int) -> str:
    pools = [WORDS] * 6 + [UNICODE, PUNCT, DIGITS, WHITESPACE, SPECIAL]
    out = []
    for _ in range(n):
        pool = rng.choice(pools)
        out.append(rng.choice(pool))
        out.append(rng.choice(["", " ", " ", " ", "  ", "\n"]))
    return "".join(out)


def _sample_records() -> list[dict]:
    """The shipped samples, parsed the UnifiedQA way (parts joined by the literal two characters \\n)."""
    records = []
    for tsv in sorted(SAMPLES.glob("*/*.tsv")):
        for i, line in enumerate(tsv.read_text(encoding="utf-8").splitlines()):
            inp, answer = line.split("\t")
            question, *rest = [p.strip() for p in inp.split("\\n")]
            rec = {"id": f"{tsv.parent.name}-{tsv.stem}-{i}", "dataset": tsv.parent.name, "format": "extractive",
                   "question": question, "answers": [answer]}
            if rest:
                rec["context"] = "\n".join(rest)
            records.append(rec)
    return records


def _any_unicode(rng: random.Random, count: int) -> list[str]:
    """Short strings over every assigned code point: Unicode-category differences between the
    JavaScript and Rust regex engines show up here first."""
    assigned = [c for c in range(0x20, 0x110000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    return ["".join(chr(rng.choice(assigned)) if rng.random() < 0.6 else rng.choice(" \t\nab1's.") for _ in range(rng.randint(1, 12)))
            for _ in range(count)]


def corpus(seed: int = 1234) -> tuple[list[str], list[dict]]:
    rng = random.Random(seed)
    records = _sample_records()[:300]
    for i in range(MIN_RECORDS):
        rec = {"id": f"synthetic-{i}", "dataset": "synthetic", "format": "abstractive",
               "question": _phrase(rng, rng.randint(1, 12)).strip() or "why?",
               "answers": [(_phrase(rng, rng.randint(1, 4)).strip() or "yes")]}
        kind = i % 10
        if kind in (1, 3, 5, 7):
            rec["context"] = _phrase(rng, rng.randint(20, 80))
        if kind in (2, 6):
            rec["format"] = "multiple_choice"
            rec["choices"] = [_phrase(rng, rng.randint(1, 3)).strip() or "x" for _ in range(rng.randint(2, 5))]
        if kind == 4:  # long passage: several KB, as in NarrativeQA or RACE
            rec["context"] = _phrase(rng, rng.randint(500, 1200))
        records.append(rec)
    texts = ["", " ", "hello world", "Hello World", " leading", "trailing ", "x" * 5000, "ab" * 3000, " ".join(["word"] * 2000)]
    texts += UNICODE + PUNCT + DIGITS + WHITESPACE + SPECIAL + _any_unicode(rng, 3000)
    for rec in records:
        texts.append(rec["question"])
        texts.extend(rec.get("choices", []))
        if "context" in rec:
            texts.append(rec["context"])
    return texts, records


def _llama_like(out: Path, training_text: list[str]) -> Path:
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(training_text, trainers.BpeTrainer(vocab_size=1500, special_tokens=special, show_progress=False))
    tok.add_special_tokens([AddedToken("[INST]", special=True, normalized=False), AddedToken("[/INST]", special=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    template = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
                "{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}")
    (out / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "chat_template": template}))
    return out


def _gemma_like(out: Path, training_text: list[str]) -> Path:
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    special = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(training_text, trainers.BpeTrainer(vocab_size=1500, special_tokens=special, show_progress=False))
    tok.add_special_tokens([AddedToken("<start_of_turn>", special=True, normalized=False), AddedToken("<end_of_turn>", special=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}))
    return out


@pytest.fixture(scope="module", params=["smollm2", "llama-like", "gemma-like"])
def model_dir(request, tmp_path_factory) -> Path:
    if request.param == "smollm2":
        if not (SMOLLM2_DIR / "tokenizer.json").exists():
            pytest.skip(f"{SMOLLM2_DIR} is missing: run the bootstrap (python -m trainer materialize-gguf) first")
        return SMOLLM2_DIR
    training_text = [line.replace("\\n", "\n") for tsv in SAMPLES.glob("*/*.tsv") for line in tsv.read_text(encoding="utf-8").splitlines()]
    training_text += UNICODE + PUNCT + DIGITS
    build = _llama_like if request.param == "llama-like" else _gemma_like
    return build(tmp_path_factory.mktemp(request.param), training_text)


@pytest.fixture(scope="module")
def parity(model_dir: Path, tmp_path_factory) -> dict:
    texts, records = corpus()
    work = tmp_path_factory.mktemp("parity")
    path = work / "input.json"
    path.write_text(json.dumps({"texts": texts, "records": records}), encoding="utf-8")
    shard = work / "train.pgtok"
    proc = subprocess.run(
        ["node", "--import", "tsx", "bench/tokenizer-parity-cli.ts", "--model", str(model_dir), "--input", str(path), "--pgtok", str(shard)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ts = json.loads(proc.stdout)
    return {"texts": texts, "records": records, "ts": ts, "py": Tokenizer.from_file(str(model_dir / "tokenizer.json")),
            "dir": model_dir, "shard": shard.read_bytes()}


def _report(mismatches: list[str]) -> str:
    return f"{len(mismatches)} mismatches, first ones:\n" + "\n".join(mismatches[:5])


def test_corpus_is_large_and_varied(parity):
    texts, records = parity["texts"], parity["records"]
    assert len(records) >= MIN_RECORDS
    joined = "".join(texts)
    for needle in ("😀", "日本語", "\t", "  ", "1234567890", "<|im_start|>", "[INST]", "<start_of_turn>", "'s"):
        assert needle in joined, needle
    assert max(len(r.get("context", "")) for r in records) > 5000


def test_plain_text_ids_match(parity):
    py, ts = parity["py"], parity["ts"]
    bad = []
    plain = py.encode_batch(parity["texts"], add_special_tokens=False)
    special = py.encode_batch(parity["texts"], add_special_tokens=True)
    for text, got, want_plain, want_special in zip(parity["texts"], ts["texts"], (e.ids for e in plain), (e.ids for e in special)):
        if got["plain"] != want_plain:
            bad.append(f"plain {text[:60]!r}: ts {got['plain'][:12]} py {want_plain[:12]}")
        if got["special"] != want_special:
            bad.append(f"special {text[:60]!r}: ts {got['special'][:12]} py {want_special[:12]}")
    assert len(ts["texts"]) == len(parity["texts"])
    assert not bad, _report(bad)


def test_formatted_training_ids_match(parity):
    """Every family's prompt encodes identically; the answer ids are the in-context ones; EOS last."""
    py, ts = parity["py"], parity["ts"]
    eos = ts["eosTokenId"]
    bad = []
    items = ts["records"]
    prompts = py.encode_batch([i["prompt"] for i in items], add_special_tokens=False)
    joints = py.encode_batch([i["prompt"] + i["answer"] for i in items], add_special_tokens=False)
    for item, prompt_enc, joint_enc in zip(items, prompts, joints):
        ids, n = item["ids"], item["promptLength"]
        prompt_ids, joint = prompt_enc.ids, joint_enc.ids
        answer_ids = joint[len(prompt_ids):] if joint[: len(prompt_ids)] == prompt_ids else py.encode(item["answer"], add_special_tokens=False).ids
        if ids[:n] != prompt_ids:
            bad.append(f"{item['family']} {item['id']}: prompt ids differ")
        elif ids[n:-1] != answer_ids:
            bad.append(f"{item['family']} {item['id']}: answer ids ts {ids[n:-1][:10]} py {answer_ids[:10]}")
        elif ids[-1] != eos:
            bad.append(f"{item['family']} {item['id']}: last id {ids[-1]} is not EOS {eos}")
    assert len(ts["records"]) >= 3 * MIN_RECORDS
    assert not bad, _report(bad)


def test_special_token_ids_and_vocab_size_match(parity):
    py, ts = parity["py"], parity["ts"]
    config = json.loads((parity["dir"] / "tokenizer_config.json").read_text())
    content = lambda t: t["content"] if isinstance(t, dict) else t  # noqa: E731
    assert ts["eosTokenId"] == py.token_to_id(content(config["eos_token"]))
    if config.get("bos_token"):
        assert ts["bosTokenId"] == py.token_to_id(content(config["bos_token"]))
    assert ts["vocabSize"] == py.get_vocab_size(with_added_tokens=True)


def test_pgtok_shard_reads_back_per_contract(parity):
    """docs/contracts.md §1, decoded here with nothing but struct: what the trainer will see."""
    buf, items = parity["shard"], parity["ts"]["records"]
    assert buf[:8] == b"PGTOK001"
    n, reserved = struct.unpack_from("<II", buf, 8)
    assert (n, reserved) == (len(items), 0)
    tokens_at = 16 + 12 * n
    total = (len(buf) - tokens_at) // 4
    assert tokens_at + 4 * total == len(buf)
    tokens = struct.unpack_from(f"<{total}i", buf, tokens_at)
    for i, item in enumerate(items):
        start, length, prompt_length = struct.unpack_from("<III", buf, 16 + 12 * i)
        assert list(tokens[start:start + length]) == item["ids"]
        assert prompt_length == item["promptLength"]
