"""Where a sharded pack lives: a local folder (path or ``file://``), ``http(s)://`` or ``s3://``.

A :class:`Store` reads small objects (``index.json``), fetches a shard to a verified local file
and, for folders and S3, writes objects. HTTP and local fetches go through
:func:`loaders.transfer.download` (resumable, retried, sha256 and size checked, atomic rename);
S3 uses boto3 (an optional extra, ``pip install 'dataferry[s3]'``) with the same verification.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote, urlparse

import requests

from datasets.errors import ShardError
from loaders.errors import ChecksumMismatchError, DownloadError
from loaders.retry import RetryPolicy
from loaders.transfer import download
from loaders.verify import Expected, check_file

T = TypeVar("T")

log = logging.getLogger(__name__)

TIMEOUT_S = (10.0, 60.0)


def open_store(url: str | os.PathLike[str], *, endpoint_url: str | None = None,
               retry: RetryPolicy | None = None) -> Store:
    """Return the store for a folder, ``file://``, ``http(s)://`` or ``s3://bucket/prefix`` URL.

    ``retry`` sets the timeouts, retries and stall rule of HTTP(S) fetches (S3 uses boto3's).

    Example:
        >>> open_store("s3://bucket/packs/letters").describe("index.json")
        's3://bucket/packs/letters/index.json'
    """
    text = os.fspath(url)
    scheme = urlparse(text).scheme
    if scheme in ("http", "https"):
        return HttpStore(text.rstrip("/"), retry=retry)
    if scheme == "s3":
        parsed = urlparse(text)
        return S3Store(parsed.netloc, parsed.path.strip("/"), endpoint_url=endpoint_url)
    if scheme == "file":
        return LocalStore(Path(unquote(urlparse(text).path)))
    if scheme and len(scheme) > 1:
        raise ValueError(f"url should be a folder, file://, http(s):// or s3:// URL, but got {text!r}")
    return LocalStore(Path(text))


class Store:
    """Objects under one prefix; subclasses implement the four operations."""

    def describe(self, name: str) -> str:
        """The URL of ``name`` for messages."""
        raise NotImplementedError

    def read_bytes(self, name: str) -> bytes | None:
        """Return an object's bytes, or ``None`` when it does not exist."""
        raise NotImplementedError

    def fetch(self, name: str, target: Path, expected: Expected, *, progress: bool = False) -> None:
        """Put a verified copy of ``name`` at ``target`` (atomically), or raise DownloadError."""
        raise NotImplementedError

    def write(self, name: str, source: Path | bytes) -> None:
        """Store a local file or bytes as ``name`` (atomically where the store allows)."""
        raise ShardError(f"cannot write to {self.describe(name)}: HTTP is read-only; write "
                         "to a folder or s3:// and serve that folder over HTTP")

    def delete(self, name: str) -> None:
        """Remove ``name`` if present."""


class LocalStore(Store):
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, name: str) -> str:
        return str(self.root / name)

    def read_bytes(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def fetch(self, name: str, target: Path, expected: Expected, *, progress: bool = False) -> None:
        download([str(self.root / name)], target, expected=expected, progress=progress)

    def write(self, name: str, source: Path | bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / name
        if isinstance(source, Path):  # written and fsynced by the caller in a folder of root
            os.replace(source, final)
            return
        # open() rather than mkstemp: the file gets the umask's mode (0644), like the shards,
        # so a static server running as another user can serve index.json too
        tmp = self.root / f".{name}.{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(source)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class _PerProcess(Generic[T]):
    """A value made on first use in each process (``make()``), never inherited through fork.

    A forked ``DataLoader`` worker that used its parent's HTTP session would share its
    keep-alive sockets: two processes writing requests on one socket read each other's
    responses (shard 3's bytes arrived as shard 14). boto3 clients are not fork-safe either.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self.make = make
        self.value: T | None = None
        self.pid = 0

    def get(self) -> T:
        if self.value is None or self.pid != os.getpid():
            self.value, self.pid = self.make(), os.getpid()
        return self.value


class HttpStore(Store):
    def __init__(self, base: str, *, retry: RetryPolicy | None = None) -> None:
        self.base, self.retry = base, retry
        self._session = _PerProcess(requests.Session)

    @property
    def session(self) -> requests.Session:
        """This process's HTTP session (a forked worker makes its own)."""
        return self._session.get()

    def describe(self, name: str) -> str:
        return f"{self.base}/{quote(name, safe='')}"  # a shard x#y.bin is not x's fragment

    def read_bytes(self, name: str) -> bytes | None:
        url = self.describe(name)
        try:
            timeout = (TIMEOUT_S if self.retry is None
                       else (self.retry.connect_timeout_s, self.retry.read_timeout_s))
            response = self.session.get(url, timeout=timeout)
        except requests.RequestException as err:
            raise ShardError(f"cannot read {url}: {err}; check the URL and the network") from err
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ShardError(f"cannot read {url}: HTTP {response.status_code} {response.reason}")
        return response.content

    def fetch(self, name: str, target: Path, expected: Expected, *, progress: bool = False) -> None:
        download([self.describe(name)], target, expected=expected, progress=progress,
                 session=self.session, retry=self.retry)

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers get a fresh session
        return {"base": self.base, "retry": self.retry}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["base"], retry=state["retry"])  # type: ignore[misc]


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None = None) -> None:
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix, endpoint_url
        self._client: _PerProcess[Any] = _PerProcess(self._new_client)

    def describe(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @property
    def client(self) -> Any:
        """This process's boto3 client (a forked worker makes its own)."""
        return self._client.get()

    def _new_client(self) -> Any:
        try:
            import boto3
        except ImportError as err:
            raise ShardError("s3:// URLs need boto3: pip install 'dataferry[s3]' "
                             "(or pip install boto3)") from err
        return boto3.client("s3", endpoint_url=self.endpoint_url)

    def read_bytes(self, name: str) -> bytes | None:
        client = self.client
        try:
            return bytes(client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read())
        except _boto_errors() as err:
            if _s3_code(err) in ("NoSuchKey", "404"):
                return None
            raise ShardError(f"cannot read {self.describe(name)}: {err}") from err

    def fetch(self, name: str, target: Path, expected: Expected, *, progress: bool = False) -> None:
        part = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        client = self.client
        errors: tuple[type[BaseException], ...] = (*_boto_errors(), ChecksumMismatchError)
        try:
            client.download_file(self.bucket, self._key(name), str(part))
            check_file(part, expected, name=name)
        except errors as err:
            part.unlink(missing_ok=True)
            raise DownloadError(f"could not fetch {self.describe(name)}: {err}") from err
        os.replace(part, target)

    def write(self, name: str, source: Path | bytes) -> None:
        client = self.client
        try:
            if isinstance(source, Path):
                client.upload_file(str(source), self.bucket, self._key(name))
            else:
                client.put_object(Bucket=self.bucket, Key=self._key(name), Body=source)
        except _boto_errors() as err:
            raise ShardError(f"cannot upload {self.describe(name)}: {err}; check the bucket, "
                             "credentials and endpoint_url") from err

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def __getstate__(self) -> dict[str, Any]:  # boto3 clients do not pickle
        return {"bucket": self.bucket, "prefix": self.prefix, "endpoint_url": self.endpoint_url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["bucket"], state["prefix"], endpoint_url=state["endpoint_url"])  # type: ignore[misc]


def _boto_errors() -> tuple[type[Exception], ...]:
    """botocore's error bases (boto3 is imported by then) and S3Transfer's own."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, Boto3Error)


def _s3_code(err: Exception) -> str:
    response = getattr(err, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
