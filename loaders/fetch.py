"""``fetch()``: from a registry name or URL to verified (and extracted) files in the cache.

For each resource of a dataset: when the manifest says the cached file is the verified one
(same size, mtime and hash) and its extraction is complete, use it as it is, without a lock
or any write, so a read-only cache (a shared team cache, a read-only mount) serves. Otherwise,
under that resource's cross-process lock: reuse the cached file when it still verifies, else
download it (or generate it, for ``letters``), verify it, record it in the manifest (pinning
its sha256 on first use when nothing is published), and extract it into the dataset folder
when it is an archive to extract. A cached file that no longer verifies stays where it is
until a verified replacement takes its place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from loaders import manifest
from loaders.cache import cache_root
from loaders.errors import ChecksumMismatchError, OfflineError
from loaders.lock import DEFAULT_TIMEOUT_S, locked
from loaders.registry import DatasetInfo, Resource, get
from loaders.retry import RetryPolicy, retry_argument
from loaders.transfer import download
from loaders.verify import Expected, check_file, check_hex

log = logging.getLogger(__name__)

MIRROR_ENV = "DATAFERRY_MIRROR"
OFFLINE_ENV = "DATAFERRY_OFFLINE"
LETTERS_COUNT = 20_000
LETTERS_SEED = 0
_TRUE = ("1", "true", "yes", "on")


def dataset_dir(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    count: int | None = None,
    seed: int | None = None,
) -> Path:
    """Return the folder where a dataset lives, without touching the disk.

    Args:
        name: a registry name.
        root: the cache home (default: see :func:`loaders.cache_root`).
        count: ``letters`` only: how many images (default 20,000).
        seed: ``letters`` only: the generator seed (default 0).

    Returns:
        ``cache_root(root)/name``; for ``letters`` with a non-default count or seed,
        ``cache_root(root)/letters-<count>-s<seed>``.

    Raises:
        UnknownDatasetError: ``name`` is not in the registry.
        ValueError: ``count``/``seed`` given for a dataset that is not generated.

    Example:
        >>> dataset_dir("letters", "/tmp/h", count=200).name
        'letters-200-s0'
    """
    info = get(name)
    if info.generator is None:
        if count is not None or seed is not None:
            raise ValueError(
                f"count and seed only apply to generated datasets, but got count={count!r}, "
                f"seed={seed!r} for {name!r}"
            )
        return cache_root(root) / name
    count = LETTERS_COUNT if count is None else count
    seed = LETTERS_SEED if seed is None else seed
    if not isinstance(count, int) or count <= 0:
        raise ValueError(f"count should be a positive int, but got count={count!r}")
    if (count, seed) == (LETTERS_COUNT, LETTERS_SEED):
        return cache_root(root) / name
    return cache_root(root) / f"{name}-{count}-s{seed}"


def fetch(
    name_or_url: str,
    root: str | os.PathLike[str] | None = None,
    *,
    mirror: str | None = None,
    offline: bool | None = None,
    force: bool = False,
    extract: bool = True,
    split: str | None = None,
    progress: bool = False,
    sha256: str | None = None,
    md5: str | None = None,
    count: int | None = None,
    seed: int | None = None,
    lock_timeout_s: float = DEFAULT_TIMEOUT_S,
    retry: RetryPolicy | None = None,
    policy: RetryPolicy | None = None,
) -> Path:
    """Fetch a dataset (or one file by URL) into the cache, verified; return where it is.

    Args:
        name_or_url: a registry name (``"notmnist"``) or an http(s)/file URL.
        root: the cache home (default ``$DATAFERRY_HOME``, else the XDG cache folder).
        mirror: a base URL or local folder replacing every URL's base
            (default ``$DATAFERRY_MIRROR``).
        offline: never touch the network (default ``$DATAFERRY_OFFLINE``).
        force: download (or generate) again even when the cache is good.
        extract: unpack archives into the dataset folder.
        split: ``"train"`` or ``"test"``: only that split's files (plus split-less ones).
        progress: show tqdm bars on stderr.
        sha256: a URL's expected sha256.
        md5: a URL's expected md5 (when that is all that is published).
        count: ``letters`` only: how many images.
        seed: ``letters`` only: the generator seed.
        lock_timeout_s: how long to wait for another process fetching the same file.
        retry: timeouts and retries (:class:`loaders.RetryPolicy`).
        policy: the old name of ``retry`` (deprecated).

    Returns:
        For a name, the dataset folder (``fetch("notmnist") / "notMNIST_small" / "A"``);
        for a URL, the downloaded file.

    Raises:
        UnknownDatasetError: no such registry name (the message suggests the nearest ones).
        DownloadError: every URL of a file failed; the message lists each and why.
        ChecksumMismatchError: a cached or generated file does not verify (offline, a cached
            file that does not verify is left in place and the message says what to do).
        OfflineError: offline and a file is missing; the message says what to place where.
        ArchiveError: an archive is corrupt or unsafe.
        LockTimeoutError: another process held a file's lock too long.
        StorageError: the cache cannot be written (full or read-only) and something must be.
        ValueError: a malformed ``sha256``/``md5``, or a URL whose file name is one of
            dataferry's bookkeeping names (``.dataferry-manifest.json``, ``*.lock``, ``*.part``).
    """
    sha256, md5 = check_hex(sha256, "sha256"), check_hex(md5, "md5")
    options = _Options(
        mirror=mirror if mirror is not None else (os.environ.get(MIRROR_ENV, "").strip() or None),
        offline=_env_offline() if offline is None else offline,
        force=force,
        progress=progress,
        lock_timeout_s=lock_timeout_s,
        policy=retry_argument(retry, policy, "fetch"),
    )
    if "://" in name_or_url:
        return _fetch_url(name_or_url, root, options, sha256=sha256, md5=md5)
    if sha256 is not None or md5 is not None:
        raise ValueError("sha256/md5 apply to plain URLs only; registry entries carry their own")
    info = get(name_or_url)
    if split not in (None, "train", "test"):
        raise ValueError(f"split should be 'train', 'test' or None, but got split={split!r}")
    folder = dataset_dir(info.name, root, count=count, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    for resource in info.resources:
        if split is not None and resource.split not in (None, split):
            continue
        if not force and _ready(resource, folder, extract=extract):
            continue  # verified and complete: reading needs no lock and no write
        with locked(folder / resource.filename, timeout_s=lock_timeout_s,
                    what=f"fetching {resource.filename}"):
            if info.generator is not None:
                digest = _ensure_generated(info, resource, folder, options, count=count, seed=seed)
            else:
                digest = _ensure_file(resource, folder, options)
            if extract and resource.extract and resource.archive:
                _extract(folder / resource.filename, folder, digest, progress=progress)
    log.info("%s is in %s", info.name, folder)
    return folder


def _ready(resource: Resource, folder: Path, *, extract: bool) -> bool:
    """Whether a resource is cached as verified (manifest) and extracted when it should be."""
    record = manifest.file_record(folder, resource.filename)
    if record is None or not manifest.is_unchanged(
        folder, resource.filename, expected_of(resource, folder).sha256
    ):
        return False
    if extract and resource.extract and resource.archive:
        from loaders.extract import is_extracted

        return is_extracted(folder / resource.filename, folder, archive_sha256=record["sha256"])
    return True


class _Options:
    def __init__(
        self,
        *,
        mirror: str | None,
        offline: bool,
        force: bool,
        progress: bool,
        lock_timeout_s: float,
        policy: RetryPolicy | None,
        allow_html: bool = False,
    ) -> None:
        self.allow_html = allow_html
        self.mirror = mirror
        self.offline = offline
        self.force = force
        self.progress = progress
        self.lock_timeout_s = lock_timeout_s
        self.policy = policy


def expected_of(resource: Resource, folder: Path, *, use_pin: bool = True) -> Expected:
    """Return what a resource's file must be: published hashes, else its TOFU pin."""
    published = bool(resource.sha256 or resource.md5)
    pinned = manifest.pinned_sha256(folder, resource.filename) if use_pin and not published else None
    return Expected(
        size_bytes=resource.size_bytes,
        sha256=resource.sha256 or pinned,
        md5=resource.md5,
        content_sha256=resource.content_sha256,
    )


def resource_urls(resource: Resource, mirror: str | None) -> tuple[str, ...]:
    """Return the URLs to try: the registry's, or the file under ``mirror`` when one is set."""
    if not mirror:
        return resource.urls
    if "://" in mirror:
        return (mirror.rstrip("/") + "/" + resource.filename,)
    return (str(Path(mirror).expanduser() / resource.filename),)


def _ensure_file(resource: Resource, folder: Path, options: _Options) -> str:
    """Make ``folder/resource.filename`` a verified file; return its sha256."""
    target = folder / resource.filename
    expected = expected_of(resource, folder)
    no_fetch = options.offline and not _is_local_mirror(options.mirror)
    if target.exists() and not options.force:
        try:
            cached = _cached_sha256(target, folder, expected, keep_bad=no_fetch)
        except ChecksumMismatchError as err:  # only with keep_bad: nothing would replace it
            raise ChecksumMismatchError(_kept_bad_message(resource, target, expected, err)) from err
        if cached:
            return cached
    if no_fetch:
        raise OfflineError(_offline_message(resource, target, expected))
    urls = resource_urls(resource, options.mirror)
    if options.force:  # a new download may replace the pin; the old file stays until it lands
        expected = expected_of(resource, folder, use_pin=False)
    log.info("downloading %s to %s", resource.filename, target)
    digest = download(urls, target, expected=expected, retry=options.policy,
                      progress=options.progress, allow_html=options.allow_html)
    pin = not (resource.sha256 or resource.md5)
    if not expected.has_hash:
        log.info("pinned %s sha256 %s (trust on first use)", resource.filename, digest)
    _record(folder, resource.filename, sha256=digest, pinned=pin, source=urls[0] if urls else None)
    return digest


def _cached_sha256(
    target: Path, folder: Path, expected: Expected, *, keep_bad: bool = False
) -> str | None:
    """Return the sha256 of a cached file that (still) verifies, else ``None`` (file removed).

    With ``keep_bad`` (no fetch will replace the file, e.g. offline), a file that does not
    verify is left in place and the :class:`ChecksumMismatchError` propagates instead.
    """
    record = manifest.file_record(folder, target.name)
    want = expected.sha256
    if record and manifest.is_unchanged(folder, target.name, want):
        return str(record["sha256"])
    try:
        digest = check_file(target, expected)
    except ChecksumMismatchError as err:
        if keep_bad:
            raise
        # Kept until a verified replacement is renamed over it: the server may be gone.
        log.warning("%s; fetching a new copy (the cached one stays until it is replaced)", err)
        return None
    pinned = bool(record and record.get("pinned"))
    _record(folder, target.name, sha256=digest, pinned=pinned or not expected.has_hash)
    return digest


def _record(folder: Path, filename: str, *, sha256: str, pinned: bool, source: str | None = None) -> None:
    """Record a verified file; a read-only cache is still read, with a warning."""
    try:
        manifest.record_file(folder, filename, sha256=sha256, pinned=pinned, source=source)
    except OSError as err:  # StorageError included: the lock or manifest cannot be written
        log.warning("could not record %s as verified in %s (%s); it will be hashed again next time",
                    filename, folder, err)


def _ensure_generated(
    info: DatasetInfo,
    resource: Resource,
    folder: Path,
    options: _Options,
    *,
    count: int | None,
    seed: int | None,
) -> str:
    """Generate a resource locally (``letters``) unless a verified copy is cached."""
    target = folder / resource.filename
    if target.exists() and not options.force:
        pinned = manifest.pinned_sha256(folder, resource.filename)
        if pinned:
            cached = _cached_sha256(target, folder, Expected(sha256=pinned))
            if cached:
                return cached
    from loaders import letters  # A generator module, imported only when needed.

    count = LETTERS_COUNT if count is None else count
    seed = LETTERS_SEED if seed is None else seed
    staging = folder / f".{resource.filename}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        log.info("generating %s (%s, count=%d, seed=%d)", target, info.generator, count, seed)
        made = letters.generate(staging / resource.filename, count=count, seed=seed,
                                progress=options.progress)
        os.replace(made, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    digest = check_file(target, Expected())
    _record(folder, resource.filename, sha256=digest, pinned=True,
            source=f"generator:{info.generator}")
    return digest


def _extract(archive: Path, folder: Path, digest: str, *, progress: bool) -> None:
    from loaders.extract import extract  # A2's module; imported when an archive needs it.

    extract(archive, folder, archive_sha256=digest, progress=progress)


def _fetch_url(
    url: str,
    root: str | os.PathLike[str] | None,
    options: _Options,
    *,
    sha256: str | None,
    md5: str | None,
) -> Path:
    """Download one file by URL into ``cache_root(root)/urls/<hash of URL>/<file name>``."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https", "file"):
        raise ValueError(f"url should be http(s):// or file://, but got {url!r}")
    filename = manifest.check_filename(Path(unquote(parsed.path)).name or "download")
    folder = cache_root(root) / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    resource = Resource(filename, urls=(url,), sha256=sha256, md5=md5)
    if not options.force and _ready(resource, folder, extract=False):
        return folder / filename  # verified as recorded: no lock, no write
    # A URL that names a web page may be one; registry data never is.
    options.allow_html = filename.lower().endswith((".html", ".htm"))
    with locked(folder / filename, timeout_s=options.lock_timeout_s, what=f"fetching {filename}"):
        _ensure_file(resource, folder, options)
    return folder / filename


def _offline_message(resource: Resource, target: Path, expected: Expected) -> str:
    where = f" (from {resource.urls[0]})" if resource.urls else ""
    return (
        f"offline mode is on and {resource.filename} is not in the cache: place the file"
        f"{where} at {target} ({expected.describe()}), or turn offline mode off "
        f"(unset {OFFLINE_ENV}, drop offline=True / --offline), or point mirror= / --mirror at a "
        "folder holding it"
    )


def _kept_bad_message(
    resource: Resource, target: Path, expected: Expected, err: ChecksumMismatchError
) -> str:
    """Say that a cached file offline mode cannot replace is wrong, and what to do with it."""
    detail = str(err).removeprefix(f"{target.name}: ")
    where = f" from {resource.urls[0]}" if resource.urls else ""
    return (
        f"the file at {target} does not match: {detail} (its size is "
        f"{target.stat().st_size:,} bytes); offline mode is on, so it was left there for you to "
        f"inspect: replace it with a good copy{where} ({expected.describe()}), or turn offline "
        f"mode off (unset {OFFLINE_ENV} / drop --offline) to fetch it again"
    )


def _is_local_mirror(mirror: str | None) -> bool:
    if not mirror:
        return False
    return "://" not in mirror or mirror.startswith("file://")


def _env_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE
