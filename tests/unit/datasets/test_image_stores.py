"""Packing straight from tar and zip archives (issue 9 item 7) and the variable-size store."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datasets import DataFormatError, DataLoader, ImageFolderDataset, VariableImageFolder
from datasets.archivemembers import iter_members


def jpeg(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


MEMBERS = {f"top/{c}/{i}.jpg": jpeg(20 + 7 * i, 30 - 3 * i, seed=10 * k + i)
           for k, c in enumerate(("bees", "ants")) for i in range(4)}


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_zip_tar_and_folder_pack_alike(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    for name, data in MEMBERS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    from_folder = ImageFolderDataset.pack(folder / "top", cache_dir=tmp_path / "c")
    from_zip = ImageFolderDataset.from_archive(write_zip(tmp_path / "a.zip", MEMBERS),
                                               cache_dir=tmp_path / "c")
    from_tar = ImageFolderDataset.from_archive(
        write_tar(tmp_path / "a.tar.gz", sorted(MEMBERS.items(), reverse=True)),
        cache_dir=tmp_path / "c")
    for ds in (from_zip, from_tar):
        assert isinstance(ds, VariableImageFolder) and ds.classes == ["ants", "bees"]
        assert ds.targets.tolist() == from_folder.targets.tolist() == [0] * 4 + [1] * 4
        assert [p.rsplit("/", 2)[-2:] for p, _ in ds.samples] == [
            p.rsplit("/", 2)[-2:] for p, _ in from_folder.samples]
        assert all(torch.equal(ds[i][0], from_folder[i][0]) for i in range(8))
        assert ds.mean == from_folder.mean


def test_duplicate_member_names_are_refused_as_extraction_refuses_them(tmp_path: Path) -> None:
    members = [("t/A/x.png", _png(10)), ("t/A/y.png", _png(20)), ("t/A/x.png", _png(30))]
    for archive in (write_tar(tmp_path / "d.tar.gz", members),
                    write_zip(tmp_path / "d.zip", {})):
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive, "w") as z, pytest.warns(UserWarning, match="Duplicate"):
                for name, data in members:
                    z.writestr(name, data)
        with pytest.raises(DataFormatError, match=r"'t/A/x.png' appears twice"):
            ImageFolderDataset.from_archive(archive, cache_dir=tmp_path / "c")


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 4), value).save(buffer, "PNG")
    return buffer.getvalue()


def test_member_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "big.tar.gz", [("t/A/ok.png", _png(5)),
                                                  ("t/A/huge.png", bytes(3000))])
    members = dict(iter_members(archive, max_bytes=1000))
    assert isinstance(members["t/A/ok.png"], bytes)
    assert members["t/A/huge.png"] == ("!member of 3,000 bytes exceeds the per-image limit of "
                                       "1,000 bytes (datasets.imagedecode.MAX_IMAGE_BYTES); "
                                       "refused unread")
    zipped = dict(iter_members(write_zip(tmp_path / "big.zip", {"t/A/huge.png": bytes(3000)}),
                               max_bytes=1000))
    assert str(zipped["t/A/huge.png"]).startswith("!member of 3,000 bytes exceeds")


PEAK_SCRIPT = r"""
import resource, sys
from datasets import ImageFolderDataset
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ds = ImageFolderDataset.from_archive(sys.argv[1], cache_dir=sys.argv[2], workers=0)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(len(ds), ds.skipped[0][1][:40], grew // 1024)
"""


def test_huge_member_in_a_small_tar_gz_stays_small_in_memory(tmp_path: Path) -> None:
    """Issue 9 item 7: a 300 MiB member (over the 256 MiB cap) in a tar.gz of about 1 MB."""
    archive = tmp_path / "bomb.tar.gz"
    size = 300 * 1024**2
    with gzip.open(archive, "wb", compresslevel=1) as raw, \
            tarfile.open(fileobj=raw, mode="w|") as tar:
        tar.addfile(_info("t/A/ok.png", len(_png(1))), io.BytesIO(_png(1)))
        tar.addfile(_info("t/A/huge.png", size), _Zeros(size))
    assert archive.stat().st_size < 2_000_000
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(archive), str(tmp_path / "c")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "1" and out[1] == "member"
    assert int(out[-1]) < 100  # MiB the peak grew by while packing: the member never held


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n

    def readable(self) -> bool:
        return True


def test_tiny_tar_declaring_a_terabyte_member_is_a_clear_error(tmp_path: Path) -> None:
    info = tarfile.TarInfo("t/A/x.png")
    info.size = 2**40
    archive = tmp_path / "liar.tar.gz"
    archive.write_bytes(gzip.compress(info.tobuf(tarfile.PAX_FORMAT)))
    assert archive.stat().st_size < 1000
    with pytest.raises(DataFormatError, match="liar.tar.gz"):
        ImageFolderDataset.from_archive(archive, cache_dir=tmp_path / "c")


def test_variable_store_serves_dataloader_workers(tmp_path: Path) -> None:
    from torchvision.transforms import v2

    archive = write_zip(tmp_path / "a.zip", MEMBERS)
    # a PIL image per sample, as torchvision gives: a v2 pipeline wanting tensors says ToImage
    transform = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(16, antialias=True),
                            v2.ToDtype(torch.float32, scale=True)])
    ds = VariableImageFolder.from_archive(archive, transform, cache_dir=tmp_path / "c")
    assert len(ds) == 8 and ds.mode == "RGB"
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 16, 16)] * 2
    assert torch.cat([y for _, y in batches]).tolist() == [0] * 4 + [1] * 4


def test_max_side_reencodes_large_images_once(tmp_path: Path) -> None:
    root = tmp_path / "t" / "A"
    root.mkdir(parents=True)
    (root / "big.jpg").write_bytes(jpeg(300, 200, seed=1))
    (root / "small.jpg").write_bytes(jpeg(40, 30, seed=2))
    ds = ImageFolderDataset.pack(tmp_path / "t", max_side=100, cache_dir=tmp_path / "c")
    assert isinstance(ds, VariableImageFolder)
    assert ds.sizes.tolist() == [[67, 100], [30, 40]]
    assert ds.store.blob(1) == (root / "small.jpg").read_bytes()  # small ones kept as they are


def test_max_side_keeps_the_notes_of_what_re_encoding_converted(tmp_path: Path) -> None:
    # Re-encoded bytes are plain 8-bit: the notes must come from the original file.
    root = tmp_path / "t" / "A"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).convert("P")
              for _ in range(3)]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).convert("CMYK").save(
        root / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65536, (80, 90), dtype=np.uint16)).save(root / "deep.png")
    ds = ImageFolderDataset.pack(tmp_path / "t", max_side=40, cache_dir=tmp_path / "c")
    notes = {path.rsplit("/", 1)[-1]: note for path, note in ds.notes}
    assert "first frame of 3" in notes["anim.gif"]
    assert "CMYK" in notes["cmyk.jpg"] and "16-bit" in notes["deep.png"]
    assert int(ds.sizes.max()) == 40


@pytest.mark.parametrize(("decode_size", "shape"), [(None, (3, 384, 512)), (200, (3, 384, 512)),
                                                    (150, (3, 192, 256)), (64, (3, 96, 128)),
                                                    (40, (3, 48, 64))])
def test_decode_size_decodes_jpegs_at_the_smallest_scale_keeping_that_side(
        tmp_path: Path, decode_size: int | None, shape: tuple[int, int, int]) -> None:
    root = tmp_path / "t" / "A"
    root.mkdir(parents=True)
    (root / "big.jpg").write_bytes(jpeg(512, 384, seed=1))
    (root / "odd.jpg").write_bytes(jpeg(300, 200, seed=2))  # another size: the variable store
    from torchvision.transforms import v2

    ds = ImageFolderDataset.pack(tmp_path / "t", v2.PILToTensor(), cache_dir=tmp_path / "c",
                                 decode_size=decode_size)  # the stored uint8 pixels
    assert isinstance(ds, VariableImageFolder)
    image, _ = ds[0]
    assert tuple(image.shape) == shape  # 1/2, 1/4, 1/8 while the shorter side stays >= it
