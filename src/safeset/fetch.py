"""Downloading images politely: timeouts, retries with backoff, a size cap and opt-out headers.

Every URL ends as exactly one ``Fetched``: its bytes, or the reason there are none (``http 404``,
``timeout: ...``, ``too large: ...``, ``skipped: opt-out (X-Robots-Tag noai)``,
``skipped: opt-out (tdm-reservation: 1)``...). Bytes only
ever live in memory; nothing here touches the disk.

``http.client`` rather than ``urllib.request``: it lets redirects, the size cap and the headers
be handled before any body is read, and needs no dependency.
"""

from __future__ import annotations

import http.client
import ipaddress
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, urljoin, urlsplit

from safeset import __version__

USER_AGENT = f"safeset/{__version__} (+dataset audit)"
# The token a site may address in ``X-Robots-Tag: safeset: noai``.
USER_AGENT_TOKEN = "safeset"
# img2dataset's convention for "do not use this image to train AI".
OPT_OUT_DIRECTIVES = ("noai", "noimageai")
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_RETRY_WAIT = 60.0
CHUNK = 1 << 16
# Reserved characters stay as they are; anything else unsafe in a request line is escaped.
_SAFE_IN_TARGET = "/?:@!$&'()*+,;=%~[]"


@dataclass(frozen=True)
class FetchOptions:
    # Seconds for a whole attempt: connecting, redirects, headers and body. A deadline, not a
    # per-read limit: a server dribbling a byte every half second never trips the latter.
    timeout: float = 10.0
    retries: int = 2  # extra attempts after a transient failure
    max_bytes: int = 20 * 1024 * 1024
    threads: int = 16  # concurrent downloads per worker
    backoff: float = 1.0  # first retry wait in seconds, doubled at each retry


@dataclass(frozen=True)
class Fetched:
    data: bytes | None = None
    error: str | None = None


@dataclass(frozen=True)
class _Attempt:
    fetched: Fetched
    transient: bool = False
    retry_after: float | None = None


class _Refused(Exception):
    """Ends one attempt with a reason (the body is then never read)."""


def fetch(url: str | None, options: FetchOptions) -> Fetched:
    """Download one image, retrying transient failures (connection errors, 429, 5xx)."""
    url = (url or "").strip()
    if not url:
        return Fetched(error="no url")
    for attempt in range(options.retries + 1):
        outcome = _attempt(url, options)
        if not outcome.transient or attempt == options.retries:
            return outcome.fetched
        time.sleep(_wait(attempt, options.backoff, outcome.retry_after))
    raise AssertionError("unreachable")  # pragma: no cover


def _wait(attempt: int, backoff: float, retry_after: float | None) -> float:
    # Jitter spreads the retries of many workers hitting one struggling host.
    wait = backoff * 2**attempt * random.uniform(0.5, 1.0)
    return min(MAX_RETRY_WAIT, max(wait, retry_after or 0.0))


def _attempt(url: str, options: FetchOptions) -> _Attempt:
    deadline = time.monotonic() + options.timeout
    _DEADLINE.at = deadline
    try:
        return _attempt_until(url, options, deadline)
    finally:
        _DEADLINE.at = None


def _attempt_until(url: str, options: FetchOptions, deadline: float) -> _Attempt:
    origin = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            conn = _connection(url, options.timeout, redirected_from=origin)
        except ValueError as exc:
            return _Attempt(Fetched(error=f"invalid url: {exc}"))
        except _Refused as exc:
            return _Attempt(Fetched(error=str(exc)))
        except socket.gaierror:
            return _Attempt(Fetched(error="connection error: host name not found"))
        try:
            conn.request("GET", _target(url), headers=_headers())
            response = conn.getresponse()
            location = response.getheader("Location")
            if response.status in REDIRECT_STATUSES and location:
                url = urljoin(url, location)
                continue
            return _answer(response, options.max_bytes, deadline)
        except _Refused as exc:
            return _Attempt(Fetched(error=str(exc)))
        except TimeoutError:
            # Not retried: a host too slow once is usually slow again, and each retry would add
            # a whole timeout to the worst case of every URL.
            return _Attempt(Fetched(error=f"timeout: no answer within {options.timeout:g}s"))
        except ssl.SSLError as exc:
            return _Attempt(Fetched(error=f"tls error: {exc.reason or exc}"))
        except (http.client.InvalidURL, ValueError) as exc:
            return _Attempt(Fetched(error=f"invalid url: {exc}"))
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            return _Attempt(Fetched(error=f"connection error: {reason}"), transient=True)
        finally:
            conn.close()
    return _Attempt(Fetched(error=f"too many redirects (over {MAX_REDIRECTS})"))


def _origin(url: str) -> tuple[str, int | None] | None:
    """The host and port a table's own URL names (None if it names none)."""
    try:
        parts = urlsplit(url)
        return (parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme))
    except ValueError:
        return None


def _connection(
    url: str, timeout: float, *, redirected_from: tuple[str, int | None] | None
) -> http.client.HTTPConnection:
    """A connection to ``url``'s host, pinned to the address that was checked.

    Where ``url`` is not the table's own (a redirect led here), an address that is not public
    (loopback, private, link-local...) is refused unless host and port are the table URL's own:
    a dataset must not make safeset reach services inside the network it runs in (invariant 7).
    The connection goes to the very address checked, so a second DNS answer cannot differ.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) url: scheme {parts.scheme or 'missing'}")
    host = parts.hostname.encode("idna").decode("ascii")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if redirected_from != (parts.hostname, port):
        inner = next((a for *_, a in addresses if not _is_public(a[0])), None)
        if inner is not None:
            raise _Refused(f"redirect to a non-public address refused: {host} ({inner[0]})")
    family, kind, proto, _, pinned = addresses[0]
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    # http.client resolves self.host itself when connecting; connect to the checked address,
    # through a socket that keeps the attempt's deadline.
    conn._create_connection = lambda *_: _connect(family, kind, proto, pinned, timeout)  # type: ignore[attr-defined]
    return conn


# The deadline of the attempt running in this thread (each download runs in one thread).
_DEADLINE = threading.local()


def _bounded(sock: socket.socket, per_read: float) -> None:
    """Give the next socket operation no more time than is left before the deadline."""
    at = getattr(_DEADLINE, "at", None)
    if at is None:
        return
    left = at - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    sock.settimeout(min(per_read, left))


class _DeadlineSocket(socket.socket):
    """A socket whose every read and write ends by the attempt's deadline."""

    per_read = 10.0

    def recv_into(self, *args, **kwargs):  # type: ignore[override]
        _bounded(self, self.per_read)
        return super().recv_into(*args, **kwargs)

    def recv(self, *args, **kwargs):  # type: ignore[override]
        _bounded(self, self.per_read)
        return super().recv(*args, **kwargs)

    def sendall(self, *args, **kwargs):  # type: ignore[override]
        _bounded(self, self.per_read)
        return super().sendall(*args, **kwargs)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """The same for TLS, whose reads go through the SSL object rather than the socket."""

    def recv_into(self, *args, **kwargs):  # type: ignore[override]
        _bounded(self, self.gettimeout() or 10.0)
        return super().recv_into(*args, **kwargs)

    def read(self, *args, **kwargs):  # type: ignore[override]
        _bounded(self, self.gettimeout() or 10.0)
        return super().read(*args, **kwargs)


_TLS: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        context = ssl.create_default_context()
        context.sslsocket_class = _DeadlineSSLSocket
        _TLS = context
    return _TLS


def _connect(family: int, kind: int, proto: int, address, timeout: float) -> socket.socket:
    sock = _DeadlineSocket(family, kind, proto)
    sock.per_read = timeout
    try:
        _bounded(sock, timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _target(url: str) -> str:
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return quote(target, safe=_SAFE_IN_TARGET)


def _headers() -> dict[str, str]:
    return {"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.8", "Connection": "close"}


def _answer(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> _Attempt:
    status = response.status
    if status != 200:
        transient = status == 429 or status >= 500
        return _Attempt(Fetched(error=f"http {status}"), transient, _retry_after(response))
    directive = opt_out(response.headers.get_all("X-Robots-Tag") or [])
    if directive:
        return _Attempt(Fetched(error=f"skipped: opt-out (X-Robots-Tag {directive})"))
    if tdm_reserved(response.headers.get_all("tdm-reservation") or []):
        return _Attempt(Fetched(error="skipped: opt-out (tdm-reservation: 1)"))
    return _Attempt(Fetched(data=_read_capped(response, max_bytes, deadline)))


def opt_out(values: Iterable[str]) -> str | None:
    """The opt-out directive among X-Robots-Tag values meant for everyone or for safeset.

    A value is ``directives`` or ``token: directives`` (directives comma-separated); a value
    addressed to another crawler's token does not apply.
    """
    for value in values:
        token, _, directives = value.rpartition(":")
        if token and token.strip().lower() != USER_AGENT_TOKEN:
            continue
        for directive in directives.split(","):
            if directive.strip().lower() in OPT_OUT_DIRECTIVES:
                return directive.strip().lower()
    return None


def tdm_reserved(values: Iterable[str]) -> bool:
    """W3C TDMRep: ``tdm-reservation: 1`` reserves text-and-data-mining rights (``0`` does
    not); the header is read case-insensitively, any value but 1 reserves nothing."""
    return any(value.strip() == "1" for value in values)


def _retry_after(response: http.client.HTTPResponse) -> int | None:
    return _header_int(response, "Retry-After")


def _header_int(response: http.client.HTTPResponse, name: str) -> int | None:
    """A header's non-negative integer value; None if absent or anything else ("²" included,
    which str.isdigit accepts)."""
    value = (response.getheader(name) or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _read_capped(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    """The body, refused as soon as it is known to exceed ``max_bytes`` (never read whole)."""
    length = _header_int(response, "Content-Length")
    if length is not None and length > max_bytes:
        raise _Refused(f"too large: {length} bytes announced, limit {max_bytes}")
    body = bytearray()
    while chunk := response.read1(CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise _Refused(f"too large: over the limit of {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise TimeoutError
    return bytes(body)


T = TypeVar("T")
R = TypeVar("R")


def map_ordered(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``map(fn, items)`` on ``threads`` threads, in order, with a bounded lookahead.

    At most ``2 * threads`` results wait in memory, so a shard's images are never all held at
    once however large it is.
    """
    source = iter(items)
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="safeset-fetch") as pool:
        window: deque[Future[R]] = deque()
        try:
            for item in source:
                window.append(pool.submit(fn, item))
                if len(window) >= 2 * threads:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:
                future.cancel()
