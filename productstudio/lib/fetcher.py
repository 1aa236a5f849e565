"""The one safe way to fetch a URL that came from a user.

Product image URLs, webhook targets and Segmind output URLs: anything a user (or a
third party) can point us at goes through :func:`fetch_url` (GET) or :func:`post_url`
(webhooks), so that the server cannot be used to reach its own network (SSRF), be held
open forever or be made to buffer an unbounded body. :func:`check_url` applies the same
rules to a URL without connecting, for a URL that is stored now and used later.

How a fetch works:

* Only ``http`` and ``https`` URLs without a user name or password are accepted.
* The host is resolved once (``socket.getaddrinfo``; legacy numeric spellings such as
  ``2130706433`` or ``0x7f.1`` are decoded here the way ``inet_aton`` would) and every
  resolved address must be globally routable, unless the host or address is listed in
  ``allow_private_hosts``.
* The request is then sent to the checked address itself, with the original ``Host``
  header and TLS server name, so a second DNS answer (DNS rebinding) cannot change
  where we connect. The connection layer refuses any address that was not checked.
* Redirects are followed by hand, re-checking every hop (a POST never follows one).
* One deadline covers DNS, connects, TLS, and every read and write of every hop.
* The body is streamed and abandoned as soon as it exceeds ``max_bytes``.

Every failure is a :class:`FetchError` whose ``code`` is stable (for logs, tests and
the API) and whose ``message`` can be shown to a shop owner as is.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from productstudio.lib.errors import CodedError

__all__ = [
    "USER_AGENT",
    "FetchError",
    "FetchResult",
    "PostResult",
    "check_url",
    "check_url_from_settings",
    "fetch_url",
    "fetch_url_from_settings",
    "is_public_address",
    "post_url",
    "resolve_host",
]

USER_AGENT = "ProductStudio/0.1 (+fetcher)"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
_T = TypeVar("_T")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL_LENGTH = 4096
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_HOSTNAME_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")

# Ranges that Python's ``is_global`` / ``is_private`` do not (or, depending on the
# Python version, do not reliably) classify as non-public.
_EXTRA_BLOCKED_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT, often cloud-internal
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("224.0.0.0/3"),  # multicast and the old class E
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.ip_network("2001::/23"),  # IETF protocol assignments incl. Teredo
    ipaddress.ip_network("2001:db8::/32"),
    ipaddress.ip_network("fc00::/7"),
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local, still routed by some
    ipaddress.ip_network("ff00::/8"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchError(CodedError):
    """A fetch failed; ``message`` is written for the person who pasted the URL."""


@dataclass
class FetchResult:
    """A successfully fetched body.

    ``content_type`` is the response's ``Content-Type`` header as sent (``""`` if
    absent); never trust it for images, sniff the bytes instead.
    ``final_url`` is the URL of the last hop after redirects, with its original host
    name (not the address we connected to) and without a fragment.
    """

    content: bytes
    content_type: str
    final_url: str


@dataclass
class PostResult:
    """The answer to a POST, whatever its status: redirects are not followed.

    ``excerpt`` is the start of the body (at most ``excerpt_bytes``), for logs; the rest
    is never read. ``location`` is the ``Location`` header of a redirect, or ``""``.
    """

    status_code: int
    reason: str
    excerpt: bytes
    location: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class _Target:
    url: str  # normalised, with the host as written, no fragment
    scheme: str
    host: str  # lowercased, IDNA-encoded, no brackets, no trailing dot
    port: int
    host_header: str
    request_target: str  # path and query
    literal: IPAddress | None


# --- public helpers ------------------------------------------------------------------


def resolve_host(host: str, port: int) -> list[str]:
    """Resolve ``host`` to its IPv4/IPv6 addresses, in the resolver's order.

    Looks up ``socket.getaddrinfo`` at call time so tests can replace it.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is globally routable and safe to connect to.

    IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) are
    judged by the IPv4 address they carry, because that is where packets end up.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            # What DNS64 hands out on IPv6-only hosts; ::/8 would call it reserved.
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        embedded: list[ipaddress.IPv4Address] = []
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if not all(is_public_address(inner) for inner in embedded):
            return False
    if (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return False
    return not any(
        address in network
        for network in _EXTRA_BLOCKED_NETWORKS
        if network.version == address.version
    )


def fetch_url_from_settings(url: str) -> FetchResult:
    """:func:`fetch_url` with the limits from Django settings.

    Reads ``FETCH_MAX_BYTES``, ``FETCH_TIMEOUT`` and ``FETCH_ALLOW_PRIVATE_HOSTS``.
    """
    from django.conf import settings

    return fetch_url(
        url,
        max_bytes=int(settings.FETCH_MAX_BYTES),
        timeout=float(settings.FETCH_TIMEOUT),
        allow_private_hosts=list(settings.FETCH_ALLOW_PRIVATE_HOSTS),
    )


def check_url(
    url: str,
    *,
    timeout: float,
    allow_private_hosts: Sequence[str] = (),
    resolver: Resolver | None = None,
) -> str:
    """Apply the fetch rules to ``url`` without connecting: its form, its scheme, and
    every address its host resolves to now. Returns the URL normalised (host lowercased,
    path percent-encoded, no fragment).

    For URLs stored now and used later (webhook targets): the check is repeated at each
    use, since DNS may answer differently by then. Raises :class:`FetchError`.
    """
    deadline = time.monotonic() + timeout
    target = _parse_target(url)
    _checked_addresses(target, _AllowList(allow_private_hosts), resolver, deadline, timeout)
    return target.url


def check_url_from_settings(url: str) -> str:
    """:func:`check_url` with ``FETCH_TIMEOUT`` and ``FETCH_ALLOW_PRIVATE_HOSTS``."""
    from django.conf import settings

    return check_url(
        url,
        timeout=float(settings.FETCH_TIMEOUT),
        allow_private_hosts=list(settings.FETCH_ALLOW_PRIVATE_HOSTS),
    )


def post_url(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    allow_private_hosts: Sequence[str] = (),
    excerpt_bytes: int = 1024,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> PostResult:
    """POST ``body`` to ``url`` under the same rules as :func:`fetch_url`.

    Any HTTP answer is returned, 3xx included (never followed: a webhook target that
    moved should be updated, and following would send the body somewhere unchecked).
    Only failures to get an answer raise :class:`FetchError`: a refused address, DNS,
    connecting, and ``timeout`` (the total for everything, as for a fetch).
    """
    deadline = time.monotonic() + timeout
    target = _parse_target(url)
    addresses = _checked_addresses(
        target, _AllowList(allow_private_hosts), resolver, deadline, timeout
    )
    request_headers = {
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
        **headers,
    }

    def read(response: httpx.Response) -> PostResult:
        return PostResult(
            status_code=response.status_code,
            reason=response.reason_phrase,
            excerpt=_read_excerpt(response, excerpt_bytes, deadline, timeout),
            location=str(response.headers.get("location", "")).strip(),
        )

    return _each_address(
        target,
        addresses,
        lambda address: _exchange(
            target,
            address,
            deadline,
            timeout,
            transport,
            read,
            method="POST",
            content=body,
            headers=request_headers,
        ),
    )


def _read_excerpt(
    response: httpx.Response, excerpt_bytes: int, deadline: float, timeout: float
) -> bytes:
    if response.is_stream_consumed:
        return response.content[:excerpt_bytes]
    excerpt = bytearray()
    for chunk in _raw_chunks(response, deadline, timeout):
        excerpt += chunk
        if len(excerpt) >= excerpt_bytes:
            break
    return bytes(excerpt[:excerpt_bytes])


# --- the fetch -----------------------------------------------------------------------


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allow_private_hosts: Sequence[str] = (),
    max_redirects: int = 5,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> FetchResult:
    """Fetch ``url`` safely; see the module docstring for the rules.

    ``timeout`` is the total time in seconds for everything, across all redirects.
    ``allow_private_hosts`` lists host names (``"minio"``, ``"localhost:9000"``),
    addresses or CIDR ranges that may be non-public; for development and tests.
    ``resolver`` replaces :func:`resolve_host`; ``transport`` replaces the pinned
    network transport (tests pass an ``httpx.MockTransport``).

    Raises :class:`FetchError`.
    """
    deadline = time.monotonic() + timeout
    allow = _AllowList(allow_private_hosts)
    current = url
    for _hop in range(max_redirects + 1):
        target = _parse_target(current)
        addresses = _checked_addresses(target, allow, resolver, deadline, timeout)
        outcome = _fetch_hop(target, addresses, max_bytes, deadline, timeout, transport)
        if isinstance(outcome, FetchResult):
            return outcome
        current = outcome
    raise FetchError(
        "too_many_redirects",
        f"The address redirected too many times (more than {max_redirects}).",
    )


def _parse_target(url: str) -> _Target:
    url = url.strip()
    if len(url) > _MAX_URL_LENGTH:
        raise FetchError("invalid_url", "That web address is too long.")
    try:
        parts = urlsplit(url)
        port = parts.port
        raw_host = parts.hostname
    except ValueError:
        raise _invalid_url() from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise FetchError("unsupported_scheme", "The image URL must start with http:// or https://.")
    if "@" in parts.netloc:
        raise FetchError(
            "invalid_url",
            "Web addresses with a user name or password in them can't be fetched.",
        )
    if not raw_host:
        raise _invalid_url()
    if port == 0:
        raise _invalid_url()

    literal = _parse_ip_literal(raw_host)
    if literal is None:
        host = _normalise_hostname(raw_host)
        # IDNA maps full-width digits and ideographic full stops to ASCII, so such a
        # spelling of an address only shows up as one after normalising.
        literal = _parse_ip_literal(host)
    if literal is not None:
        host = str(literal)

    netloc_host = f"[{host}]" if ":" in host else host
    explicit_port = port is not None and port != _DEFAULT_PORTS[scheme]
    netloc = f"{netloc_host}:{port}" if explicit_port else netloc_host
    # Browsers percent-encode what users paste (spaces, umlauts); do the same.
    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    query = quote(parts.query, safe=_PATH_SAFE + "?")
    request_target = f"{path}?{query}" if query else path
    return _Target(
        url=urlunsplit((scheme, netloc, path, query, "")),
        scheme=scheme,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        host_header=netloc,
        request_target=request_target,
        literal=literal,
    )


def _invalid_url() -> FetchError:
    return FetchError(
        "invalid_url",
        "That doesn't look like a web address. Paste the full address, starting with https://.",
    )


def _normalise_hostname(raw_host: str) -> str:
    host = raw_host.lower().removesuffix(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise _invalid_url() from None
    if len(host) > 253 or not _HOSTNAME_RE.match(host):
        raise _invalid_url()
    return host


def _parse_ip_literal(host: str) -> IPAddress | None:
    """Decode ``host`` if it spells an IP address, including ``inet_aton`` shorthands.

    Done here rather than left to the resolver so that ``0177.1``-style hosts never
    reach DNS and are judged by the address the C library would use.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    return _parse_legacy_ipv4(host.removesuffix("."))


def _parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        if re.fullmatch(r"0[xX][0-9a-fA-F]*", part):
            numbers.append(int(part[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]+", part):
            numbers.append(int(part, 8))
        elif re.fullmatch(r"[1-9][0-9]*|0", part):
            numbers.append(int(part, 10))
        else:
            return None
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, n in enumerate(leading):
        value |= n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


class _AllowList:
    """Exceptions to the public-address rule, from ``allow_private_hosts``."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.removesuffix("."))

    def allows_host(self, target: _Target) -> bool:
        bare = f"[{target.host}]" if ":" in target.host else target.host
        return bool(self.names & {target.host, bare, f"{bare}:{target.port}"})

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def _checked_addresses(
    target: _Target,
    allow: _AllowList,
    resolver: Resolver | None,
    deadline: float,
    timeout: float,
) -> list[IPAddress]:
    if target.literal is not None:
        addresses = [target.literal]
    elif target.host == "localhost" or target.host.endswith(".localhost"):
        # RFC 6761: these names are loopback, whatever a resolver might say.
        addresses = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    else:
        addresses = _resolve(target, resolver or resolve_host, deadline, timeout)

    if allow.allows_host(target):
        return addresses
    for address in addresses:
        if not (is_public_address(address) or allow.allows_address(address)):
            raise FetchError(
                "host_not_allowed",
                "That address points to a private network and can't be fetched.",
            )
    return addresses


def _resolve(
    target: _Target, resolver: Resolver, deadline: float, timeout: float
) -> list[IPAddress]:
    # getaddrinfo has no timeout of its own, so it runs in a daemon thread that we
    # stop waiting for at the deadline (a stuck lookup thread then finishes alone).
    outcome: list[list[str] | BaseException] = []

    def run() -> None:
        try:
            outcome.append(resolver(target.host, target.port))
        except BaseException as exc:  # handed back to the calling thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name="fetcher-resolve", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if not outcome:
        raise _timeout_error(timeout)
    result = outcome[0]
    if isinstance(result, BaseException) and not isinstance(result, OSError | UnicodeError):
        raise result
    dns_failed = FetchError(
        "dns_failed",
        f"We couldn't find the website {target.host}. Check the address for typos.",
    )
    if isinstance(result, BaseException) or not result:
        raise dns_failed
    addresses: list[IPAddress] = []
    for text in result:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            raise dns_failed from None
    return addresses


def _fetch_hop(
    target: _Target,
    addresses: list[IPAddress],
    max_bytes: int,
    deadline: float,
    timeout: float,
    transport: httpx.BaseTransport | None,
) -> FetchResult | str:
    """Fetch one hop; return the result, or the next URL if it is a redirect."""
    return _each_address(
        target,
        addresses,
        lambda address: _fetch_from(target, address, max_bytes, deadline, timeout, transport),
    )


def _each_address(
    target: _Target, addresses: list[IPAddress], send: Callable[[IPAddress], _T]
) -> _T:
    """``send`` to the host's first address that accepts a connection."""
    connect_error: FetchError | None = None
    for address in addresses:
        try:
            return send(address)
        except httpx.ConnectError:
            # Like a browser, try the host's next address before giving up.
            connect_error = FetchError(
                "connect_failed",
                f"We couldn't connect to {target.host}. The website may be down.",
            )
    assert connect_error is not None
    raise connect_error


def _fetch_from(
    target: _Target,
    address: IPAddress,
    max_bytes: int,
    deadline: float,
    timeout: float,
    transport: httpx.BaseTransport | None,
) -> FetchResult | str:
    return _exchange(
        target,
        address,
        deadline,
        timeout,
        transport,
        lambda response: _read_response(target, response, max_bytes, deadline, timeout),
        method="GET",
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            # Ask for the plain body so the byte cap measures what we keep.
            "Accept-Encoding": "identity",
        },
    )


def _exchange(
    target: _Target,
    address: IPAddress,
    deadline: float,
    timeout: float,
    transport: httpx.BaseTransport | None,
    read: Callable[[httpx.Response], _T],
    *,
    method: str,
    headers: Mapping[str, str],
    content: bytes | None = None,
) -> _T:
    """One request to the checked ``address``; ``read`` takes the streamed response."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timeout_error(timeout)
    ip_host = f"[{address}]" if address.version == 6 else str(address)
    pinned_url = f"{target.scheme}://{ip_host}:{target.port}{target.request_target}"
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host

    hop_transport = transport or _PinnedTransport(address=address, deadline=deadline)
    try:
        with httpx.Client(
            transport=hop_transport, trust_env=False, follow_redirects=False
        ) as client:
            request = client.build_request(
                method,
                pinned_url,
                headers={**headers, "Host": target.host_header, "Connection": "close"},
                content=content,
                timeout=httpx.Timeout(remaining),
                extensions=extensions,
            )
            response = client.send(request, stream=True)
            try:
                return read(response)
            finally:
                response.close()
    except httpx.ConnectError:
        raise
    except httpx.TimeoutException:
        raise _timeout_error(timeout) from None
    except httpx.InvalidURL:
        raise _invalid_url() from None
    except httpx.TransportError:
        raise FetchError(
            "connect_failed",
            f"The connection to {target.host} broke off before the download finished.",
        ) from None


def _read_response(
    target: _Target,
    response: httpx.Response,
    max_bytes: int,
    deadline: float,
    timeout: float,
) -> FetchResult | str:
    status = response.status_code
    if status in _REDIRECT_STATUSES:
        location = str(response.headers.get("location", "")).strip()
        if not location:
            raise FetchError("http_error", "The server sent a redirect without saying where to.")
        return urljoin(target.url, location)
    if not 200 <= status < 300:
        reason = response.reason_phrase
        answer = f"{status} {reason}" if reason else str(status)
        raise FetchError("http_error", f"The server answered {answer}.")

    too_large = FetchError("too_large", f"The image is larger than {_human_size(max_bytes)}.")
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large

    if response.is_stream_consumed:
        # Responses built from bytes (httpx.MockTransport) arrive read and decoded.
        decoder = _BodyDecoder("")
        chunks: Iterable[bytes] = [response.content]
    else:
        decoder = _BodyDecoder(response.headers.get("content-encoding", ""))
        chunks = _raw_chunks(response, deadline, timeout)
    body = bytearray()
    for chunk in chunks:
        body += decoder.feed(chunk, max_bytes - len(body))
        if len(body) > max_bytes:
            raise too_large
    body += decoder.finish(max_bytes - len(body))
    if len(body) > max_bytes:
        raise too_large
    return FetchResult(
        content=bytes(body),
        content_type=response.headers.get("content-type", "").strip(),
        final_url=target.url,
    )


def _raw_chunks(response: httpx.Response, deadline: float, timeout: float) -> Iterator[bytes]:
    # No chunk_size: httpx would buffer up to it, hiding a trickle from the check.
    for chunk in response.iter_raw():
        # Catches servers that trickle bytes fast enough to never trip a read timeout.
        if time.monotonic() > deadline:
            raise _timeout_error(timeout)
        yield chunk


class _BodyDecoder:
    """Undo gzip/deflate without ever producing more than the caller has room for.

    We ask for ``identity``, but servers may compress anyway; httpx's own decoder
    would inflate a whole network chunk at once, so a small zip bomb could allocate
    far more than ``max_bytes`` before we got to count it.
    """

    def __init__(self, content_encoding: str) -> None:
        encoding = content_encoding.strip().lower()
        self._inflater: Any = None
        if encoding in ("", "identity"):
            return
        if encoding in ("gzip", "x-gzip", "deflate"):
            # wbits 32+15 accepts both gzip and zlib headers.
            self._inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
            return
        raise FetchError(
            "http_error",
            "The server sent the file in a compressed format we can't read.",
        )

    def feed(self, chunk: bytes, room: int) -> bytes:
        if self._inflater is None:
            return chunk
        try:
            # One byte more than there is room for is enough to know it's too big.
            return bytes(self._inflater.decompress(chunk, max(room, 0) + 1))
        except zlib.error:
            raise _damaged() from None

    def finish(self, room: int) -> bytes:
        if self._inflater is None:
            return b""
        try:
            if self._inflater.unconsumed_tail:
                return bytes(self._inflater.decompress(b"", max(room, 0) + 1))
            return bytes(self._inflater.flush())
        except zlib.error:
            raise _damaged() from None


def _damaged() -> FetchError:
    return FetchError("http_error", "The server sent a damaged file.")


def _timeout_error(timeout: float) -> FetchError:
    return FetchError("timeout", f"The website took too long to answer (over {timeout:g} seconds).")


def _human_size(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


# --- the pinned, deadline-bound transport --------------------------------------------


class _PinnedTransport(httpx.HTTPTransport):
    """An ``HTTPTransport`` that can only connect to one checked address.

    httpx does not let callers choose httpcore's network backend, so the connection
    pool is rebuilt with one (httpx 0.28 / httpcore 1.x layout). The backend is the
    second lock: even if a URL ever slipped through unpinned, it could not connect.
    """

    def __init__(self, *, address: IPAddress, deadline: float) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=1,
            network_backend=_PinnedBackend(address, deadline),
        )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds; one verifying context serves all hops.
    return httpx.create_ssl_context(verify=True, trust_env=False)


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, address: IPAddress, deadline: float) -> None:
        self._address = address
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            pinned = ipaddress.ip_address(host) == self._address
        except ValueError:
            pinned = False
        if not pinned:
            raise httpcore.ConnectError(f"refusing to connect to unchecked host {host}")
        stream = self._inner.connect_tcp(
            host,
            port,
            timeout=_clamp(timeout, self._deadline, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never used by the fetcher")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """Shrinks every read/write timeout to what is left before the deadline.

    httpcore fixes the read timeout once per response, so a server that sends a
    byte just before it expires would otherwise get a whole new timeout.
    """

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _clamp(timeout, self._deadline, httpcore.ReadTimeout)
        return self._stream.read(max_bytes, left)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        left = _clamp(timeout, self._deadline, httpcore.WriteTimeout)
        self._stream.write(buffer, left)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _clamp(timeout, self._deadline, httpcore.ConnectTimeout)
        tls = self._stream.start_tls(ssl_context, server_hostname, left)
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _clamp(timeout: float | None, deadline: float, error: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the total fetch time is used up")
    return left if timeout is None else min(timeout, left)
