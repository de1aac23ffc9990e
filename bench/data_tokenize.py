"""Python side of bench/data-tokenize.ts: HF `tokenizers` (Rust) on the same formatted records.

    python bench/data_tokenize.py TOKENIZER_JSON TEXTS_JSON REPEATS

TEXTS_JSON holds {"prompts": [...], "fulls": [...]}; each pass encodes both lists with
`encode_batch(..., add_special_tokens=False)` — the same two encodes per record that the TypeScript
training path does. Thread count comes from the environment (TOKENIZERS_PARALLELISM=false for one
thread, RAYON_NUM_THREADS=N for N). Prints one JSON line.
"""
import hashlib
import json
import sys
import time
from array import array

import tokenizers
from tokenizers import Tokenizer


def main() -> None:
    tok_path, texts_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    texts = json.load(open(texts_path, encoding="utf-8"))
    prompts, fulls = texts["prompts"], texts["fulls"]
    tok = Tokenizer.from_file(tok_path)

    def one_pass():
        t0 = time.perf_counter()
        tok.encode_batch(prompts, add_special_tokens=False)
        full = tok.encode_batch(fulls, add_special_tokens=False)
        return time.perf_counter() - t0, full

    first, full = one_pass()
    warm = min(one_pass()[0] for _ in range(repeats))
    ids = array("i")
    for e in full:
        ids.extend(e.ids)
    print(json.dumps({
        "version": tokenizers.__version__, "records": len(fulls), "tokens": len(ids),
        "firstSec": first, "warmSec": warm, "idsSha256": hashlib.sha256(ids.tobytes()).hexdigest(),
    }))


if __name__ == "__main__":
    main()
