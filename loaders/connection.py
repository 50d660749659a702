"""One GET of one URL, and what its failure means for the next step.

A failure is one of three kinds, each an exception the transfer loop acts on:

* :class:`Transient`: worth retrying on the same URL after a backoff (connection refused or
  reset, a timeout, 429, 5xx).
* :class:`NextUrl`: this URL cannot give the file; try the next one at once (403/404/410, a
  bad certificate, an https→http redirect, a wrong size or hash, an HTML page).
* :class:`Unreachable` (a ``NextUrl``): the host name does not resolve or the network is
  unreachable. Retrying the same host on an air-gapped machine only adds minutes, so the next
  URL is tried at once; when every URL fails this way the final error says the machine looks
  offline and points to ``--mirror``/``--offline``.

Redirects are followed by hand so that an https URL redirecting to http is refused: a
downgrade would let anyone on the path swap the bytes. An ``http://`` URL listed explicitly
(the registry's original notMNIST mirror) is not a downgrade; its bytes are still checked
against the published size and hash before they are used.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator
from urllib.parse import urljoin, urlparse

import requests

from loaders.retry import RetryPolicy

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
_UNREACHABLE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENETUNREACH", "EHOSTUNREACH", "ENETDOWN") if hasattr(errno, name)
)


class NextUrl(Exception):
    """This URL cannot give the file: try the next one at once."""


class Unreachable(NextUrl):
    """The host does not resolve or the network is unreachable: no point retrying it now."""


class Transient(Exception):
    """A failure worth retrying on the same URL."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def open_url(
    session: requests.Session, url: str, headers: dict[str, str], policy: RetryPolicy
) -> requests.Response:
    """GET ``url`` streamed, following redirects by hand and refusing https→http.

    Raises:
        Transient: a connection error or timeout worth retrying.
        Unreachable: the host does not resolve, or no route to it.
        NextUrl: any other failure that this URL will not recover from.
    """
    for _ in range(MAX_REDIRECTS):
        try:
            response = session.get(
                url,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(policy.connect_timeout_s, policy.read_timeout_s),
            )
        except requests.exceptions.SSLError as err:  # a bad certificate will not heal by retrying
            raise NextUrl(f"TLS error: {err}") from err
        except (requests.ConnectionError, requests.Timeout) as err:
            raise classify(err, url, policy) from err
        except requests.RequestException as err:
            raise NextUrl(f"{type(err).__name__}: {err}") from err
        if not response.is_redirect:
            return response
        location = urljoin(url, response.headers["Location"])
        response.close()
        if urlparse(url).scheme == "https" and urlparse(location).scheme != "https":
            raise NextUrl(f"refused a redirect from https to {location} (no downgrade to http)")
        url = location
    raise NextUrl(f"more than {MAX_REDIRECTS} redirects")


def classify(err: BaseException, url: str, policy: RetryPolicy) -> Transient | Unreachable:
    """Return the failure a connection error or timeout stands for, with a short reason.

    Example:
        >>> policy = RetryPolicy()
        >>> err = requests.ConnectionError(socket.gaierror(-2, "Name or service not known"))
        >>> str(classify(err, "https://a.example/f", policy))
        'cannot resolve host a.example (Name or service not known)'
    """
    parsed = urlparse(url)
    host, where = parsed.hostname or url, parsed.netloc or url  # where: with the port, if any
    if isinstance(err, requests.exceptions.ProxyError):  # the failing host is the proxy's
        host = where = f"the proxy for {where} (check HTTPS_PROXY/HTTP_PROXY)"
    for cause in _causes(err):
        if isinstance(cause, socket.gaierror):
            return Unreachable(f"cannot resolve host {host} ({cause.strerror or cause})")
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS:
            return Unreachable(f"cannot reach host {host} ({cause.strerror})")
    if isinstance(err, requests.ConnectTimeout):
        return Transient(f"no connection to {where} within {policy.connect_timeout_s:g} s")
    if isinstance(err, requests.Timeout):
        return Transient(f"{where} sent nothing for {policy.read_timeout_s:g} s")
    for cause in _causes(err):
        if isinstance(cause, OSError) and cause.errno is not None and cause.strerror:
            return Transient(f"cannot connect to {where} ({cause.strerror})")
    return Transient(f"{type(err).__name__}: {err}")


def _causes(err: BaseException) -> Iterator[BaseException]:
    """Yield ``err`` and every exception behind it (``__cause__``, ``reason``, ``args``)."""
    pending: list[BaseException] = [err]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # urllib3 keeps the socket error in .reason/._reason; requests wraps it in args[0].
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  getattr(current, "_reason", None), *current.args]
        pending.extend(item for item in nested if isinstance(item, BaseException))
