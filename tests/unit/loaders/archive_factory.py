"""Build tar and zip archives, honest or malicious, inside a test's tmp_path."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TAR_MODES: dict[str, Literal["w", "w:gz", "w:bz2", "w:xz"]] = {
    "tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz",
}

# A small honest tree: (name, bytes), folders implied.
HONEST_FILES = {
    "data/A/0.png": b"\x89PNG fake zero",
    "data/A/1.png": b"\x89PNG fake one" * 20,
    "data/B/2.png": bytes(range(256)) * 4,
    "data/readme.txt": b"hello\n",
    "top.txt": b"at the top",
}


@dataclass(frozen=True)
class Member:
    """One archive member; ``kind`` is file, dir, symlink, hardlink, chardev or fifo."""

    name: str
    data: bytes = b""
    kind: str = "file"
    target: str = ""


def write_tar(path: Path, members: list[Member], kind: str = "tar.gz") -> Path:
    """Write ``members`` as they are (no sanitising at all) into a tar of ``kind``."""
    with tarfile.open(path, TAR_MODES[kind], format=tarfile.GNU_FORMAT) as tf:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.mode = 0o644
            if member.kind == "file":
                info.size = len(member.data)
                tf.addfile(info, io.BytesIO(member.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                "chardev": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE,
            }[member.kind]
            info.linkname = member.target
            if member.kind == "chardev":
                info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
            tf.addfile(info)
    return path


def write_zip(path: Path, members: list[Member]) -> Path:
    """Write ``members`` into a zip; symlinks get the unix mode zip tools use for them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            info = zipfile.ZipInfo(member.name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if member.kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, member.target)
            elif member.kind == "fifo":
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
                zf.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                zf.writestr(info, member.data)
    return path


def honest_members() -> list[Member]:
    return [Member(name, data) for name, data in HONEST_FILES.items()]


def write_honest(folder: Path, kind: str) -> Path:
    """Write the honest tree as an archive of ``kind`` (a tar kind, zip) in ``folder``."""
    path = folder / f"honest.{kind}"
    if kind == "zip":
        return write_zip(path, honest_members())
    return write_tar(path, honest_members(), kind)


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its bytes (files), link target or '<dir>'."""
    result: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                result[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                result[rel] = "<dir>"
            else:
                result[rel] = path.read_bytes()
    return result


def patch_zip(path: Path, *, flag_bits: int | None = None, method: int | None = None) -> Path:
    """Set the general-purpose flag bits or compression method of every member in place.

    Both copies are patched, as a real tool writes them: the local header (``PK\\x03\\x04``,
    flags at +6, method at +8) and the central directory entry (``PK\\x01\\x02``, +8 and +10).
    """
    data = bytearray(path.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            if flag_bits is not None:
                old = int.from_bytes(data[start + flags_at:start + flags_at + 2], "little")
                data[start + flags_at:start + flags_at + 2] = (old | flag_bits).to_bytes(2, "little")
            if method is not None:
                data[start + flags_at + 2:start + flags_at + 4] = method.to_bytes(2, "little")
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))
    return path
