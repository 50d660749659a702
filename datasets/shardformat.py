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
import re
import struct
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets.errors import ShardError
from loaders.errors import UnsafeNameError
from loaders.manifest import is_reserved
from loaders.names import check_name

FORMAT = "dataferry-shards"
VERSION = 1
MAGIC = b"DFSHARD1"
INDEX_FILE = "index.json"
KINDS = ("array", "int", "bytes", "text", "tokens")
_LEN = struct.Struct("<I")
_DEFAULT_NAME = re.compile(r"shard-(\d{5,})\.bin")


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
        """The field of a schema entry; ``name`` must be a string, ``shape`` a list of ints.

        Raises:
            ShardError: an unknown kind.
            ValueError: a missing or non-string name, or a shape that is not a list of ints.
        """
        if data.get("kind") not in KINDS:
            raise ShardError(f"unknown field kind {data.get('kind')!r}; expected one of {KINDS}")
        name, shape = data.get("name"), data.get("shape", [])
        if not isinstance(name, str) or not isinstance(shape, list) or not all(
                type(d) is int for d in shape):
            raise ValueError(f"a field should have a string name and a list of int shape, but "
                             f"got name={name!r}, shape={shape!r}")
        return cls(name, str(data["kind"]), str(data.get("dtype", "")), tuple(shape))


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
    """Parse one record's bytes into numpy arrays, ints, bytes and str.

    Raises:
        ShardError: a field runs past the record's end, or bytes are left over.
        UnicodeDecodeError: a ``text`` field is not UTF-8.
    """
    out: dict[str, Any] = {}
    pos = 0
    for f in schema:
        if f.fixed:
            dtype = f.numpy_dtype()
            _need(view, pos, dtype.itemsize, f)
            value = np.frombuffer(view, dtype=dtype.base, count=max(1, int(np.prod(f.shape))),
                                  offset=pos)
            out[f.name] = int(value[0]) if f.kind == "int" else value.reshape(f.shape)
            pos += dtype.itemsize
            continue
        _need(view, pos, _LEN.size, f)
        (length,) = _LEN.unpack_from(view, pos)
        pos += 4
        _need(view, pos, 4 * length if f.kind == "tokens" else length, f)
        if f.kind == "tokens":
            out[f.name] = np.frombuffer(view, dtype="<i4", count=length, offset=pos)
            pos += 4 * length
        else:
            data = bytes(view[pos:pos + length])
            out[f.name] = data.decode("utf-8") if f.kind == "text" else data
            pos += length
    if pos != len(view):
        raise ShardError(f"the record is {len(view):,} bytes but its fields take {pos:,}")
    return out


def _need(view: memoryview | bytes, pos: int, size: int, f: Field) -> None:
    if pos + size > len(view):
        raise ShardError(f"field {f.name!r} needs bytes {pos:,}..{pos + size:,} of a record of "
                         f"{len(view):,} bytes")


def shard_header(count: int, record_sizes: Sequence[int] | np.ndarray) -> bytes:
    """The magic, count and offsets of a shard whose records have these sizes."""
    first = header_bytes(count)
    offsets = np.empty(count + 1, dtype="<u8")
    offsets[0] = first
    np.cumsum(np.asarray(record_sizes, dtype=np.uint64), out=offsets[1:])
    offsets[1:] += first
    return MAGIC + struct.pack("<Q", count) + offsets.tobytes()


def shard_name(number: int) -> str:
    """``shard-00000.bin`` for shard 0."""
    return f"shard-{number:05d}.bin"


def parse_index(text: str | bytes, url: str) -> dict[str, Any]:
    """Parse and check ``index.json``; return it with ``schema`` as :class:`Field` objects.

    Everything in the index came from outside: each shard name must be a plain file name
    (:func:`loaders.names.check_name`, checked before any shard is fetched), each count must
    fit in the shard's declared size (so no reader allocates more than the shards hold), and
    each field's shape has no zero.

    Raises:
        ShardError: not JSON, another format or version, a malformed schema or shard list, an
            unsafe or repeated shard name, or shard ranges or sizes that do not add up.
    """
    try:
        index = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ShardError(f"{url} is not JSON ({err}); point at a sharded pack's index.json") from err
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ShardError(f"{url} is not a dataferry sharded pack index (format {FORMAT!r})")
    if index.get("version") != VERSION:
        raise ShardError(f"{url} has version {index.get('version')!r}; this reader reads {VERSION}")
    index["schema"] = parse_schema(index.get("schema"), url)
    shards = index.get("shards")
    if not isinstance(shards, list):
        raise ShardError(f"{url}: 'shards' should be a list of shard entries, but got "
                         f"{type(shards).__name__}; the index is damaged, write the pack again")
    smallest = min_record_bytes(index["schema"])
    fixed = record_dtype(index["schema"]) is not None
    start, names = 0, set()
    for k, shard in enumerate(shards):
        _check_entry(shard, k, start, url, smallest, fixed=fixed)
        # one file on a case-insensitive or normalising file system (macOS, Windows)
        folded = unicodedata.normalize("NFC", shard["name"]).casefold()
        if folded in names:
            raise ShardError(f"{url}: shard {k} is named {shard['name']!r} like an earlier shard "
                             "(compared ignoring case and Unicode normalisation); the index is "
                             "damaged, write the pack again")
        names.add(folded)
        start += shard["count"]
    if not _is_int(index.get("count")) or start != index["count"]:
        raise ShardError(f"{url}: shards hold {start} samples but count says {index.get('count')!r}")
    if not isinstance(index.get("classes") or [], list):
        raise ShardError(f"{url}: 'classes' should be a list of class names, but got "
                         f"{type(index['classes']).__name__}; the index is damaged")
    return index


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_schema(data: Any, url: str) -> list[Field]:
    """Return the index's ``schema`` as fields; refuse anything else with one line.

    Raises:
        ShardError: not a non-empty list of fields with unique names, known kinds, numpy
            dtypes and shapes of positive ints.
    """
    if not isinstance(data, list) or not data or not all(isinstance(f, dict) for f in data):
        raise ShardError(f"{url}: 'schema' should be a non-empty list of fields "
                         f"({{name, kind, dtype, shape}}), but got {str(data)[:80]!r}; the "
                         "index is damaged, write the pack again")
    try:
        schema = [Field.from_json(f) for f in data]
        for f in schema:
            if f.kind == "array" and (not f.shape or min(f.shape) < 1 or len(f.shape) > 8
                                      or f.numpy_dtype().base.kind not in "biuf"):
                raise ValueError(f"field {f.name!r} has shape {list(f.shape)} and dtype "
                                 f"{f.dtype!r} (dimensions 1..8 of at least 1, a number dtype)")
        itemsize = sum(f.numpy_dtype().itemsize for f in schema if f.fixed)
    except (TypeError, ValueError, OverflowError) as err:
        raise ShardError(f"{url}: a schema field is malformed: {err}; the index is damaged, "
                         "write the pack again") from err
    names = [f.name for f in schema]
    if len(set(names)) != len(names) or itemsize > 1 << 31:
        raise ShardError(f"{url}: schema fields {names} repeat a name or make records of "
                         f"{itemsize:,} bytes; the index is damaged, write the pack again")
    return schema


def min_record_bytes(schema: Sequence[Field]) -> int:
    """The fewest bytes one record can take: its fixed fields, and a length per variable one."""
    return sum(f.numpy_dtype().itemsize if f.fixed else _LEN.size for f in schema)


def header_bytes(count: int) -> int:
    """The size of a shard's header (magic, count, ``count + 1`` offsets)."""
    return len(MAGIC) + 8 + 8 * (count + 1)


def _check_entry(shard: Any, k: int, start: int, url: str, smallest: int, *, fixed: bool) -> None:
    """One shard entry: a dict of a plain name, its start, a count that its size can hold."""
    if not isinstance(shard, dict):
        raise ShardError(f"{url}: shard {k} should be an object (name, start, count, size_bytes, "
                         f"sha256), but got {str(shard)[:80]!r}; the index is damaged")
    try:
        check_name(shard.get("name"))
    except UnsafeNameError as err:
        raise ShardError(f"{url}: shard {k} is named {err.name}, which {err.reason}; refused "
                         "before fetching anything: shard names must be plain file names "
                         "(shard-00000.bin), so do not use this pack") from err
    name = shard["name"]
    if is_reserved(name):  # the cache's own files: a shard x.part would be shard x's download
        raise ShardError(f"{url}: shard {k} is named {name!r}, a name of dataferry's bookkeeping "
                         "(*.part, *.lock, *.tmp, manifests); refused before fetching anything: "
                         "write the pack with other shard names")
    if not (_is_int(shard.get("count")) and _is_int(shard.get("size_bytes"))
            and _is_int(shard.get("start")) and isinstance(shard.get("sha256"), str)):
        raise ShardError(f"{url}: shard {name!r} needs int start, count, size_bytes and a sha256 "
                         f"string, but got {str(shard)[:120]!r}; the index is damaged")
    count, size = int(shard["count"]), int(shard["size_bytes"])
    if shard["start"] != start or count < 1:
        raise ShardError(f"{url}: shard {name!r} starts at {shard['start']}, "
                         f"expected {start}; the index is damaged, write the pack again")
    least = header_bytes(count) + count * smallest
    if size < least or (fixed and size != least):
        raise ShardError(f"{url}: shard {name!r} says {count:,} records in {size:,} bytes, but "
                         f"its header and records take {'exactly' if fixed else 'at least'} "
                         f"{least:,} bytes; the index is damaged, write the pack again")


class ShardTable:
    """The index's shard list as numpy arrays, for readers of packs of 100,000+ shards.

    About 56 bytes per shard (count, start, size, 32-byte sha256; names only when they are not
    ``shard-00000.bin``...), where the parsed JSON dicts take about 500.

    Args:
        shards: the index's shard entries (``name``, ``start``, ``count``, ``size_bytes``,
            ``sha256``), already checked by :func:`parse_index`.

    Example:
        >>> table = ShardTable([{"name": "shard-00000.bin", "start": 0, "count": 3,
        ...                      "size_bytes": 99, "sha256": "ab" * 32}])
        >>> table.name(0), int(table.starts[1]), table.entry(0)["sha256"][:4]
        ('shard-00000.bin', 3, 'abab')
    """

    def __init__(self, shards: Sequence[Mapping[str, Any]]) -> None:
        n = len(shards)
        self.counts = np.fromiter((s["count"] for s in shards), dtype=np.int64, count=n)
        self.starts = np.zeros(n + 1, dtype=np.int64)  # starts[n] is the sample count
        np.cumsum(self.counts, out=self.starts[1:])
        self.size_bytes = np.fromiter((s["size_bytes"] for s in shards), dtype=np.int64, count=n)
        # uint8 rows, not "S32": numpy strips the trailing NUL bytes of S strings
        try:
            digests = b"".join(bytes.fromhex(s["sha256"]) for s in shards)
        except ValueError as err:
            raise ShardError(f"a shard's sha256 is not hex ({err}); the index is damaged, "
                             "write the pack again") from err
        if len(digests) != 32 * n:
            raise ShardError("a shard's sha256 is not 64 hex digits; the index is damaged, "
                             "write the pack again")
        self.sha256 = np.frombuffer(digests, dtype=np.uint8).reshape(n, 32)
        names = [s["name"] for s in shards]
        default = all(name == shard_name(k) for k, name in enumerate(names))
        self._names = None if default else np.array(names)
        self._name_set: frozenset[str] | None = None

    def __len__(self) -> int:
        return len(self.counts)

    def name(self, k: int) -> str:
        """The file name of shard ``k``."""
        return shard_name(k) if self._names is None else str(self._names[k])

    def holds(self, name: str) -> bool:
        """Whether the index names a shard ``name`` (what a cache may evict).

        Example:
            >>> table = ShardTable([{"name": "shard-00000.bin", "start": 0, "count": 3,
            ...                      "size_bytes": 99, "sha256": "ab" * 32}])
            >>> table.holds("shard-00000.bin"), table.holds("shard-00001.bin"), table.holds(".evict")
            (True, False, False)
        """
        if self._names is None:
            match = _DEFAULT_NAME.fullmatch(name)
            return match is not None and int(match[1]) < len(self) and shard_name(int(match[1])) == name
        if self._name_set is None:
            self._name_set = frozenset(str(n) for n in self._names)
        return name in self._name_set

    def entry(self, k: int) -> dict[str, Any]:
        """Shard ``k`` as its index entry (for messages and verification)."""
        return {"name": self.name(k), "start": int(self.starts[k]), "count": int(self.counts[k]),
                "size_bytes": int(self.size_bytes[k]), "sha256": self.sha256[k].tobytes().hex()}


def index_json(index: Mapping[str, Any]) -> bytes:
    """Serialize an index (schema as :class:`Field` objects or dicts) to stable JSON bytes."""
    data = dict(index)
    data["schema"] = [f.to_json() if isinstance(f, Field) else f for f in data["schema"]]
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")
