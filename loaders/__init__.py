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
    UnsafeNameError,
)
from loaders.fetch import dataset_dir, fetch
from loaders.names import check_name
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
    "UnsafeNameError",
    "cache_root",
    "check_name",
    "dataset_dir",
    "fetch",
    "hash_file",
    "sniff_archive",
]
