"""pgtok v1 shards (contracts §1) and the deterministic batch stream."""
import numpy as np
import pytest

from trainer.data import IGNORE_INDEX, MAGIC, Shard, batch_indices, collate, write_pgtok
from trainer.events import InvalidSpec


def test_roundtrip_and_layout(tmp_path):
    path = str(tmp_path / "t.pgtok")
    entry = write_pgtok(path, [([5, 6, 7, 2], 2), ([9, 2], 1)])
    raw = open(path, "rb").read()
    assert raw[:8] == MAGIC and entry["bytes"] == len(raw) == 16 + 2 * 12 + 6 * 4
    assert np.frombuffer(raw[8:16], "<u4").tolist() == [2, 0]
    assert np.frombuffer(raw[16:40], "<u4").tolist() == [0, 4, 2, 4, 2, 1]
    shard = Shard(path)
    assert len(shard) == 2 and entry["tokens"] == 6 and entry["examples"] == 2
    toks, plen = shard[1]
    assert toks.tolist() == [9, 2] and plen == 1


@pytest.mark.parametrize("blob,why", [(b"NOTPGTOK" + bytes(8), "magic"), (MAGIC + b"\x05\x00\x00\x00" + bytes(4), "complete"),
                                      (MAGIC + bytes(8), "0 examples")])
def test_bad_shards_are_invalid_spec(tmp_path, blob, why):
    path = tmp_path / "bad.pgtok"
    path.write_bytes(blob)
    with pytest.raises(InvalidSpec, match=why):
        Shard(str(path))


def test_collate_masks_prompt_and_padding(tmp_path):
    path = str(tmp_path / "t.pgtok")
    write_pgtok(path, [([5, 6, 7, 2], 2), ([9, 2], 1)])
    b = collate(Shard(path), [1, 0], pad_id=0)
    assert b["input_ids"].tolist() == [[9, 2, 0, 0], [5, 6, 7, 2]]
    assert b["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert b["labels"].tolist() == [[IGNORE_INDEX, 2, IGNORE_INDEX, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 7, 2]]


def test_max_length_cuts_the_prompt_never_the_answer(tmp_path):
    path = str(tmp_path / "t.pgtok")
    write_pgtok(path, [([1, 2, 3, 4, 5, 6], 4)])
    b = collate(Shard(path), [0], pad_id=0, max_length=3)
    assert b["input_ids"].tolist() == [[4, 5, 6]] and b["labels"].tolist() == [[IGNORE_INDEX, 5, 6]]


def test_batch_stream_is_a_function_of_seed_and_position():
    n, seed = 5, 3
    stream = [i for pos in range(0, 20, 2) for i in batch_indices(n, seed, pos, 2)]
    assert sorted(stream[:5]) == list(range(5)) and sorted(stream[5:10]) == list(range(5))  # epochs are permutations
    assert stream[:5] != stream[5:10]  # reshuffled each epoch
    assert batch_indices(n, seed, 6, 4) == stream[6:10]  # resuming mid-stream (across an epoch) reproduces it
    assert batch_indices(n, seed + 1, 0, 5) != stream[:5]
