"""Write a dataset as a sharded pack, resumably, and verify a pack against its index.

Samples are written in a permutation of the dataset's order drawn from ``seed`` (``shuffle=False``
keeps the order): readers shuffle only within a few shards, and sources are often sorted by
class. The main thread cuts the dataset into shards of records (:mod:`datasets.shardsource`); a
thread pool hashes, writes and uploads them, ``workers`` at a time, so memory stays under about
``(workers + 1) * shard_size_bytes`` and both cores work (hashing, file writes, uploads and
numpy copies release the GIL). Each finished shard is recorded in ``.progress.json`` in OUT, in
order; an interrupted write started again with the same source and settings continues after the
last recorded shard. The settings include the source's fingerprint (what the packed image
cache is keyed by: paths, sizes and change times, :func:`datasets.packing.folder_fingerprint`),
so a source changed since the interruption starts the write over, and says so, instead of
mixing two versions. A source without a known fingerprint (a Python dataset, unless the caller
passes ``source_fingerprint=``) is always written from the start. ``index.json`` is written last (``os.replace`` locally, one PUT on S3), so a
pack with an index is complete; then ``.progress.json`` is deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from datasets.errors import DatasetError, ShardError
from datasets.packed import DISK_ERRNOS, check_free_space
from datasets.shardcheck import check_shard_file
from datasets.shardformat import (
    FORMAT,
    INDEX_FILE,
    VERSION,
    index_json,
    parse_index,
    record_dtype,
    shard_name,
)
from datasets.shardsource import (
    ArraySource,
    Chunk,
    ItemSource,
    channel_stats,
    order_sha256,
    record_source,
    shard_pixel_sums,
)
from datasets.storage import LocalStore, Store, open_store
from loaders.errors import ChecksumMismatchError, DownloadError
from loaders.verify import Expected, check_file

log = logging.getLogger(__name__)

PROGRESS_FILE = ".progress.json"
DEFAULT_SHARD_BYTES = 64 << 20


def write_shards(
    dataset: Any,
    out: str | os.PathLike[str],
    *,
    shard_size_bytes: int = DEFAULT_SHARD_BYTES,
    workers: int = 2,
    classes: list[Any] | None = None,
    extra: dict[str, Any] | None = None,
    source: str = "",
    progress: bool = False,
    endpoint_url: str | None = None,
    shuffle: bool = True,
    seed: int = 0,
    source_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Write ``dataset`` as ``shard-*.bin`` files and ``index.json`` under ``out``.

    Args:
        dataset: any map-style dataset (see :func:`datasets.shardsource.record_source`).
        out: a folder or ``s3://bucket/prefix``.
        shard_size_bytes: the target size of one shard (a shard ends after the record that
            reaches it).
        workers: threads hashing, writing and uploading shards.
        classes: class names for the index (default: ``dataset.classes``).
        extra: more keys for the index (e.g. ``{"vocab": vocab.state_dict()}``).
        source: a description of the source, recorded in the index.
        progress: show a tqdm bar of samples written on stderr.
        endpoint_url: an S3-compatible endpoint for ``s3://`` outputs.
        shuffle: write the samples in a permutation of the dataset's order drawn from ``seed``
            (recorded in the index as ``write_shuffle_seed``); a reader shuffles only within
            a few shards, so a class-sorted source written in order gives one-class batches.
            ``False`` keeps the dataset's order (sample ``i`` of the pack is ``dataset[i]``).
        seed: the seed of that permutation.
        source_fingerprint: what identifies the source's content (default:
            :func:`dataset_fingerprint`). An unfinished write of the same ``source`` with
            another fingerprint is started over (with a warning), and so is one whose
            fingerprint is unknown (``None``): only a known, equal fingerprint resumes.
            Recorded in the index.

    Returns:
        The index that was written.

    Raises:
        ShardError: OUT already holds a pack (the message says whether its source has changed
            since), holds an unfinished write of another source, or cannot be written.
        DataFormatError: the samples do not fit one schema.
    """
    if shard_size_bytes < 1:
        raise ValueError(f"shard_size_bytes should be a positive int, but got {shard_size_bytes}")
    if workers < 1:
        raise ValueError(f"workers should be a positive int, but got workers={workers}")
    if shuffle and int(seed) < 0:
        raise ValueError(f"seed should be an int >= 0, but got seed={seed!r}")
    store = open_store(out, endpoint_url=endpoint_url)
    fingerprint = source_fingerprint or dataset_fingerprint(dataset)
    _refuse_existing(store, out, fingerprint)
    shuffle_seed = int(seed) if shuffle else None
    reader = record_source(dataset, classes=classes, shuffle_seed=shuffle_seed)
    order = None if reader.order is None else order_sha256(reader.order)
    settings = {"count": reader.count, "schema": [f.to_json() for f in reader.schema],
                "shard_size_bytes": shard_size_bytes, "source": source,
                "write_shuffle_seed": shuffle_seed, "write_order_sha256": order,
                "source_fingerprint": fingerprint}
    done = _resume_point(store, settings)
    start = done[-1]["start"] + done[-1]["count"] if done else 0
    if done:
        log.info("resuming the write of %s after %d shards (%d of %d samples)",
                 out, len(done), start, reader.count)
    extra = {**(extra or {}), **reader.extra, "write_shuffle_seed": shuffle_seed,
             "source_fingerprint": fingerprint}
    try:
        with tempfile.TemporaryDirectory(prefix=".shard-staging-",
                                         dir=_staging_parent(store, reader, start)) as staging:
            _write_all(reader, store, Path(staging), done, settings, start=start,
                       workers=workers, progress=progress)
        index = _index(reader, done, extra, source)
        store.write(INDEX_FILE, index_json(index))
    except OSError as err:
        if isinstance(err, DatasetError) or err.errno not in DISK_ERRNOS:
            raise
        raise ShardError(
            f"cannot write the pack {out} ({err.strerror}, errno {err.errno}: "
            f"{err.filename or out}); free space there or write to another OUT, then run the "
            f"same command again (the {len(done)} shards written so far are kept)") from err
    store.delete(PROGRESS_FILE)
    log.info("wrote %d samples in %d shards to %s", reader.count, len(done), out)
    return index


def dataset_fingerprint(dataset: Any) -> str | None:
    """What identifies the content ``dataset`` reads, or ``None`` when that is unknown.

    A packed image dataset: the fingerprint of the folder or archive it was packed from (its
    cache key, :func:`datasets.packing.folder_fingerprint`); another packed cache (IDX, CIFAR):
    its cache folder's name, which is its key. An uncached
    :class:`datasets.ImageFolderDataset`: the same hash over its own samples (resolved root,
    classes, paths, sizes, mtimes, ctimes and inodes; one ``stat`` per file). Anything else
    (a Python dataset, a file removed since the dataset was listed): ``None``.
    """
    from datasets.images import ImageFolderDataset

    if isinstance(dataset, ImageFolderDataset):
        return _image_folder_fingerprint(dataset)
    for holder in (dataset, getattr(dataset, "store", None), getattr(dataset, "packed", None)):
        manifest = getattr(holder, "manifest", None)
        if not isinstance(manifest, dict):
            continue
        source = manifest.get("source")
        found = source.get("fingerprint") if isinstance(source, dict) else None
        if found:
            return str(found)
        path = getattr(holder, "path", None)
        if isinstance(path, Path):  # any other packed cache (IDX, CIFAR): its folder is its key
            return "cache-" + path.name
    return None


def _image_folder_fingerprint(dataset: Any) -> str | None:
    from datasets.folders import FolderScan, stat_files
    from datasets.packing import DEFAULT_OPTIONS, folder_fingerprint

    paths = [path for path, _ in dataset.samples]
    try:
        stats = stat_files(paths)
        root = Path(dataset.root).resolve()
    except OSError:
        return None
    scan = FolderScan(list(dataset.classes), paths, [label for _, label in dataset.samples],
                      [[str(path), str(why)] for path, why in dataset.skipped], stats=stats)
    return "images-" + folder_fingerprint(root, scan, DEFAULT_OPTIONS)


def _refuse_existing(store: Store, out: str | os.PathLike[str], fingerprint: str | None) -> None:
    """Refuse an OUT that holds a complete pack, saying whether it is of the source as it is."""
    try:
        raw = store.read_bytes(INDEX_FILE)
    except OSError as err:  # /dev/null/x: NotADirectoryError
        raise ShardError(f"cannot write a pack to {out} ({err.strerror or err}: "
                         f"{err.filename or out}); pass a folder that can be created") from err
    if raw is None:
        return
    try:
        written = json.loads(raw).get("source_fingerprint")
    except (ValueError, AttributeError):
        written = None
    where = f"{store.describe(INDEX_FILE)} exists: {out}"
    if fingerprint is None:
        raise ShardError(f"{where} already holds a sharded pack (whether of this source as it "
                         "is now cannot be told: it has no fingerprint); write to another OUT "
                         "or delete that one first")
    if not written:
        raise ShardError(f"{where} holds a sharded pack that records no source fingerprint "
                         "(an older dataferry wrote it), so whether it is of the source as it "
                         "is now cannot be told; delete it and write again, or write to "
                         "another OUT")
    if written != fingerprint:
        raise ShardError(
            f"{where} holds a pack of an earlier version of the source (its files changed "
            "since); that pack is stale: delete it and write again, or write to another OUT")
    raise ShardError(f"{where} already holds a sharded pack of this source; write to another "
                     "OUT or delete that one first")


def _staging_parent(store: Store, reader: ArraySource | ItemSource, start: int) -> str | None:
    """Create a local OUT, check its disk can take the samples left, and return it."""
    if isinstance(store, LocalStore):
        try:
            store.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ShardError(f"cannot create the pack folder {store.root} "
                             f"({err.strerror or err}); pass a folder that can be created") from err
        dtype = record_dtype(reader.schema)  # variable records: no lower bound to check
        left = reader.count - start
        check_free_space(store.root, 0 if dtype is None else left * dtype.itemsize,
                         what=f"writing {left:,} samples", error=ShardError,
                         fix="write to another OUT")
        return str(store.root)  # same file system: os.replace publishes a shard
    return None


def _resume_point(store: Store, settings: dict[str, Any]) -> list[dict[str, Any]]:
    raw = store.read_bytes(PROGRESS_FILE)
    if raw is None:
        return []
    state = json.loads(raw)
    recorded = {"write_shuffle_seed": None, "write_order_sha256": None,  # writes before seeds
                "source_fingerprint": None, **state.get("settings", {})}
    if (settings["source"] and recorded.get("source") == settings["source"]
            and recorded["source_fingerprint"] != settings["source_fingerprint"]):
        _restart(store, state, "as it was before its files changed" if
                 recorded["source_fingerprint"] else "recording no source fingerprint (an "
                 "older dataferry wrote it), so whether the source changed since is unknown")
        return []
    order_keys = ("write_shuffle_seed", "write_order_sha256")
    if any(recorded[k] != settings[k] for k in order_keys) and all(
            recorded.get(k) == v for k, v in settings.items() if k not in order_keys):
        seed = recorded["write_shuffle_seed"]
        again = "--keep-order (shuffle=False)" if seed is None else f"--seed {seed} (seed={seed})"
        raise ShardError(
            f"{store.describe(PROGRESS_FILE)} records an unfinished write in another sample order "
            f"(seed {seed}, or another numpy's permutation); resume it with {again} and the same "
            "numpy, or delete that folder/prefix to start over")
    if recorded != settings:
        raise ShardError(
            f"{store.describe(PROGRESS_FILE)} records an unfinished write of another source or "
            "shard size; write to another OUT, or delete that folder/prefix to start over"
        )
    if settings["source_fingerprint"] is None:  # a changed source would pass every check above
        _restart(store, state, "of a source without a fingerprint, so whether it changed since "
                 "is unknown (pass source_fingerprint= to make such a write resumable)")
        return []
    return list(state["shards"])


def _restart(store: Store, state: dict[str, Any], why: str) -> None:
    """Drop an unfinished write that cannot be continued safely: its shards and progress."""
    log.warning("%s records an unfinished write of %s %s; starting the write over "
                "(%d shards written then are replaced)",
                store.describe(PROGRESS_FILE), state["settings"].get("source") or "the source",
                why, len(state.get("shards", [])))
    for number, shard in enumerate(state.get("shards", [])):
        if shard.get("name") == shard_name(number):  # never a name the file made up
            store.delete(shard["name"])
    store.delete(PROGRESS_FILE)


def _write_all(reader: ArraySource | ItemSource, store: Store, staging: Path,
               done: list[dict[str, Any]], settings: dict[str, Any], *, start: int,
               workers: int, progress: bool) -> None:
    pending: deque[Future[dict[str, Any]]] = deque()
    bar = tqdm(total=reader.count, initial=start, unit="sample", desc="shards", file=sys.stderr,
               disable=not progress, leave=False)
    with bar, ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for number, chunk in enumerate(reader.chunks(start, settings["shard_size_bytes"]),
                                           len(done)):
                pending.append(pool.submit(_write_one, store, staging, number, chunk))
                while len(pending) > workers:
                    _record(store, done, settings, pending.popleft().result(), bar)
        finally:  # also on Ctrl-C or a bad sample: keep the shards already written
            while pending and pending[0].exception() is None:
                _record(store, done, settings, pending.popleft().result(), bar)


def _record(store: Store, done: list[dict[str, Any]], settings: dict[str, Any],
            entry: dict[str, Any], bar: tqdm) -> None:
    done.append(entry)
    store.write(PROGRESS_FILE, json.dumps({"settings": settings, "shards": done}).encode())
    bar.update(entry["count"])


def _write_one(store: Store, staging: Path, number: int, chunk: Chunk) -> dict[str, Any]:
    name = shard_name(number)
    path = staging / name
    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as handle:
        for part in chunk.parts:
            digest.update(part)
            handle.write(part)
            size += len(part)
        handle.flush()
        os.fsync(handle.fileno())
    store.write(name, path)
    path.unlink(missing_ok=True)
    stats = shard_pixel_sums(chunk.pixels) if chunk.pixels else None
    return {"name": name, "start": chunk.start, "count": chunk.count, "size_bytes": size,
            "sha256": digest.hexdigest(), "pixel_sums": stats}


def _index(reader: ArraySource | ItemSource, done: list[dict[str, Any]], extra: dict[str, Any],
           source: str) -> dict[str, Any]:
    stats = channel_stats([d["pixel_sums"] for d in done if d.get("pixel_sums")])
    shards = [{k: v for k, v in d.items() if k != "pixel_sums"} for d in done]
    return {"format": FORMAT, "version": VERSION, "count": reader.count, "schema": reader.schema,
            "shards": shards, "classes": reader.classes, "channel_stats": stats,
            "source": source, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **extra}


def verify_shards(url: str | os.PathLike[str], *, endpoint_url: str | None = None,
                  progress: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Check every shard of a pack against its index: size and sha256, then its header, every
    record and every label (:func:`datasets.shardcheck.check_shard_file`).

    Remote shards are fetched into a temporary folder and deleted after the check.

    Returns:
        The index and one line per bad shard (empty when every shard verifies).

    Raises:
        ShardError: no readable ``index.json`` at ``url``, or a malformed one (one line).
    """
    store = open_store(url, endpoint_url=endpoint_url)
    raw = store.read_bytes(INDEX_FILE)
    if raw is None:
        raise ShardError(f"no {INDEX_FILE} at {store.describe(INDEX_FILE)}; is it a sharded pack?")
    index = parse_index(raw, store.describe(INDEX_FILE))
    bad: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dataferry-verify-") as tmp:
        for shard in tqdm(index["shards"], unit="shard", desc="verify", file=sys.stderr,
                          disable=not progress, leave=False):
            target = Path(tmp) / shard["name"]
            expected = Expected(size_bytes=shard["size_bytes"], sha256=shard["sha256"])
            local = store.root / shard["name"] if isinstance(store, LocalStore) else target
            try:
                if isinstance(store, LocalStore):  # in place, no copy
                    check_file(local, expected, name=shard["name"])
                else:
                    store.fetch(shard["name"], target, expected)
                # the index may lie too: header, records and labels against it (issue 16 item 5)
                check_shard_file(local, shard, index["schema"], index.get("classes"))
            except (DownloadError, ChecksumMismatchError, FileNotFoundError, ShardError) as err:
                bad.append(f"{shard['name']!r} ({store.describe(shard['name'])}): {err}")
            target.unlink(missing_ok=True)
    return index, bad
