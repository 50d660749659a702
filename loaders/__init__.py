"""dataferry loaders: verified, resumable, safe fetching of datasets into a local cache."""

from loaders.cache import cache_root
from loaders.errors import (
    ArchiveError,
    ChecksumMismatchError,
    DownloadError,
    LoaderError,
    LockTimeoutError,
    OfflineError,
    StorageError,
    UnknownDatasetError,
    UnsafeArchiveError,
)
from loaders.fetch import dataset_dir, fetch
from loaders.registry import DatasetInfo, Resource
from loaders.retry import RetryPolicy
from loaders.sniff import sniff_archive
from loaders.verify import hash_file

__all__ = [
    "ArchiveError",
    "ChecksumMismatchError",
    "DatasetInfo",
    "DownloadError",
    "LoaderError",
    "LockTimeoutError",
    "OfflineError",
    "Resource",
    "RetryPolicy",
    "StorageError",
    "UnknownDatasetError",
    "UnsafeArchiveError",
    "cache_root",
    "dataset_dir",
    "fetch",
    "hash_file",
    "sniff_archive",
]
