"""The download CLI: exit codes, messages, --list, --verify, plain URLs."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import pytest
import responses

from loaders import dataset_dir, registry
from loaders.download import main
from loaders.registry import DatasetInfo, Resource

DATA = b"payload " * 500
URL = "https://data.example/tiny/file.bin"


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> DatasetInfo:
    info = DatasetInfo(
        name="tiny", description="a test entry", homepage="", license="",
        resources=(Resource("file.bin", urls=(URL,), size_bytes=len(DATA),
                            sha256=hashlib.sha256(DATA).hexdigest()),),
    )
    monkeypatch.setitem(registry.REGISTRY, "tiny", info)
    return info


@pytest.fixture
def close_stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], TextIO]]:
    """Return a function that puts ``sys.stdout`` on a pipe whose reader is gone (``| head``).

    Call it in the test body: capsys sets ``sys.stdout`` again when the test starts.
    """
    streams: list[TextIO] = []

    def install() -> TextIO:
        read_fd, write_fd = os.pipe()
        os.close(read_fd)
        streams.append(open(write_fd, "w", encoding="utf-8"))  # noqa: SIM115 - closed below
        monkeypatch.setattr(sys, "stdout", streams[-1])
        return streams[-1]

    yield install
    for stream in streams:
        with contextlib.suppress(OSError):  # without the fix, the buffer still holds the output
            stream.close()


@responses.activate
def test_cli_fetch_prints_where_the_data_is(tiny: DatasetInfo, capsys: pytest.CaptureFixture[str]) -> None:
    responses.add(responses.GET, URL, body=DATA)
    assert main(["tiny", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(dataset_dir("tiny"))


def test_cli_unknown_name_exits_2_with_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notmnst"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no dataset called 'notmnst'") and "did you mean 'notmnist'" in err


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["mnist", "--sha256", "00"]) == 2
    assert main(["mnist", "--count", "5"]) == 2
    for bad in (["--no-such-flag"], ["letters", "--count", "0"], ["letters", "--count", "x"]):
        with pytest.raises(SystemExit) as info:
            main(bad)
        assert info.value.code == 2
    assert "--count: should be a positive int, but got 'x'" in capsys.readouterr().err


def test_cli_offline_failure_exits_1_with_one_line(tiny: DatasetInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tiny", "--offline"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: offline mode is on and file.bin")


def test_cli_offline_bad_placed_file_is_kept_and_named(
    tiny: DatasetInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    target = dataset_dir("tiny") / "file.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"z" * len(DATA))
    assert main(["tiny", "--offline"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: the file at {target} does not match")
    assert target.exists()


@responses.activate
def test_cli_download_failure_exits_1(tiny: DatasetInfo, capsys: pytest.CaptureFixture[str]) -> None:
    responses.add(responses.GET, URL, status=404)
    assert main(["tiny", "-q"]) == 1
    assert "HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "warned"), [(["-q"], False), ([], True), (["-q", "-v"], False)])
@responses.activate
def test_cli_quiet_means_errors_only(
    tiny: DatasetInfo, caplog: pytest.LogCaptureFixture, flags: list[str], warned: bool
) -> None:
    responses.add(responses.GET, URL, status=503)
    responses.add(responses.GET, URL, body=DATA)
    assert main(["tiny", *flags]) == 0
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "retry 1/" in r.getMessage()]
    assert bool(retries) == warned
    assert logging.getLogger().level == logging.WARNING  # main() leaves the caller's level alone


@responses.activate
def test_cli_plain_url_with_sha256(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    responses.add(responses.GET, URL, body=DATA)
    code = main([URL, "--sha256", hashlib.sha256(DATA).hexdigest(), "--root", str(tmp_path), "-q"])
    assert code == 0
    assert Path(capsys.readouterr().out.strip()).read_bytes() == DATA


@responses.activate
def test_cli_list_shows_size_and_cached_state(tiny: DatasetInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(registry.names()) <= set(lines)
    assert "8.5 MB" in lines["notmnist"] and " - " in lines["tiny"]
    responses.add(responses.GET, URL, body=DATA)
    main(["tiny", "-q"])
    capsys.readouterr()
    main(["--list"])
    assert "cached" in [line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny")][0]


@responses.activate
def test_cli_verify_rehashes_the_cache(tiny: DatasetInfo, capsys: pytest.CaptureFixture[str]) -> None:
    responses.add(responses.GET, URL, body=DATA)
    main(["tiny", "-q"])
    capsys.readouterr()
    assert main(["--verify", "tiny"]) == 0
    assert capsys.readouterr().out.startswith("ok")
    (dataset_dir("tiny") / "file.bin").write_bytes(DATA[:-1] + b"!")
    assert main(["--verify", "tiny"]) == 1
    captured = capsys.readouterr()
    assert "BAD" in captured.out and "expected sha256" in captured.out
    assert captured.err.strip() == "error: 1 file(s) failed verification; fetch them again with: python -m loaders.download tiny --force"


def test_cli_list_into_a_closed_pipe_exits_141_quietly(
    capsys: pytest.CaptureFixture[str], close_stdout: Callable[[], TextIO]
) -> None:
    stdout = close_stdout()
    assert main(["--list"]) == 141
    assert capsys.readouterr().err == ""
    assert os.path.samefile(f"/proc/self/fd/{stdout.fileno()}", os.devnull)


@responses.activate
def test_cli_fetch_into_a_closed_pipe_exits_141_quietly(
    tiny: DatasetInfo, capsys: pytest.CaptureFixture[str], close_stdout: Callable[[], TextIO]
) -> None:
    responses.add(responses.GET, URL, body=DATA)
    close_stdout()
    assert main(["tiny", "-q"]) == 141
    assert capsys.readouterr().err == "" and (dataset_dir("tiny") / "file.bin").is_file()


def test_cli_verify_nothing_cached(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verify"]) == 0
    assert "nothing cached" in capsys.readouterr().out


def test_cli_real_mnist_test_split_from_a_local_mirror(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = shared_data / "mnist-t10k"
    assert main(["mnist", "--split", "test", "--mirror", str(mirror), "--offline", "-q"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder == dataset_dir("mnist")
    assert (folder / "t10k-images-idx3-ubyte.gz").stat().st_size == 1_648_877
    assert main(["--verify", "mnist"]) == 0  # the re-gzipped images are accepted (warning)
    out = capsys.readouterr().out
    assert out.count("ok ") == 2 and out.count("absent ") == 2


def test_cli_unwritable_root_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["letters", "--count", "5", "--root", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_cli_verify_finds_letters_variants_and_names_the_command_to_refetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "a home"
    assert main(["letters", "--count", "20", "--seed", "3", "--root", str(root), "-q"]) == 0
    archive = root / "letters-20-s3" / "letters.tar.gz"
    capsys.readouterr()
    assert main(["--verify", "--root", str(root)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"ok       {archive}"]
    data = bytearray(archive.read_bytes())
    data[100] ^= 0xFF  # one flipped byte in the cached file
    archive.write_bytes(bytes(data))
    assert main(["--verify", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"BAD      {archive}: letters.tar.gz: expected sha256 ")
    refetch = f"python -m loaders.download letters --count=20 --seed=3 --force '--root={root}'"
    assert captured.err.strip() == f"error: 1 file(s) failed verification; fetch them again with: {refetch}"
    assert main(["letters", "--count=20", "--seed=3", "--force", f"--root={root}", "-q"]) == 0
    assert main(["--verify", "letters", "--count", "20", "--seed", "3", "--root", str(root)]) == 0


@responses.activate
def test_cli_unknown_second_name_is_refused_before_any_download(
    tiny: DatasetInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tiny", "notmnst", "-q"]) == 2
    assert "did you mean 'notmnist'" in capsys.readouterr().err
    assert len(responses.calls) == 0


@responses.activate
def test_cli_one_failing_name_does_not_stop_the_others(
    tiny: DatasetInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "https://other.example/table.csv"
    responses.add(responses.GET, URL, status=404)
    responses.add(responses.GET, other, body=b"a,b\n1,2\n")
    assert main(["tiny", other, "--root", str(tmp_path), "-q"]) == 1
    captured = capsys.readouterr()
    assert [Path(line).read_bytes() for line in captured.out.splitlines()] == [b"a,b\n1,2\n"]
    errors = captured.err.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: could not download file.bin") and "HTTP 404" in errors[0]


def test_cli_list_with_names_lists_only_those(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list", "notmnist", "mnist"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["notmnist", "mnist"]
    assert main(["--list", "notmnst"]) == 2
    assert "did you mean 'notmnist'" in capsys.readouterr().err


def test_cli_list_shows_cached_letters_variants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["letters", "--count", "30", "--seed", "2", "-q"]) == 0
    (dataset_dir("letters", count=40) / "unrelated").mkdir(parents=True)  # a folder, no file
    capsys.readouterr()
    assert main(["--list", "letters", "mnist"]) == 0
    lines = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    assert lines == [["letters", "?", "-"], ["letters-30-s2", "?", "cached"],
                     ["letters-40-s0", "?", "-"], ["mnist", "11.6", "MB"]]


def test_cli_verify_refuses_a_url_as_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verify", URL]) == 2
    err = capsys.readouterr().err
    assert f"error: --list and --verify take registry names, but got {URL!r}" in err


@pytest.mark.parametrize("flag", ["--sha256", "--md5"])
@pytest.mark.parametrize("value", ["abc", "g" * 64, "0" * 63, "0" * 65, "0" * 32 + " x"])
@responses.activate
def test_cli_malformed_hash_is_a_usage_error_and_keeps_the_cached_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    """Issue 9.2: a mistyped hash is refused before anything is fetched or deleted."""
    responses.add(responses.GET, URL, body=DATA)
    sha = hashlib.sha256(DATA).hexdigest()
    assert main([URL, "--sha256", sha, "--root", str(tmp_path), "-q"]) == 0
    cached = Path(capsys.readouterr().out.strip())
    assert main([URL, flag, value, "--root", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"error: {flag} should be" in err and "hexadecimal digits, but got" in err
    assert cached.read_bytes() == DATA and len(responses.calls) == 1


@responses.activate
def test_cli_wrong_but_well_formed_hash_keeps_the_verified_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 9.2: the verified copy stays until a verified replacement is in hand."""
    responses.add(responses.GET, URL, body=DATA)
    sha = hashlib.sha256(DATA).hexdigest()
    assert main([URL, "--sha256", sha, "--root", str(tmp_path), "-q"]) == 0
    cached = Path(capsys.readouterr().out.strip())
    responses.replace(responses.GET, URL, status=404)  # the server is gone
    assert main([URL, "--sha256", "f" + sha[1:], "--root", str(tmp_path), "-q"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert cached.read_bytes() == DATA


@pytest.mark.parametrize("name", ["dataferry-manifest.json", ".dataferry-manifest.json",
                                  "x.bin.lock", "x.bin.part", ".x.bin.part.json"])
def test_cli_url_named_like_our_bookkeeping_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Issue 9.5: no self-deadlock on the manifest's own lock, no overwritten manifest."""
    assert main([f"https://data.example/{name}", "--root", str(tmp_path), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"the file name {name!r} is reserved" in err[0]
