"""The HTTP session and the boto3 client of a store belong to one process, never a forked one.

A forked DataLoader worker that kept using its parent's ``requests.Session`` shared the parent's
keep-alive sockets with its sibling: two processes writing requests on one socket read each
other's responses (the 2-rank streaming test saw shard 3's bytes arrive as shard 14).
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any

import pytest

from datasets.storage import HttpStore, S3Store


def _report(store: Any, attribute: str, inherited: Any, queue: Any) -> None:
    made = getattr(store, attribute)
    queue.put((made is inherited, made is getattr(store, attribute)))


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
@pytest.mark.parametrize(("store", "attribute"), [
    (HttpStore("http://127.0.0.1:9/pack"), "session"),
    (S3Store("bucket", "pack", endpoint_url="http://127.0.0.1:9"), "client"),
])
def test_a_forked_process_makes_its_own_connection(store: Any, attribute: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if attribute == "client":
        pytest.importorskip("boto3", reason="boto3 is an optional extra (dataferry[s3])")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    inherited = getattr(store, attribute)
    assert getattr(store, attribute) is inherited  # one per process: made once here
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_report, args=(store, attribute, inherited, queue))
    child.start()
    shares, stable = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert not shares and stable  # its own, and kept for the rest of that process
