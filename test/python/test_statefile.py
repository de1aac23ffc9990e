"""statefile.py: nested trainer state round-trips exactly through safetensors + JSON, and never unpickles."""
import math
import os
import pickle
import random
import re

import numpy as np
import pytest
import torch
from conftest import ROOT

from trainer.statefile import check_file, load_tree, save_tree


class Payload:
    """Unpickling this creates `path`: the proof that a loader executed bucket-supplied code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant_pickle(path, marker):
    with open(path, "wb") as f:
        pickle.dump(Payload(str(marker)), f)


def test_nested_state_round_trips_exactly(tmp_path):
    shared = torch.arange(6, dtype=torch.float32)
    tree = {
        "state": {0: {"step": 3, "exp_avg": torch.randn(2, 3), "q": shared},
                  1: {"step": torch.tensor(3.0), "q": shared, "mask": torch.zeros(0, dtype=torch.bool)}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False, "t_alpha": None,
                          "params": [0, 1], "name": "g"}],
        "floats": [0.1, -0.0, math.inf, 1 / 3], "nan": math.nan,
        "bf16": torch.randn(4).to(torch.bfloat16), "bytes": torch.tensor([0, 255], dtype=torch.uint8),
        "ndarray": np.arange(5, dtype=np.uint32).reshape(5), "matrix": np.eye(2), "scalar": np.float32(0.25),
        "nested": [(1, [2, {"k": (None,)}])],
        "views": [shared.view(2, 3), shared[2:], shared.view(2, 3).t()],  # one storage, one non-contiguous
        "empty": [torch.zeros(0), torch.zeros(0, 3)],
    }
    save_tree(tmp_path / "s.safetensors", tree)
    back = load_tree(tmp_path / "s.safetensors")
    assert list(back["state"]) == [0, 1] and back["state"][0]["step"] == 3
    assert torch.equal(back["state"][0]["exp_avg"], tree["state"][0]["exp_avg"])
    assert back["state"][0]["q"] is back["state"][1]["q"]  # one object stays one object
    assert back["state"][1]["step"].dim() == 0 and back["state"][1]["mask"].dtype == torch.bool
    assert back["param_groups"] == tree["param_groups"] and isinstance(back["param_groups"][0]["betas"], tuple)
    assert back["floats"][:2] == [0.1, -0.0] and math.copysign(1, back["floats"][1]) == -1
    assert back["floats"][2:] == [math.inf, 1 / 3] and math.isnan(back["nan"])
    assert back["bf16"].dtype == torch.bfloat16 and torch.equal(back["bf16"], tree["bf16"])
    assert torch.equal(back["bytes"], tree["bytes"])
    assert back["ndarray"].dtype == np.uint32 and np.array_equal(back["ndarray"], tree["ndarray"])
    assert np.array_equal(back["matrix"], np.eye(2)) and back["scalar"] == np.float32(0.25)
    assert isinstance(back["scalar"], np.float32)
    assert back["nested"] == [(1, [2, {"k": (None,)}])]
    assert all(torch.equal(x, y) for x, y in zip(back["views"] + back["empty"], tree["views"] + tree["empty"]))
    assert back["empty"][1].shape == (0, 3)


def test_rng_states_restore_the_same_streams(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state: that must survive too
    save_tree(tmp_path / "rng.safetensors", {"python": random.getstate(), "numpy": np.random.get_state(),
                                             "torch": torch.get_rng_state()})
    want = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    state = load_tree(tmp_path / "rng.safetensors")
    random.setstate(state["python"]), np.random.set_state(state["numpy"]), torch.set_rng_state(state["torch"])
    assert (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist()) == want


def test_an_unknown_type_fails_at_save_naming_where(tmp_path):
    with pytest.raises(TypeError, match=r"state\['groups'\]\[0\] is a set; expected tensors"):
        save_tree(tmp_path / "x.safetensors", {"groups": [{1, 2}]})


@pytest.mark.parametrize("tree, message", [
    ('{"tensor":"9"}', "names tensor '9', which the file does not hold"),
    ('{"ndarray":[1],"dtype":"|O","shape":[1]}', "expected a numeric dtype"),
    ('{"eval":"__import__(\'os\')"}', "unexpected node"),
])
def test_a_forged_tree_is_refused(tmp_path, tree, message):
    from safetensors.torch import save_file
    save_file({}, tmp_path / "x.safetensors", metadata={"peftgrid.tree": tree})
    with pytest.raises(ValueError, match=re.escape(message)):
        load_tree(tmp_path / "x.safetensors")


def test_a_pickle_is_refused_without_running_it(tmp_path):
    path, marker = tmp_path / "optimizer.safetensors", tmp_path / "pwned"
    plant_pickle(path, marker)
    for read in (check_file, load_tree):
        with pytest.raises(Exception):
            read(path)
    assert not marker.exists()
    with pytest.raises(RuntimeError):  # the old loader: it runs the payload, then finds no torch magic number
        torch.load(path, weights_only=False)
    assert marker.exists()  # so the planted file is a live payload, and the refusal above is meaningful


def test_no_pickle_loader_is_left_in_the_trainer():
    # The pickle-free format is only safe while no code path falls back to a pickle loader.
    banned = [r"weights_only\s*=\s*False", r"allow_pickle\s*=\s*True", r"\bpickle\.loads?\(",
              r"^\s*(import|from)\s+(pickle|dill|cloudpickle|joblib)\b", r"torch\.load\((?![^\n]*weights_only=True)"]
    hits = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "trainer")):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(dirpath, name)).read()
                hits += [f"{name}: {m.group(0)}" for rx in banned for m in re.finditer(rx, text, re.M)]
    assert not hits
