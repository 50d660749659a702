"""A shard against its index: what a reader checks when it opens a shard, and ``--verify`` for all.

``index.json`` and the shards come from outside, and a shard's sha256 only binds it to the
index, which may itself be wrong. So the index is checked on its own
(:func:`datasets.shardformat.parse_index`: plain names, counts that fit the sizes, shapes
without a zero) and each shard's header against its index entry here:

- the header's record count is the entry's ``count``; the file is ``size_bytes`` long;
- the offsets start right after the header, never decrease and end at the file size; with
  fixed fields only, every record is exactly the schema's record size (so a schema whose
  record size differs from what was written is refused); with variable fields, every record
  is at least the smallest record the schema allows;
- labels (an ``int`` field named ``label``) lie in ``[0, len(classes))`` when the index has
  ``classes``: :func:`check_labels` for a whole shard (``--verify``), :func:`check_label` per
  sample while reading.

Nothing here allocates more than the shard holds: counts are compared before arrays are made.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from datasets.errors import ShardError
from datasets.shardformat import (
    MAGIC,
    Field,
    decode_record,
    header_bytes,
    min_record_bytes,
    record_dtype,
)

log = logging.getLogger(__name__)


def check_header(buffer: np.ndarray, entry: Mapping[str, Any], schema: Sequence[Field],
                 where: str) -> np.ndarray:
    """Return shard ``entry``'s ``count + 1`` record offsets after checking them (see above).

    Args:
        buffer: the shard's bytes (uint8, e.g. a read-only memory map).
        entry: its index entry (``name``, ``count``, ``size_bytes``).
        schema: the index's fields.
        where: the shard's path or URL, for messages.

    Raises:
        ShardError: the header disagrees with the index entry or the schema.
    """
    count, size = int(entry["count"]), int(entry["size_bytes"])
    if buffer.size != size or buffer.size < 16 or bytes(buffer[:8]) != MAGIC:
        raise ShardError(f"{where} is not the shard its index describes ({buffer.size:,} bytes, "
                         f"index says {size:,}; magic {bytes(buffer[:8])!r}); fetch it again")
    header_count = int(np.frombuffer(buffer, dtype="<u8", count=1, offset=8)[0])
    if header_count != count:
        raise ShardError(f"{where} holds {header_count:,} records by its header but the index "
                         f"says {count:,}; the pack is damaged, write it again")
    offsets = np.frombuffer(buffer, dtype="<u8", count=count + 1, offset=16)
    first, last = int(offsets[0]), int(offsets[-1])
    if first != header_bytes(count) or last != size:
        raise ShardError(f"{where}: its records span bytes {first:,}..{last:,}, expected "
                         f"{header_bytes(count):,}..{size:,}; the pack is damaged, write it again")
    dtype = record_dtype(schema)
    if dtype is not None:  # exact sizes: parse_index checked size == header + count * itemsize
        return offsets
    sizes = np.diff(offsets.astype(np.int64))  # at most the file's own size in bytes
    if sizes.size and int(sizes.min()) < min_record_bytes(schema):
        bad = int(np.argmax(sizes < min_record_bytes(schema)))
        raise ShardError(f"{where}: record {bad} is {int(sizes[bad]):,} bytes, fewer than the "
                         f"schema's smallest record ({min_record_bytes(schema)} bytes); the "
                         "pack is damaged, write it again")
    return offsets


def label_count(schema: Sequence[Field], classes: Any) -> int | None:
    """The number of classes labels must stay below, or None when labels are not checked."""
    has_label = any(f.name == "label" and f.kind == "int" for f in schema)
    return len(classes) if has_label and isinstance(classes, list) else None


def check_label(label: int, classes: int, *, shard: str, record: int) -> None:
    """Refuse a label outside ``[0, classes)``, naming the shard and the record.

    Raises:
        ShardError: the label has no class.
    """
    if not 0 <= label < classes:
        raise ShardError(f"{shard}: sample {record} has label {label}, but the index lists "
                         f"{classes} classes (labels 0..{classes - 1}); the pack is damaged or "
                         "its schema or classes are wrong, write it again")


def check_labels(labels: np.ndarray, classes: int, *, shard: str, start: int) -> None:
    """:func:`check_label` for every label of a shard whose first sample is ``start``."""
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        check_label(int(labels[bad[0]]), classes, shard=shard, record=start + int(bad[0]))


def check_shard_file(path: str | os.PathLike[str], entry: Mapping[str, Any],
                     schema: Sequence[Field], classes: Any) -> None:
    """Check a whole shard file against its index entry: header, every record and every label.

    Raises:
        ShardError: the first disagreement, naming the shard (and the record).
    """
    where = os.fspath(path)
    buffer = np.memmap(path, dtype=np.uint8, mode="r") if os.path.getsize(path) else np.zeros(0, np.uint8)
    offsets = check_header(buffer, entry, schema, where)
    n_classes = label_count(schema, classes)
    start = int(entry["start"])
    dtype = record_dtype(schema)
    if dtype is not None:
        if n_classes is not None:
            records = buffer[int(offsets[0]):].view(dtype)
            check_labels(records["label"], n_classes, shard=where, start=start)
        return
    for i in range(int(entry["count"])):
        try:
            record = decode_record(schema, buffer[int(offsets[i]):int(offsets[i + 1])].data)
        except (ShardError, UnicodeDecodeError) as err:
            raise ShardError(f"{where}: record {i} is malformed ({err}); the pack is damaged, "
                             "write it again") from err
        if n_classes is not None:
            check_label(record["label"], n_classes, shard=where, record=start + i)
