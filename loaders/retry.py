"""How long to wait and how often to retry: timeouts, backoff with jitter, ``Retry-After``."""

from __future__ import annotations

import email.utils
import logging
import random
import time
import warnings
from dataclasses import dataclass

from loaders.verify import CHUNK_BYTES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts and retries for one URL.

    Attributes:
        attempts: tries per URL for transient failures (connection refused or reset, timeout,
            429, 5xx). A host name that does not resolve or an unreachable network is not
            retried: the next URL is tried at once (see :mod:`loaders.connection`).
        backoff_s: the first backoff; doubled each retry, with up to 50% random jitter added.
        backoff_max_s: the cap of any wait, ``Retry-After`` included.
        connect_timeout_s: how long to wait for the connection.
        read_timeout_s: how long to wait for the next bytes.
        chunk_bytes: the largest read, and the size of the batches written and hashed.
        stall_bytes: the stall rule: fewer bytes than this over ``stall_window_s`` while a
            body streams ends the attempt (retried with ``Range``, like a dropped
            connection). A server that sends nothing at all hits ``read_timeout_s`` instead.
        stall_window_s: the stall rule's window (default: under 1 KiB in 30 s is a stall).
    """

    attempts: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    chunk_bytes: int = CHUNK_BYTES
    stall_bytes: int = 1024
    stall_window_s: float = 30.0

    def backoff(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Return the wait before retry number ``attempt + 1``."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.backoff_max_s)
        delay = self.backoff_s * 2**attempt
        return min(delay * (1.0 + random.random() / 2), self.backoff_max_s)


def retry_after_s(value: str | None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delay or HTTP date), or ``None``.

    Example:
        >>> retry_after_s("7")
        7.0
    """
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def retry_argument(retry: RetryPolicy | None, policy: RetryPolicy | None, where: str
                   ) -> RetryPolicy | None:
    """Return the policy given as ``retry=`` (every API's word), or as the old ``policy=``.

    Raises:
        TypeError: both are given.

    Example:
        >>> retry_argument(None, None, "fetch") is None
        True
    """
    if policy is None:
        return retry
    if retry is not None:
        raise TypeError(f"{where}() got retry= and policy=; pass only retry= (policy= is its "
                        "old name)")
    warnings.warn(f"{where}(policy=...) is deprecated: the keyword is retry= wherever a "
                  "RetryPolicy is taken", DeprecationWarning, stacklevel=3)
    return policy
