"""`python -m trainer export-dataset`: one split of an HF `datasets` DatasetDict written by
`save_to_disk` → JSON lines, one row per line, for the TypeScript side's JSONL parser (the same
record layouts and bad-row counting as any JSONL file). Reads with `datasets.load_from_disk`, so
whatever that version wrote (arrow shards, state.json) is read the way the library reads it.
"""
import json
import os

from .events import InvalidSpec


def export_split(path, split, out):
    """Writes `split` of the DatasetDict at `path` to `out` (atomically); returns the row count."""
    from datasets import Dataset, DatasetDict, load_from_disk

    if not os.path.isdir(path):
        raise InvalidSpec(f"hfDisk: {path} is not a directory")
    try:
        ds = load_from_disk(path)
    except FileNotFoundError as err:
        raise InvalidSpec(f"hfDisk: {path} is not a save_to_disk directory ({err})") from None
    if isinstance(ds, Dataset):
        raise InvalidSpec(f"hfDisk: {path} holds one Dataset, expected a DatasetDict with named splits")
    if not isinstance(ds, DatasetDict) or split not in ds:
        raise InvalidSpec(f"hfDisk: {path} has no split {split!r}; it has {sorted(ds)}")
    rows = 0
    tmp = f"{out}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in ds[split]:
            # default=str: a date or decimal column still reaches the parser, which judges the fields.
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            rows += 1
    os.replace(tmp, out)
    return rows
