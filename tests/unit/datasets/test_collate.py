"""pad_collate, skip_none_collate and the default_collate drop-in."""

from __future__ import annotations

import functools
import pickle

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader

from datasets.collate import (
    PadCollate,
    SkipNoneCollate,
    default_collate,
    pad_collate,
    skip_none_collate,
)
from datasets.errors import CollateError
from datasets.text import TextClassificationDataset

BATCH = [
    {"input_ids": torch.tensor([5, 6, 7]), "label": 1},
    {"input_ids": torch.tensor([8]), "label": 0},
    {"input_ids": [9, 10], "label": 1},
]


def test_pad_collate_right_shapes_masks_labels() -> None:
    out = pad_collate(BATCH)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert out["lengths"].tolist() == [3, 1, 2]
    assert out["attention_mask"].dtype == torch.bool
    assert out["attention_mask"].sum(1).tolist() == [3, 1, 2]
    assert out["labels"].dtype == torch.int64 and out["labels"].tolist() == [1, 0, 1]


def test_pad_collate_left_multiple_of_and_pad_value() -> None:
    out = pad_collate(BATCH, side="left", pad_to_multiple_of=8, pad_value=-1)
    assert out["input_ids"].shape == (3, 8)
    assert out["input_ids"][1].tolist() == [-1] * 7 + [8]
    assert out["attention_mask"][0].tolist() == [False] * 5 + [True] * 3


def test_pad_collate_truncates_per_side() -> None:
    right = pad_collate(BATCH, max_length=2)
    assert right["input_ids"].tolist() == [[5, 6], [8, 0], [9, 10]]
    assert right["lengths"].tolist() == [2, 1, 2]
    left = PadCollate(max_length=2, side="left")(BATCH)
    assert left["input_ids"].tolist() == [[6, 7], [0, 8], [9, 10]]


def test_pad_collate_tuples_and_extra_keys() -> None:
    out = pad_collate([([1, 2], 0), ([3], 1)])
    assert out["input_ids"].tolist() == [[1, 2], [3, 0]] and out["labels"].tolist() == [0, 1]
    out = pad_collate([{"input_ids": [1], "label": 0, "text": "a", "w": 1.5},
                       {"input_ids": [2], "label": 1, "text": "b", "w": 2.5}])
    assert out["text"] == ["a", "b"] and out["w"].tolist() == [1.5, 2.5]


def test_pad_collate_errors() -> None:
    with pytest.raises(CollateError, match="expected samples with an 'input_ids' key"):
        pad_collate([{"text": "hi", "label": 0}])
    with pytest.raises(CollateError, match=r"expected 1-D input_ids .* shape \[2, 2\]"):
        pad_collate([{"input_ids": [[1, 2], [3, 4]], "label": 0}])
    with pytest.raises(ValueError, match="side should be one of"):
        PadCollate(side="middle")
    with pytest.raises(ValueError, match="max_length should be a positive int"):
        pad_collate(BATCH, max_length=0)


def test_pad_collate_works_with_pack_padded_sequence() -> None:
    torch.manual_seed(0)
    out = pad_collate(BATCH)
    emb = torch.nn.Embedding(11, 4)
    rnn = torch.nn.GRU(4, 3, batch_first=True)
    packed = pack_padded_sequence(emb(out["input_ids"]), out["lengths"], batch_first=True,
                                  enforce_sorted=False)
    _, hidden = rnn(packed)
    for row, sample in enumerate(BATCH):  # the last hidden state equals a per-sample run
        ids = torch.as_tensor(sample["input_ids"]).unsqueeze(0)
        _, alone = rnn(emb(ids))
        torch.testing.assert_close(hidden[0, row], alone[0, 0])
    unpacked, lengths = pad_packed_sequence(packed, batch_first=True)
    assert lengths.tolist() == out["lengths"].tolist()


def test_embedding_bag_offsets_equal_masked_mean() -> None:
    torch.manual_seed(0)
    out = pad_collate(BATCH, return_offsets=True, pad_to_multiple_of=8)
    assert out["flat_input_ids"].tolist() == [5, 6, 7, 8, 9, 10]
    assert out["offsets"].tolist() == [0, 3, 4]
    bag = torch.nn.EmbeddingBag(11, 4, mode="mean")
    via_offsets = bag(out["flat_input_ids"], out["offsets"])
    mask = out["attention_mask"].unsqueeze(-1).float()
    via_padding = (bag.weight[out["input_ids"]] * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(via_offsets, via_padding)


def test_pad_collate_is_picklable_and_partial_friendly() -> None:
    collate = pickle.loads(pickle.dumps(PadCollate(pad_to_multiple_of=4)))
    assert collate(BATCH)["input_ids"].shape == (3, 4)
    bound = functools.partial(pad_collate, max_length=1)
    assert bound(BATCH)["input_ids"].shape == (3, 1)


def test_text_dataset_through_loader_with_pad_collate() -> None:
    ds = TextClassificationDataset(["a b c", "a", "b c"], [0, 1, 0])
    ds.vocab = ds.build_vocab()
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=PadCollate())))
    assert batch["input_ids"].shape == (3, 3) and batch["lengths"].tolist() == [3, 1, 2]


def test_skip_none_collate_drops_and_counts(caplog) -> None:
    out = skip_none_collate([None, (torch.ones(2), 1), None, (torch.zeros(2), 0)])
    assert out[0].shape == (2, 2) and out[1].tolist() == [1, 0]
    assert "skipped 2 of 4 samples" in caplog.text
    assert skip_none_collate([None, None]) is None
    counting = SkipNoneCollate(collate_fn=pad_collate)
    assert counting([None, *BATCH[:1]])["input_ids"].tolist() == [[5, 6, 7]]
    assert counting([None]) is None
    assert (counting.skipped_samples, counting.skipped_batches) == (2, 1)


def test_skip_none_collate_in_a_loader() -> None:
    data = [None if i % 3 == 0 else torch.full((2,), i) for i in range(7)]
    batches = list(DataLoader(data, batch_size=1, collate_fn=skip_none_collate))
    assert sum(b is None for b in batches) == 3
    assert [int(b[0, 0]) for b in batches if b is not None] == [1, 2, 4, 5]


def test_default_collate_matches_torch() -> None:
    batch = [{"x": torch.ones(2, 3), "y": 1, "name": "a"}, {"x": torch.zeros(2, 3), "y": 0, "name": "b"}]
    ours = default_collate(batch)
    theirs = torch.utils.data.default_collate(batch)
    assert ours.keys() == theirs.keys() and ours["name"] == theirs["name"]
    torch.testing.assert_close(ours["x"], theirs["x"])
    torch.testing.assert_close(ours["y"], theirs["y"])


def test_default_collate_error_names_key_shapes_and_indices() -> None:
    batch = [{"input_ids": torch.ones(3), "label": 0}, {"input_ids": torch.ones(5), "label": 1}]
    with pytest.raises(CollateError, match=r"key 'input_ids' has different shapes: \[3\] at "
                       r"dataset index 10, \[5\] at dataset index 42.*pad_collate"):
        default_collate(batch, indices=[10, 42])
    with pytest.raises(CollateError, match=r"sample\[0\] has different shapes: \[1, 28, 28\] at "
                       r"batch position 0, \[1, 27, 28\] at batch position 1"):
        default_collate([(torch.ones(1, 28, 28), 0), (torch.ones(1, 27, 28), 1)])
    with pytest.raises(CollateError, match=r"sample is None at dataset index \[7\].*skip_none"):
        default_collate([(torch.ones(1), 0), None], indices=[3, 7])


def test_with_datasets_dataloader_indices_and_none_batches() -> None:
    from datasets.loader import DataLoader as FastLoader

    data = [torch.ones(3), torch.ones(5), None, torch.ones(2)]
    with pytest.raises(CollateError, match=r"\[3\] at dataset index 0, \[5\] at dataset index 1"):
        list(FastLoader(data, batch_size=2))
    batches = list(FastLoader(data, batch_size=1, collate_fn=skip_none_collate))
    assert [b.shape[1] for b in batches] == [3, 5, 2]  # the all-None batch was skipped
