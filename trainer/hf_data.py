"""`python -m trainer export-dataset`: one split of an HF dataset → JSON lines, one row per line, for
the TypeScript side's JSONL parser (the same record layouts and bad-row counting as any JSONL file).

Two sources, each read the way the `datasets` library reads it:
- a DatasetDict written by `save_to_disk` (`hfDisk`): `load_from_disk`;
- with `--files`, a dataset repo's data files as staged from the hub (`hub`: parquet, JSON lines,
  CSV …): `load_dataset(dir)`, offline, which names splits from the file names as the hub does.
"""
import json
import os
import tempfile

from .events import InvalidSpec


def _load(path, files, cache_dir):
    if files:
        # The files are local: nothing may reach for the network (set before datasets is imported).
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        from datasets import load_dataset
        try:
            return load_dataset(path, cache_dir=cache_dir)
        except (FileNotFoundError, ValueError) as err:
            raise InvalidSpec(f"hub dataset: {path} has no data files the datasets library reads ({err})") from None
    from datasets import load_from_disk
    try:
        return load_from_disk(path)
    except FileNotFoundError as err:
        raise InvalidSpec(f"hfDisk: {path} is not a save_to_disk directory ({err})") from None


def export_split(path, split, out, files=False):
    """Writes `split` of the dataset at `path` to `out` (atomically); returns the row count."""
    if not os.path.isdir(path):
        raise InvalidSpec(f"hfDisk: {path} is not a directory")
    with tempfile.TemporaryDirectory(prefix="pg-hf-") as cache_dir:
        from datasets import Dataset, DatasetDict
        ds = _load(path, files, cache_dir)
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
