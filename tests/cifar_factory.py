"""Fake CIFAR python archives built in ``tmp_path``, with the real files and pickle layout.

``make_cifar_archive(folder, "cifar10")`` writes ``cifar-10-python.tar.gz`` holding
``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta, readme.html}`` (CIFAR-100:
``cifar-100-python/{train, test, meta}``): protocol-2 pickles of dicts whose ``data`` is a
``uint8`` ``[N, 3072]`` array (red, green, blue planes, each row-major 32x32), as published.
It returns the pixels ``[N, 32, 32, 3]`` and labels it wrote, per split, to check against.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


@dataclass
class FakeCifar:
    """What was written: the archive, and per split the pixels and labels."""

    path: Path
    images: dict[str, np.ndarray] = field(default_factory=dict)  # [N, 32, 32, 3]
    labels: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)


def _rows(images: np.ndarray) -> np.ndarray:
    """``[N, 32, 32, 3]`` -> the published ``[N, 3072]`` rows (R plane, G plane, B plane)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), 3072)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_cifar_archive(folder: Path, variant: str = "cifar10", *, per_batch: int = 6,
                       test_count: int = 8, seed: int = 0, learnable: bool = False) -> FakeCifar:
    """Write a fake CIFAR-10 (5 train batches of ``per_batch``) or CIFAR-100 archive.

    ``learnable``: the first label key decides each image's colour (a model can learn it).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    if variant == "cifar10":
        top, archive = "cifar-10-batches-py", "cifar-10-python.tar.gz"
        keys = {"labels": CIFAR10_NAMES}
        meta_name, meta = "batches.meta", {"label_names": CIFAR10_NAMES, "num_vis": 3072}
        members = {**{f"data_batch_{i}": ("train", per_batch) for i in range(1, 6)},
                   "test_batch": ("test", test_count)}
    else:
        top, archive = "cifar-100-python", "cifar-100-python.tar.gz"
        fine = [f"fine{i:02d}" for i in range(100)]
        coarse = [f"coarse{i:02d}" for i in range(20)]
        keys = {"fine_labels": fine, "coarse_labels": coarse}
        meta_name, meta = "meta", {"fine_label_names": fine, "coarse_label_names": coarse}
        members = {"train": ("train", 5 * per_batch), "test": ("test", test_count)}
    fake = FakeCifar(folder / archive, names={k: list(v) for k, v in keys.items()})
    payloads: dict[str, bytes] = {}
    for member, (split, count) in members.items():  # published order: what readers return
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        labels = {k: rng.integers(0, len(v), count).astype(np.int64) for k, v in keys.items()}
        if learnable:  # class c: a bright blob whose colour is the c-th of a fixed palette
            palette = np.random.default_rng(99).integers(0, 256, (len(next(iter(keys.values()))), 3))
            first = labels[next(iter(keys))]
            images[:, 8:24, 8:24, :] = palette[first][:, None, None, :]
        batch = {"batch_label": f"{member} of 5", "data": _rows(images),
                 "filenames": [f"img_{i}.png" for i in range(count)],
                 **{k: v.tolist() for k, v in labels.items()}}
        payloads[member] = pickle.dumps(batch, protocol=2)
        previous = fake.images.get(split)
        fake.images[split] = images if previous is None else np.concatenate([previous, images])
        for k, v in labels.items():
            old = fake.labels.setdefault(split, {}).get(k)
            fake.labels[split][k] = v if old is None else np.concatenate([old, v])
    with tarfile.open(fake.path, "w:gz") as tar:
        _add(tar, f"{top}/readme.html", b"<html>fake</html>")
        # the real archive lists its batches out of order: readers must not rely on it
        for member in sorted(payloads, key=lambda m: (m.endswith("3"), m), reverse=True):
            _add(tar, f"{top}/{member}", payloads[member])
        _add(tar, f"{top}/{meta_name}", pickle.dumps(meta, protocol=2))
    return fake
