"""The one rule for names that come from outside (issue 16, "Beyond the list")."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from loaders import UnsafeNameError, check_name, fetch
from loaders.manifest import check_filename
from loaders.names import inside, is_plain


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "/abs", "\\abs", "C:",
                                  "C:x.pth", "C:\\x", "x\x00y", 7, None])
def test_plain_names_refuse_paths_drives_and_nul(name: object) -> None:
    with pytest.raises(UnsafeNameError) as err:
        check_name(name)
    assert repr(name) in str(err.value) and "\n" not in str(err.value)
    assert " a int" not in str(err.value)


@pytest.mark.parametrize("name", ["shard-00000.bin", "a.b", "x..", "é.png", "a b", "part-0.bin",
                                  "Console.txt", "x" * 255, "é" * 127])
def test_plain_names_pass_unchanged(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", [".evict", ".pins", ".shard-00000.bin.lock", "..x", "x\ny",
                                  "x\ry", "\u202egnp.exe", "a\u200bb", "CON", "nul.txt", "com1.bin",
                                  "x" * 256, "é" * 128])
def test_plain_names_refuse_bookkeeping_unprintable_devices_and_overlong(name: str) -> None:
    # a shard named .evict made the reader wait an hour on its own eviction lock (review P0 1)
    with pytest.raises(UnsafeNameError, match="rule:") as err:
        check_name(name)
    assert "\n" not in str(err.value) and "\u202e" not in str(err.value)
    assert not is_plain(name, nested=False)


@pytest.mark.parametrize(("name", "clean"), [("./a//b/", "a/b"), ("a\\b", "a/b"), (".", ""),
                                             ("a:b", "a:b"), ("d/10:30.txt", "d/10:30.txt")])
def test_nested_names_are_cleaned(name: str, clean: str) -> None:
    assert check_name(name, nested=True) == clean


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a\\..\\x", "/x", "C:/x", "C:\\x", "a\x00"])
def test_nested_names_refuse_escapes(name: str) -> None:
    with pytest.raises(UnsafeNameError):
        check_name(name, nested=True)


def test_inside_refuses_a_symlink_out(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link").symlink_to(tmp_path)
    assert inside(tmp_path / "in", "x") == tmp_path / "in" / "x"
    with pytest.raises(UnsafeNameError, match="outside"):
        inside(tmp_path / "in", "link")


@pytest.mark.parametrize("name", ["..", ".", "x\x00"])
def test_downloaded_file_names_follow_the_rule(name: str) -> None:
    with pytest.raises(UnsafeNameError, match="pass a URL that ends in a file name"):
        check_filename(name)


@responses.activate
def test_a_url_ending_in_dot_dot_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(UnsafeNameError, match=r"'\.\.'"):
        fetch("https://files.example/data/%2e%2e", tmp_path)
    assert len(responses.calls) == 0 and not any(p.is_file() for p in tmp_path.rglob("*"))
