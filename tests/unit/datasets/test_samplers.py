"""Samplers: sharding, determinism, balance, bucketing, resume, equal batch counts."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from datasets.samplers import BalancedSampler, BucketBatchSampler, ShardedEvalSampler


def _lengths(n: int = 1003, seed: int = 0) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(1, 120, (n,), generator=g)).tolist()


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_sampler_ranks_disjoint_complete_equal(shuffle: bool, drop_last: bool) -> None:
    lengths = _lengths()
    ranks = [BucketBatchSampler(lengths, 16, shuffle=shuffle, drop_last=drop_last, seed=3,
                                num_replicas=3, rank=r, pool_batches=4) for r in range(3)]
    batches = [list(s) for s in ranks]
    assert len({len(b) for b in batches}) == 1 and all(len(b) == len(s) for b, s in zip(batches, ranks, strict=True))
    flat = [[i for batch in b for i in batch] for b in batches]
    if drop_last:
        assert all(len(batch) == 16 for b in batches for batch in b)
        assert not set(flat[0]) & set(flat[1]) and not set(flat[1]) & set(flat[2])
        assert sum(len(f) for f in flat) == len(set().union(*map(set, flat)))
    else:
        assert set().union(*map(set, flat)) == set(range(len(lengths)))  # complete
        assert sum(len(f) for f in flat) - len(lengths) < 3  # only the wrap-around tail repeats


def test_bucket_sampler_deterministic_per_epoch_and_varies_across_epochs() -> None:
    a = BucketBatchSampler(_lengths(), 8, seed=1)
    b = BucketBatchSampler(_lengths(), 8, seed=1)
    first = list(a)
    assert first == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(BucketBatchSampler(_lengths(), 8, seed=2)) != first


def test_bucket_sampler_cuts_padding() -> None:
    lengths = _lengths(2000)
    def pad_ratio(batches: list[list[int]]) -> float:
        pads = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
        return pads / sum(lengths)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(lengths), generator=g).tolist()
    random_batches = [perm[i:i + 32] for i in range(0, len(perm), 32)]
    bucketed = list(BucketBatchSampler(lengths, 32, seed=0))
    assert sorted(i for b in bucketed for i in b) == list(range(len(lengths)))
    assert pad_ratio(bucketed) * 5 < pad_ratio(random_batches)


def test_bucket_sampler_resume_mid_epoch() -> None:
    s = BucketBatchSampler(_lengths(), 10, seed=4, num_replicas=2, rank=1)
    s.set_epoch(3)
    full = list(s)
    it = iter(s)
    head = [next(it) for _ in range(7)]
    state = s.state_dict()
    assert state["position"] == 7 and state["epoch"] == 3
    resumed = BucketBatchSampler(_lengths(), 10, seed=4, num_replicas=2, rank=1)
    resumed.load_state_dict(state)
    assert head + list(resumed) == full
    assert list(resumed) == full  # the next pass is a whole epoch again
    resumed.load_state_dict(s.state_dict(consumed=2))
    assert list(resumed) == full[2:]
    with pytest.raises(ValueError, match="expected a state saved with seed=5"):
        BucketBatchSampler(_lengths(), 10, seed=5, num_replicas=2, rank=1).load_state_dict(state)


def test_bucket_sampler_argument_errors() -> None:
    with pytest.raises(ValueError, match="batch_size should be a positive int, but got batch_size=0"):
        BucketBatchSampler([1, 2], 0)
    with pytest.raises(ValueError, match=r"rank should be in \[0, 1\]"):
        BucketBatchSampler([1, 2], 1, num_replicas=2, rank=2)


def test_balanced_sampler_with_replacement_is_balanced() -> None:
    labels = [0] * 900 + [1] * 90 + [2] * 10
    s = BalancedSampler(labels, num_samples=30000, seed=0)
    counts = Counter(labels[i] for i in s)
    assert len(s) == 30000
    for c in range(3):
        assert abs(counts[c] / 30000 - 1 / 3) < 0.02


def test_balanced_sampler_without_replacement_undersamples() -> None:
    labels = torch.tensor([0] * 50 + [1] * 20 + [2] * 7)
    s = BalancedSampler(labels, replacement=False, seed=0)
    drawn = list(s)
    assert len(drawn) == 21 == len(set(drawn))
    assert Counter(labels[drawn].tolist()) == {0: 7, 1: 7, 2: 7}
    s.set_epoch(1)
    assert sorted(s) != sorted(drawn)  # a fresh subset of the big classes
    with pytest.raises(ValueError, match="num_samples should be at most 21 without replacement"):
        BalancedSampler(labels, num_samples=22, replacement=False)


@pytest.mark.parametrize("replacement", [True, False])
def test_balanced_sampler_shards_and_resumes(replacement: bool) -> None:
    labels = [i % 4 for i in range(101)]
    ranks = [BalancedSampler(labels, replacement=replacement, seed=7, num_replicas=4, rank=r)
             for r in range(4)]
    for r in ranks:
        r.set_epoch(2)
    draws = [list(r) for r in ranks]
    assert len({len(d) for d in draws}) == 1
    if not replacement:  # 100 distinct draws dealt to 4 ranks: disjoint and complete
        assert sorted(i for d in draws for i in d) == sorted(set(i for d in draws for i in d))
        assert sum(len(d) for d in draws) == 100
    assert draws == [list(r) for r in ranks]  # deterministic
    it = iter(ranks[1])
    head = [next(it) for _ in range(5)]
    fresh = BalancedSampler(labels, replacement=replacement, seed=7, num_replicas=4, rank=1)
    fresh.load_state_dict(ranks[1].state_dict())
    assert head + list(fresh) == draws[1]


def test_samplers_do_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    list(BalancedSampler([0, 1, 1], seed=0))
    list(BucketBatchSampler([1, 2, 3], 2, seed=0))
    assert torch.equal(torch.rand(3), expected)


def test_sharded_eval_sampler_no_duplicates() -> None:
    shards = [list(ShardedEvalSampler(10, num_replicas=4, rank=r)) for r in range(4)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert list(ShardedEvalSampler(list("abc"))) == [0, 1, 2]
    s = ShardedEvalSampler(10, num_replicas=4, rank=0)
    it = iter(s)
    next(it)
    resumed = ShardedEvalSampler(10, num_replicas=4, rank=0)
    resumed.load_state_dict(s.state_dict())
    assert list(resumed) == [1, 2]


def test_bucket_sampler_in_dataloader() -> None:
    from datasets.collate import PadCollate
    from datasets.text import TextClassificationDataset

    texts = ["a " * n for n in _lengths(200)]
    ds = TextClassificationDataset(texts, [0] * 200)
    ds.vocab = ds.build_vocab()
    sampler = BucketBatchSampler(ds.lengths(), 16, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=PadCollate())
    batches = list(loader)
    assert len(batches) == len(sampler) == 13
    assert sum(int(b["lengths"].sum()) for b in batches) == sum(ds.lengths())


def test_samplers_take_replicas_from_torch_distributed(monkeypatch) -> None:
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    for sampler in (BucketBatchSampler(_lengths(), 8), BalancedSampler([0, 1] * 10),
                    ShardedEvalSampler(10)):
        assert (sampler.num_replicas, sampler.rank) == (4, 3)
    assert list(ShardedEvalSampler(10)) == [8, 9]


@pytest.mark.integration  # worker processes pass tensors over local unix sockets
def test_bucket_batches_same_with_two_workers() -> None:
    from datasets.collate import PadCollate
    from datasets.text import TextClassificationDataset

    ds = TextClassificationDataset([" ".join("ab"[i % 2] * (n % 7 + 1) for i in range(n))
                                    for n in _lengths(120)], [i % 2 for i in range(120)])
    ds.vocab = ds.build_vocab()
    def run(workers: int) -> list[dict[str, torch.Tensor]]:
        sampler = BucketBatchSampler(ds.lengths(), 16, seed=5)
        return list(torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=workers,
                                                collate_fn=PadCollate(pad_to_multiple_of=8)))
    zero, two = run(0), run(2)
    assert len(zero) == len(two) == 8
    for a, b in zip(zero, two, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _distributed_rank(rank: int, world: int, store: str, out: str) -> None:
    import json

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        bucket = BucketBatchSampler(_lengths(101), 8, seed=1)  # replicas/rank from the group
        balanced = BalancedSampler([i % 3 for i in range(99)], replacement=False, seed=1)
        evaluation = ShardedEvalSampler(101)
        result = {"bucket": list(bucket), "balanced": list(balanced), "eval": list(evaluation),
                  "world": [bucket.num_replicas, bucket.rank]}
        gathered: list[object] = [None] * world
        dist.all_gather_object(gathered, result)
        if rank == 0:
            with open(out, "w") as f:
                json.dump(gathered, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.integration  # two gloo processes talking over loopback
def test_samplers_under_real_torch_distributed(tmp_path) -> None:
    import json

    import torch.multiprocessing as mp

    out = tmp_path / "ranks.json"
    mp.start_processes(_distributed_rank, args=(2, str(tmp_path / "store"), str(out)), nprocs=2,
                       start_method="fork")
    ranks = json.loads(out.read_text())
    assert [r["world"] for r in ranks] == [[2, 0], [2, 1]]
    bucket = [{i for b in r["bucket"] for i in b} for r in ranks]
    assert len(ranks[0]["bucket"]) == len(ranks[1]["bucket"]) == 7
    assert bucket[0] | bucket[1] == set(range(101)) and len(bucket[0] & bucket[1]) <= 1
    balanced = [set(r["balanced"]) for r in ranks]  # 99 distinct draws, one wrapped to even up
    assert len(balanced[0] | balanced[1]) == 99 and len(balanced[0] & balanced[1]) <= 1
    assert len(ranks[0]["balanced"]) == len(ranks[1]["balanced"]) == 50
    assert ranks[0]["eval"] + ranks[1]["eval"] == list(range(101))
