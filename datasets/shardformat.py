"""The sharded pack format: a schema of fields, shard files of records, and ``index.json``.

A sharded pack is a folder (or an HTTP/S3 prefix) holding::

    index.json        format, version, count, schema, shards (name, start, count, size_bytes,
                      sha256), classes, channel statistics, vocabulary, source; written last
    shard-00000.bin   records start..start+count-1 of the dataset, in order
    shard-00001.bin   ...

One shard file::

    b"DFSHARD1"              8 bytes, the magic
    count                    uint64 little-endian
    offsets[count + 1]       uint64 little-endian, byte offset of each record from the file
                             start; offsets[count] is the file size
    record 0, record 1, ...

One record is its fields in schema order. Fixed fields (``array``: a dtype and shape, ``int``:
an int64) are their raw little-endian bytes, so a shard of fixed fields only is a numpy
structured array after the header. Variable fields (``bytes``: e.g. an encoded JPEG, ``text``:
UTF-8, ``tokens``: int32 token ids) are a uint32 length (bytes, or tokens) and the data.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets.errors import ShardError

FORMAT = "dataferry-shards"
VERSION = 1
MAGIC = b"DFSHARD1"
INDEX_FILE = "index.json"
KINDS = ("array", "int", "bytes", "text", "tokens")
_LEN = struct.Struct("<I")


@dataclass(frozen=True)
class Field:
    """One field of a record.

    Attributes:
        name: the key in the record dict.
        kind: ``array`` (fixed dtype and shape), ``int`` (an int64 scalar, e.g. a label),
            ``bytes`` (variable, e.g. an encoded image), ``text`` (UTF-8) or ``tokens``
            (variable int32 ids).
        dtype: numpy dtype name for ``array`` (``uint8``, ``float32``...).
        shape: the fixed shape for ``array``.
    """

    name: str
    kind: str
    dtype: str = ""
    shape: tuple[int, ...] = ()

    @property
    def fixed(self) -> bool:
        return self.kind in ("array", "int")

    def numpy_dtype(self) -> np.dtype[Any]:
        """The little-endian dtype of a fixed field (with its shape for arrays)."""
        if self.kind == "int":
            return np.dtype("<i8")
        return np.dtype((np.dtype(self.dtype).newbyteorder("<"), self.shape))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Field:
        if data.get("kind") not in KINDS:
            raise ShardError(f"unknown field kind {data.get('kind')!r}; expected one of {KINDS}")
        return cls(str(data["name"]), str(data["kind"]), str(data.get("dtype", "")),
                   tuple(int(d) for d in data.get("shape", ())))


def record_dtype(schema: Sequence[Field]) -> np.dtype[Any] | None:
    """The packed structured dtype of a record when every field is fixed, else ``None``."""
    if not all(f.fixed for f in schema):
        return None
    return np.dtype([(f.name, f.numpy_dtype()) for f in schema])


def encode_record(schema: Sequence[Field], record: Mapping[str, Any]) -> bytes:
    """Serialize one record dict (values already normalized by the writer)."""
    parts: list[bytes] = []
    for f in schema:
        value = record[f.name]
        if f.kind == "int":
            parts.append(struct.pack("<q", int(value)))
        elif f.kind == "array":
            parts.append(np.ascontiguousarray(value, dtype=f.numpy_dtype().base).tobytes())
        elif f.kind == "tokens":
            ids = np.ascontiguousarray(value, dtype="<i4")
            parts += [_LEN.pack(len(ids)), ids.tobytes()]
        else:
            data = value.encode("utf-8") if f.kind == "text" else bytes(value)
            parts += [_LEN.pack(len(data)), data]
    return b"".join(parts)


def decode_record(schema: Sequence[Field], view: memoryview | bytes) -> dict[str, Any]:
    """Parse one record's bytes into numpy arrays, ints, bytes and str."""
    out: dict[str, Any] = {}
    pos = 0
    for f in schema:
        if f.fixed:
            dtype = f.numpy_dtype()
            value = np.frombuffer(view, dtype=dtype.base, count=max(1, int(np.prod(f.shape))),
                                  offset=pos)
            out[f.name] = int(value[0]) if f.kind == "int" else value.reshape(f.shape)
            pos += dtype.itemsize
            continue
        (length,) = _LEN.unpack_from(view, pos)
        pos += 4
        if f.kind == "tokens":
            out[f.name] = np.frombuffer(view, dtype="<i4", count=length, offset=pos)
            pos += 4 * length
        else:
            data = bytes(view[pos:pos + length])
            out[f.name] = data.decode("utf-8") if f.kind == "text" else data
            pos += length
    return out


def shard_header(count: int, record_sizes: Sequence[int] | np.ndarray) -> bytes:
    """The magic, count and offsets of a shard whose records have these sizes."""
    first = len(MAGIC) + 8 + 8 * (count + 1)
    offsets = np.empty(count + 1, dtype="<u8")
    offsets[0] = first
    np.cumsum(np.asarray(record_sizes, dtype=np.uint64), out=offsets[1:])
    offsets[1:] += first
    return MAGIC + struct.pack("<Q", count) + offsets.tobytes()


def read_offsets(buffer: np.ndarray, name: str) -> np.ndarray:
    """Return a shard's ``count + 1`` record offsets, checking magic and sizes."""
    if buffer.size < 16 or bytes(buffer[:8]) != MAGIC:
        raise ShardError(f"{name} is not a dataferry shard (bad magic); fetch it again")
    count = int(np.frombuffer(buffer, dtype="<u8", count=1, offset=8)[0])
    if buffer.size < 16 + 8 * (count + 1):
        raise ShardError(f"{name} is truncated: header announces {count} records")
    offsets = np.frombuffer(buffer, dtype="<u8", count=count + 1, offset=16)
    if int(offsets[-1]) != buffer.size:
        raise ShardError(f"{name} is {buffer.size:,} bytes but its offsets end at {int(offsets[-1]):,}")
    return offsets


def shard_name(number: int) -> str:
    """``shard-00000.bin`` for shard 0."""
    return f"shard-{number:05d}.bin"


def parse_index(text: str | bytes, url: str) -> dict[str, Any]:
    """Parse and check ``index.json``; return it with ``schema`` as :class:`Field` objects.

    Raises:
        ShardError: not JSON, another format or version, or shard ranges that do not tile.
    """
    try:
        index = json.loads(text)
    except ValueError as err:
        raise ShardError(f"{url} is not JSON ({err}); point at a sharded pack's index.json") from err
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ShardError(f"{url} is not a dataferry sharded pack index (format {FORMAT!r})")
    if index.get("version") != VERSION:
        raise ShardError(f"{url} has version {index.get('version')!r}; this reader reads {VERSION}")
    index["schema"] = [Field.from_json(f) for f in index["schema"]]
    start = 0
    for shard in index["shards"]:
        if shard["start"] != start or shard["count"] < 1:
            raise ShardError(f"{url}: shard {shard['name']} starts at {shard['start']}, "
                             f"expected {start}; the index is damaged, write the pack again")
        start += shard["count"]
    if start != index["count"]:
        raise ShardError(f"{url}: shards hold {start} samples but count says {index['count']}")
    return index


def index_json(index: Mapping[str, Any]) -> bytes:
    """Serialize an index (schema as :class:`Field` objects or dicts) to stable JSON bytes."""
    data = dict(index)
    data["schema"] = [f.to_json() if isinstance(f, Field) else f for f in data["schema"]]
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")
