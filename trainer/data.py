"""`pgtok` v1 shards (docs/contracts.md §1) and the deterministic batch stream over them.

The stream is a pure function of (seed, position): epoch e visits the examples in the order
`default_rng([seed, e]).permutation(n)`, and `position` counts examples consumed since the start
of training. Saving that one integer in a checkpoint is enough to resume the exact same batches,
independent of any global RNG state.
"""
import hashlib
import json
import os

import numpy as np

from .events import InvalidSpec

MAGIC = b"PGTOK001"
IGNORE_INDEX = -100  # torch cross-entropy's ignore_index: prompt and padding are not learned


def write_pgtok(path, examples):
    """examples: iterable of (token_ids, prompt_length). Returns the manifest entry of the split."""
    examples = [(np.asarray(t, dtype=np.int32), int(p)) for t, p in examples]
    index, start = np.zeros((len(examples), 3), dtype="<u4"), 0
    for i, (toks, plen) in enumerate(examples):
        if not 0 <= plen < len(toks):
            raise ValueError(f"example {i}: promptLength {plen} must leave at least one answer token")
        index[i] = (start, len(toks), plen)
        start += len(toks)
    tokens = np.concatenate([t for t, _ in examples]).astype("<i4") if examples else np.zeros(0, "<i4")
    header = MAGIC + np.array([len(examples), 0], dtype="<u4").tobytes()
    blob = header + index.tobytes() + tokens.tobytes()
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return {"file": os.path.basename(path), "examples": len(examples), "tokens": int(start),
            "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}


def write_manifest(directory, splits, tokenizer_sha256="", max_length=512, bos=None, eos=None, pad=None):
    manifest = {"format": "pgtok", "version": 1, "tokenizerSha256": tokenizer_sha256, "maxLength": max_length,
                "bosTokenId": bos, "eosTokenId": eos, "padTokenId": pad, "splits": splits}
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


class Shard:
    """A read-only view of one pgtok file: `len(shard)` examples, `shard[i]` → (tokens, promptLength)."""

    def __init__(self, path):
        raw = np.fromfile(path, dtype=np.uint8)
        bad = f"trainData: {path} is not a pgtok v1 file"
        if raw.size < 16 or raw[:8].tobytes() != MAGIC:
            raise InvalidSpec(f"{bad} (magic {raw[:8].tobytes()!r}); expected {MAGIC!r}")
        n = int(raw[8:12].view("<u4")[0])
        body = 16 + 12 * n
        if raw.size < body or (raw.size - body) % 4:
            raise InvalidSpec(f"{bad} ({raw.size} bytes for {n} examples); expected a complete shard")
        self.index = raw[16:body].view("<u4").reshape(n, 3).astype(np.int64)
        self.tokens = raw[body:].view("<i4")
        ends = self.index[:, 0] + self.index[:, 1]
        if n and (ends.max() > self.tokens.size or (self.index[:, 2] >= self.index[:, 1]).any()):
            raise InvalidSpec(f"{bad} (an example runs past the token section or has no answer)")
        if n == 0:
            raise InvalidSpec(f"trainData: {path} has 0 examples; expected at least one")

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        start, length, plen = self.index[i]
        return self.tokens[start:start + length], int(plen)


def example_order(n, seed, epoch):
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(n, seed, position, batch_size):
    """The example indices of the batch that starts at `position` (wrapping into the next epoch)."""
    out, orders = [], {}
    for p in range(position, position + batch_size):
        epoch = p // n
        if epoch not in orders:
            orders[epoch] = example_order(n, seed, epoch)
        out.append(int(orders[epoch][p % n]))
    return out


def collate(shard, indices, pad_id, max_length=None):
    """Right-padded batch as numpy arrays: input_ids, attention_mask, labels (-100 on prompt and pad)."""
    rows = []
    for i in indices:
        toks, plen = shard[i]
        if max_length and len(toks) > max_length:
            # The contract never cuts the answer: drop prompt tokens from the left first.
            cut = len(toks) - max_length
            toks, plen = toks[cut:], max(0, plen - cut)
        rows.append((toks, plen))
    width = max(len(t) for t, _ in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
    for r, (toks, plen) in enumerate(rows):
        ids[r, :len(toks)] = toks
        mask[r, :len(toks)] = 1
        labels[r, plen:len(toks)] = toks[plen:]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
