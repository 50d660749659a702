"""Writers and readers of the four streaming systems compared by ``bench_stream.py``.

Each system writes the same records (``letters``: uint8 28x28 arrays and labels; ``photos``:
JPEG bytes and labels) with its own tool, and reads them back as ``(image, label)`` samples:
letters as uint8 arrays, photos decoded by each system's own path to uint8 ``[C, H, W]``:
Pillow for the peers (what their docs use), ours by ``StreamingDataset(decode=True)``
(``datasets.imagedecode.decode_image``, Pillow; uint8 kept, no ``ToFloat``);
``BENCH_SAME_DECODER=1`` decodes in the transform. Peers are
imported only here, only when asked for (``pip install 'dataferry[bench]'``).
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SHARD_BYTES = 64_000_000


class Source:
    """The benchmark's records, memory-mapped from the work folder (picklable, fork-free)."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind = folder, kind
        self.labels = np.load(folder / f"{kind}_labels.npy")
        if kind == "letters":
            self.images = np.load(folder / "letters_images.npy", mmap_mode="r")
        else:
            self.offsets = np.load(folder / "photos_offsets.npy")
            self.blob = np.load(folder / "photos_blob.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        if self.kind == "letters":
            return np.array(self.images[i]), int(self.labels[i])
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes(), int(self.labels[i])

    @property
    def data(self) -> np.ndarray | None:  # ours reads letters as whole arrays
        return self.images if self.kind == "letters" else None

    @property
    def targets(self) -> np.ndarray | None:
        return self.labels if self.kind == "letters" else None


def decode(value: Any) -> np.ndarray:
    """Letters arrive as arrays; JPEG bytes are decoded with Pillow to uint8 ``[C, H, W]``.

    Channel-first because ours returns that (what torch models take): a peer returning
    ``[H, W, C]`` skipped the transpose ours paid. One raw band per channel, the conversion
    ours does (``datasets.imagedecode``), so the systems differ only in their own work.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        with Image.open(io.BytesIO(value)) as image:
            rgb = image if image.mode == "RGB" else image.convert("RGB")  # no copy when RGB
            return np.stack([np.frombuffer(rgb.tobytes("raw", band), dtype=np.uint8)
                             .reshape(rgb.height, rgb.width) for band in "RGB"])
    return np.asarray(value)


# ----------------------------------------------------------------------------- writers

def write_ours(source: Source, out: Path) -> None:
    from datasets import write_shards

    dataset: Any = source if source.kind == "letters" else _Pairs(source)
    write_shards(dataset, out, shard_size_bytes=SHARD_BYTES, workers=2)


class _Pairs:
    """Photos as ``(bytes, label)`` items (no ``.data``), for the item-by-item writer path."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return self.source[i]


@functools.lru_cache(maxsize=2)
def _source(folder: str, kind: str) -> Source:
    return Source(Path(folder), kind)


def _lit_item(args: tuple[str, str, int]) -> dict[str, Any]:
    # one Source per worker process: opening it per item re-read every label (and photo
    # offset) array, N reads of N values, which made LitData's conversion quadratic
    folder, kind, i = args
    image, label = _source(folder, kind)[i]
    return {"image": image, "label": label}


def write_litdata(source: Source, out: Path) -> None:
    import litdata

    inputs = [(str(source.folder), source.kind, i) for i in range(len(source))]
    litdata.optimize(fn=_lit_item, inputs=inputs, output_dir=str(out), chunk_bytes="64MB",
                     num_workers=2, mode="overwrite")


def write_mosaic(source: Source, out: Path) -> None:
    from streaming import MDSWriter

    image = "ndarray:uint8:28,28" if source.kind == "letters" else "bytes"
    with MDSWriter(out=str(out), columns={"image": image, "label": "int"},
                   size_limit=SHARD_BYTES, compression=None) as writer:
        for i in range(len(source)):
            x, y = source[i]
            writer.write({"image": x, "label": y})


def write_webdataset(source: Source, out: Path) -> None:
    import webdataset as wds

    out.mkdir(parents=True, exist_ok=True)
    ext = "u8" if source.kind == "letters" else "jpg"
    with wds.ShardWriter(str(out / "shard-%06d.tar"), maxsize=SHARD_BYTES, verbose=0) as sink:
        for i in range(len(source)):
            x, y = source[i]
            data = x.tobytes() if source.kind == "letters" else x
            sink.write({"__key__": f"{i:08d}", ext: data, "cls": str(y).encode()})


WRITERS = {"ours": write_ours, "litdata": write_litdata, "mosaic": write_mosaic,
           "webdataset": write_webdataset}


# ----------------------------------------------------------------------------- readers

def read_ours(url: str, cache: Path, kind: str) -> Any:
    from datasets import StreamingDataset, StreamingSampler

    if os.environ.get("BENCH_SAME_DECODER") == "1":
        ds = StreamingDataset(url, cache_dir=cache, decode=False, transform=decode)
    else:
        ds = StreamingDataset(url, cache_dir=cache, transform=_as_stored)  # uint8, as the peers
    return ds, StreamingSampler(ds)


def _as_stored(x: Any) -> Any:
    return x


def read_litdata(url: str, cache: Path, kind: str) -> Any:
    import litdata
    from litdata.streaming import downloader

    # LitData 0.2.76 builds its obstore client without allow_http, so an http:// S3 endpoint
    # (moto here) fails with "BadScheme"; let its fast path reach the loopback endpoint.
    downloader._OBSTORE_CLIENT_OPTIONS = {**downloader._OBSTORE_CLIENT_OPTIONS, "allow_http": "true"}
    options = {"endpoint_url": os.environ["BENCH_S3_ENDPOINT"]} if url.startswith("s3://") else {}
    # batch_decode=-1: deserialize a chunk once. On an object URL (no in-place mmap) LitData
    # 0.2.76 reads the WHOLE chunk file again for every window of rows it decodes ("auto": 256
    # rows for letters, 1 for JPEG bytes), so a shuffled epoch re-read each 43 MB chunk
    # hundreds of times: 1,200 letters/s at 100,000 letters
    ds = litdata.StreamingDataset(url, cache_dir=str(cache), shuffle=True, seed=0,
                                  storage_options=options, transform=_lit_transform,
                                  batch_decode=-1)
    return ds, None


def _lit_transform(sample: dict[str, Any]) -> tuple[np.ndarray, int]:
    return decode(sample["image"]), int(sample["label"])


def read_mosaic(url: str, cache: Path, kind: str) -> Any:
    from streaming import StreamingDataset

    class Decoded(StreamingDataset):  # type: ignore[misc]
        def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
            sample = super().__getitem__(i)
            return decode(sample["image"]), int(sample["label"])

    ds = Decoded(remote=url, local=str(cache), shuffle=True, shuffle_seed=0, batch_size=256,
                 cache_limit=None)
    return ds, None


def read_webdataset(url: str, cache: Path, kind: str) -> Any:
    import webdataset as wds

    names = sorted(Path(os.environ["BENCH_WDS_SHARDS"]).glob("shard-*.tar"))
    urls = [f"{url}/{p.name}" for p in names]
    ext = "u8" if kind == "letters" else "jpg"
    cache.mkdir(parents=True, exist_ok=True)
    ds = (wds.WebDataset(urls, shardshuffle=len(urls), cache_dir=str(cache), seed=0,
                         empty_check=False)
          .shuffle(1000).to_tuple(ext, "cls").map(_wds_sample))
    return ds, None


def _wds_sample(pair: tuple[bytes, bytes]) -> tuple[np.ndarray, int]:
    data, label = pair
    if data[:3] == b"\xff\xd8\xff":
        return decode(data), int(label)
    return np.frombuffer(data, dtype=np.uint8).reshape(28, 28), int(label)


READERS = {"ours": read_ours, "litdata": read_litdata, "mosaic": read_mosaic,
           "webdataset": read_webdataset}


def count_batch(batch: list[Any]) -> int:
    return len(batch)


def iterate(loader: Any) -> Iterator[int]:
    yield from loader
