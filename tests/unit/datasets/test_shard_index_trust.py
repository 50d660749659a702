"""index.json is checked against itself and against each shard's header (issue 16 items 5, 15)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datasets import ShardError, StreamingDataset, verify_shards, write_shards
from datasets.shard import main
from tests.unit.datasets.shard_factory import digits


class Notes:
    """Variable records: text and a label."""

    classes = ["x", "y", "z"]

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"text": "n" * (i % 7), "label": i % 3}


def _write(tmp_path: Path, source: Any, size: int) -> Path:
    write_shards(source, tmp_path / "pack", shard_size_bytes=size, shuffle=False)
    return tmp_path / "pack"


def _edit(pack: Path, change: Callable[[dict[str, Any]], None]) -> None:
    index = json.loads((pack / "index.json").read_text())
    change(index)
    (pack / "index.json").write_text(json.dumps(index))


def _read_all(pack: Path, cache: Path) -> None:
    ds = StreamingDataset(pack, cache_dir=cache, prefetch=0)
    for i in range(len(ds)):
        ds[i]


def _swap_fields(index: dict[str, Any]) -> None:
    index["schema"].reverse()  # same record size, fields in another order


def _move_one_sample(index: dict[str, Any]) -> None:
    index["shards"][0]["count"] -= 1
    index["shards"][1]["start"] -= 1
    index["shards"][1]["count"] += 1


def _huge_count(index: dict[str, Any]) -> None:
    index["shards"][-1]["count"] += 10**12
    index["count"] += 10**12


def _zero_shape(index: dict[str, Any]) -> None:
    index["schema"][0]["shape"] = [0, 4]


def _short_classes(index: dict[str, Any]) -> None:
    index["classes"] = ["a"]


def _no_schema(index: dict[str, Any]) -> None:
    del index["schema"]


def _shards_object(index: dict[str, Any]) -> None:
    index["shards"] = {"shard-00000.bin": index["shards"][0]}


FIXED_LIES = {"fields swapped": (_swap_fields, "has label"),
              "a sample moved": (_move_one_sample, "records in .* bytes"),
              "count 10^12": (_huge_count, "records in .* bytes"),
              "shape with a 0": (_zero_shape, r"shape \[0, 4\]"),
              "classes too short": (_short_classes, "has label 1, but the index lists 1 classes"),
              "no schema": (_no_schema, "'schema' should be a non-empty list"),
              "shards an object": (_shards_object, "'shards' should be a list")}


@pytest.mark.parametrize("lie", FIXED_LIES)
def test_reader_refuses_an_index_that_disagrees_with_the_pack(tmp_path: Path, lie: str) -> None:
    pack = _write(tmp_path, digits(40), 24 * 20)
    change, message = FIXED_LIES[lie]
    _edit(pack, change)
    with pytest.raises(ShardError, match=message) as err:
        _read_all(pack, tmp_path / "cache")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("lie", FIXED_LIES)
def test_verify_exits_1_with_one_line_on_every_lie(
        tmp_path: Path, lie: str, capsys: pytest.CaptureFixture[str]) -> None:
    pack = _write(tmp_path, digits(40), 24 * 20)
    assert main(["--verify", str(pack)]) == 0
    capsys.readouterr()
    _edit(pack, FIXED_LIES[lie][0])
    assert main(["--verify", str(pack)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_label_outside_the_classes_names_shard_and_sample(tmp_path: Path) -> None:
    pack = _write(tmp_path, digits(40), 24 * 20)
    _edit(pack, _short_classes)
    ds = StreamingDataset(pack, cache_dir=tmp_path / "cache", prefetch=0)
    assert ds[0][1] == 0
    with pytest.raises(ShardError, match=r"'shard-00001.bin' of .*: sample 22 has label 1"):
        ds.__getitems__([21, 22])


def test_verify_names_the_shard_whose_labels_have_no_class(tmp_path: Path) -> None:
    pack = _write(tmp_path, digits(40), 24 * 20)
    _edit(pack, _short_classes)
    _, bad = verify_shards(pack)
    assert len(bad) == 2 and "shard-00000.bin" in bad[0] and "sample 1 has label 1" in bad[0]


def test_variable_records_are_checked_against_the_shard_header(tmp_path: Path) -> None:
    pack = _write(tmp_path, Notes(), 200)
    index = json.loads((pack / "index.json").read_text())
    assert len(index["shards"]) >= 2
    _edit(pack, _move_one_sample)
    with pytest.raises(ShardError, match="holds .* records by its header but the index says"):
        _read_all(pack, tmp_path / "cache")
    _, bad = verify_shards(pack)
    assert bad and "by its header" in bad[0]


def test_an_honest_variable_pack_still_reads_and_verifies(tmp_path: Path) -> None:
    pack = _write(tmp_path, Notes(), 200)
    ds = StreamingDataset(pack, cache_dir=tmp_path / "cache", prefetch=0)
    assert [ds[i][1] for i in range(40)] == [i % 3 for i in range(40)]  # (text, label) pairs
    assert verify_shards(pack)[1] == []
