"""Nested trainer state (optimizer, scheduler, RNG, AdaLoRA allocator) as one safetensors file, no pickle.

Checkpoints come back from a shared bucket: a pickle in one of them (what torch's full loader reads)
would run its author's code on every GPU worker that resumes it. So the state is split in two parts
that can only ever be data: the tensors, stored as safetensors tensors, and everything else (dicts
with int keys, tuples such as AdamW's betas, python/numpy RNG states, None, floats) as a tagged JSON
tree in the file's metadata. Decoding builds only dicts, lists, tuples, numbers, strings, tensors and
numpy arrays of numeric dtypes.

The tree: JSON null/bool/number/string/array stand for themselves; every JSON object is a tag:
  {"dict": [[key, value], ...]}   keys keep their type (optimizer state is keyed by int) and order
  {"tuple": [...]}
  {"tensor": "<name>"}            a tensor of the file; one object referenced twice is stored once and
                                  comes back as one object (bitsandbytes shares its quantization maps)
  {"ndarray": [...], "dtype": "uint32", "shape": [624]}   numpy's MT19937 key
Floats survive exactly: Python writes the shortest repr that reads back to the same double.
"""
import json

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

TREE_KEY = "peftgrid.tree"


def save_tree(path, tree):
    """Write `tree` to `path` (a .safetensors file); tensors are copied to the CPU first."""
    tensors, names, storages = {}, {}, set()

    def enc(x, where):
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, torch.Tensor):
            if id(x) not in names:
                names[id(x)] = str(len(names))
                # No copy of a CPU tensor: checkpoint time is training time (and SIGTERM grace).
                t = x.detach().to("cpu")
                # safetensors refuses two tensors on one storage (views of one buffer): copy the later ones.
                if not t.is_contiguous() or t.untyped_storage().data_ptr() in storages:
                    t = t.clone(memory_format=torch.contiguous_format)
                storages.add(t.untyped_storage().data_ptr())
                tensors[names[id(x)]] = t
            return {"tensor": names[id(x)]}
        if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
            return {"ndarray": x.ravel().tolist(), "dtype": x.dtype.str, "shape": list(x.shape)}
        if isinstance(x, np.generic) and x.dtype.kind in "biuf":
            return {"ndarray": [x.item()], "dtype": x.dtype.str, "shape": None}
        if isinstance(x, list):
            return [enc(v, f"{where}[{i}]") for i, v in enumerate(x)]
        if isinstance(x, tuple):
            return {"tuple": [enc(v, f"{where}[{i}]") for i, v in enumerate(x)]}
        if isinstance(x, dict):
            return {"dict": [[enc(k, f"{where} key"), enc(v, f"{where}[{k!r}]")] for k, v in x.items()]}
        # A new library version may add state of a type we cannot store: fail loudly at the first save.
        raise TypeError(f"{path}: state{where} is a {type(x).__name__}; expected tensors, numbers, strings, "
                        f"None, lists, tuples, dicts or numeric numpy arrays")

    tree_json = json.dumps(enc(tree, ""), separators=(",", ":"))
    save_file(tensors, path, metadata={TREE_KEY: tree_json})


def load_tree(path, device="cpu"):
    """Read a file written by save_tree; tensors land on `device`. Malformed input raises ValueError."""
    with safe_open(path, framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if TREE_KEY not in meta:
            raise ValueError(f"{path}: no {TREE_KEY!r} metadata; expected a file written by the trainer")
        tensors = {k: f.get_tensor(k).to(device) for k in f.keys()}  # a no-op for the CPU

    def dec(x):
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [dec(v) for v in x]
        if isinstance(x, dict) and len(x) == 1 and "dict" in x:
            return {dec(k): dec(v) for k, v in x["dict"]}
        if isinstance(x, dict) and len(x) == 1 and "tuple" in x:
            return tuple(dec(v) for v in x["tuple"])
        if isinstance(x, dict) and len(x) == 1 and "tensor" in x:
            if x["tensor"] not in tensors:
                raise ValueError(f"{path}: the tree names tensor {x['tensor']!r}, which the file does not hold")
            return tensors[x["tensor"]]
        if isinstance(x, dict) and set(x) == {"ndarray", "dtype", "shape"}:
            dtype = np.dtype(x["dtype"])
            if dtype.kind not in "biuf":
                raise ValueError(f"{path}: ndarray dtype {x['dtype']!r}; expected a numeric dtype")
            arr = np.array(x["ndarray"], dtype=dtype)
            return arr[0] if x["shape"] is None else arr.reshape(x["shape"])
        raise ValueError(f"{path}: unexpected node {str(x)[:80]!r} in the state tree")

    return dec(json.loads(meta[TREE_KEY]))


def check_file(path):
    """Cheap validity check (header and tree metadata only): run before any expensive work."""
    with safe_open(path, framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
    if TREE_KEY not in meta:
        raise ValueError(f"{path}: no {TREE_KEY!r} metadata; expected a file written by the trainer")
    json.loads(meta[TREE_KEY])
