"""Tests for productstudio.lib.fetcher against a real HTTP server on 127.0.0.1.

Nothing here may reach beyond loopback: an autouse fixture refuses every socket
connect to a non-loopback address and every name lookup other than numeric
addresses and "localhost", and records both so tests can prove "no connection".
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import django.conf
import httpx
import pytest
from PIL import Image

from productstudio.lib import fetcher
from productstudio.lib.fetcher import FetchError, fetch_url

PUBLIC_ADDRESS = "93.184.216.34"
PUBLIC_HOST = "shop.example"
LOCAL = ["127.0.0.1"]


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png_bytes()
GZIP_BOMB = gzip.compress(b"\0" * (8 * 1024 * 1024), compresslevel=9)


# --- the local test server ---------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.seen_paths.append(path)
        try:
            if path.startswith("/redirect/"):
                left = int(path.rsplit("/", 1)[1])
                self._redirect(f"/redirect/{left - 1}" if left else "/image.png")
                return
            route = getattr(
                self, "route_" + path.strip("/").replace("-", "_").replace(".", "_"), None
            )
            if route is None:
                self._send(404, b"not here", "text/plain")
            else:
                route()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher hung up on purpose

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _pause(self, seconds: float) -> None:
        self.server.stopping.wait(seconds)

    def route_image_png(self) -> None:
        self._send(200, PNG, "image/png")

    def route_echo(self) -> None:
        seen = {
            name: self.headers.get(name, "") for name in ("Host", "User-Agent", "Accept-Encoding")
        }
        self._send(200, json.dumps(seen).encode(), "application/json")

    def route_huge_declared(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(50 * 1024 * 1024))
        self.end_headers()
        self.wfile.write(b"\0" * 1024)

    def route_huge_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"\0" * 16 * 1024
        for _ in range(256):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def route_trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            self.wfile.write(b"x")
            self.wfile.flush()
            self._pause(0.05)

    def route_stall_after_one_byte(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "10")
        self.end_headers()
        self.wfile.flush()
        self._pause(0.45)
        self.wfile.write(b"x")
        self.wfile.flush()
        self._pause(3)

    def route_sleepy_redirect(self) -> None:
        self._pause(0.25)
        self._redirect("/sleepy-redirect")

    def route_loop(self) -> None:
        self._redirect("/loop")

    def route_to_metadata(self) -> None:
        self._redirect("http://169.254.169.254/latest/meta-data/")

    def route_gzip(self) -> None:
        self._send(200, gzip.compress(PNG), "image/png", Content_Encoding="gzip")

    def route_gzip_bomb(self) -> None:
        self._send(200, GZIP_BOMB, "image/png", Content_Encoding="gzip")

    def route_brotli(self) -> None:
        self._send(200, b"\x0b\x02\x80hello\x03", "image/png", Content_Encoding="br")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = threading.Event()
        self.seen_paths: list[str] = []
        self.seen_server_names: list[str | None] = []
        if tls is not None:
            tls.sni_callback = self._remember_server_name
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    def _remember_server_name(self, sock: Any, server_name: str | None, tls: Any) -> None:
        self.seen_server_names.append(server_name)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def _serving(tls: ssl.SSLContext | None = None) -> Iterator[_Server]:
    httpd = _Server(tls)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    with _serving() as httpd:
        yield httpd


@dataclass
class _TLSServer:
    server: _Server
    trusted: ssl.SSLContext


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_TLSServer]:
    """An HTTPS server whose certificate is only valid for the name shop.test."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    options = "req -x509 -nodes -days 1 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
    options += " -subj /CN=shop.test -addext subjectAltName=DNS:shop.test"
    subprocess.run(
        [openssl, *options.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    with _serving(server_side) as httpd:
        yield _TLSServer(httpd, ssl.create_default_context(cafile=str(cert)))


# --- network guards ----------------------------------------------------------------


@dataclass
class _Network:
    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def connected_to(self, address: str) -> bool:
        return any(host == address for host, _port in self.connects)


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> _Network:
    seen = _Network()
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        host, port = str(address[0]), int(address[1])
        seen.connects.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:
            raise OSError(f"test guard: refusing to connect to {host}")
        real_connect(sock, address)

    def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        seen.lookups.append(str(host))
        if host != "localhost":
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "test guard: no DNS") from None
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return seen


def _public_resolver(host: str, port: int) -> list[str]:
    assert host == PUBLIC_HOST
    return [PUBLIC_ADDRESS]


@dataclass
class _Recorder:
    """An httpx.MockTransport that answers from a function and keeps the requests."""

    answer: Callable[[httpx.Request], httpx.Response]
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return self.answer(request)

        return httpx.MockTransport(handle)


def _fetch(url: str, **overrides: Any) -> fetcher.FetchResult:
    options: dict[str, Any] = {"max_bytes": 1024 * 1024, "timeout": 2.0}
    options.update(overrides)
    return fetch_url(url, **options)


def _refusal(url: str, **overrides: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        _fetch(url, **overrides)
    return caught.value


def _assert_refused_without_traffic(network: _Network, url: str) -> None:
    error = _refusal(url)
    assert error.code == "host_not_allowed"
    assert error.message == ("That address points to a private network and can't be fetched.")
    assert network.connects == []
    assert network.lookups == []


# --- loopback, metadata and other private targets ----------------------------------


def test_it_refuses_a_decimal_spelling_of_loopback(network: _Network) -> None:
    _assert_refused_without_traffic(network, "http://2130706433/")


def test_it_refuses_an_octal_spelling_of_loopback(network: _Network) -> None:
    _assert_refused_without_traffic(network, "http://0177.0.0.1/")


def test_it_refuses_a_hex_spelling_of_loopback(network: _Network) -> None:
    _assert_refused_without_traffic(network, "http://0x7f.0.0.1/")


def test_it_refuses_a_shortened_spelling_of_loopback(network: _Network) -> None:
    _assert_refused_without_traffic(network, "http://127.1/")


def test_it_refuses_loopback_wrapped_in_an_ipv4_mapped_ipv6_address(
    network: _Network,
) -> None:
    _assert_refused_without_traffic(network, "http://[::ffff:127.0.0.1]/")


def test_it_refuses_ipv6_loopback(network: _Network) -> None:
    _assert_refused_without_traffic(network, "http://[::1]/")


def test_it_refuses_localhost_without_asking_dns(network: _Network) -> None:
    _assert_refused_without_traffic(network, "http://localhost/")
    _assert_refused_without_traffic(network, "http://LocalHost./")
    _assert_refused_without_traffic(network, "http://api.localhost/")


def test_it_refuses_the_cloud_metadata_address(network: _Network) -> None:
    _assert_refused_without_traffic(network, "http://169.254.169.254/latest/meta-data/")


def test_it_refuses_loopback_spelled_with_full_width_characters(
    network: _Network,
) -> None:
    _assert_refused_without_traffic(
        network, "http://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://0.0.0.0/",
        "http://0/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a00:1]/",
    ],
)
def test_it_refuses_other_non_public_literal_addresses(network: _Network, url: str) -> None:
    _assert_refused_without_traffic(network, url)


def test_it_refuses_the_running_local_server_unless_allowed(
    network: _Network, server: _Server
) -> None:
    _assert_refused_without_traffic(network, server.url("/image.png"))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.5",
        "169.254.169.254",
        "100.64.3.4",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2002:c0a8:101::1",  # 6to4 around 192.168.1.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "64:ff9b::7f00:1",  # NAT64 around 127.0.0.1
    ],
)
def test_it_refuses_a_name_that_resolves_to_a_non_public_address(
    network: _Network, address: str
) -> None:
    recorder = _Recorder(lambda request: httpx.Response(200, content=PNG))
    error = _refusal(
        f"https://{PUBLIC_HOST}/photo.jpg",
        resolver=lambda host, port: [address],
        transport=recorder.transport(),
    )
    assert error.code == "host_not_allowed"
    assert recorder.requests == []
    assert network.connects == []


def test_it_refuses_a_name_when_any_of_its_addresses_is_private(
    network: _Network,
) -> None:
    recorder = _Recorder(lambda request: httpx.Response(200, content=PNG))
    error = _refusal(
        f"https://{PUBLIC_HOST}/photo.jpg",
        resolver=lambda host, port: [PUBLIC_ADDRESS, "10.0.0.5"],
        transport=recorder.transport(),
    )
    assert error.code == "host_not_allowed"
    assert recorder.requests == []


@pytest.mark.parametrize(
    "address",
    [
        PUBLIC_ADDRESS,
        "2606:2800:220:1:248:1893:25c8:1946",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",  # NAT64 around a public address
        "2002:5db8:d822::1",  # 6to4 around a public address
    ],
)
def test_it_counts_globally_routable_addresses_as_public(address: str) -> None:
    assert fetcher.is_public_address(ipaddress.ip_address(address))


# --- pinning: connect to the checked address, keep the original host ---------------


def test_a_redirect_from_a_public_host_to_loopback_is_refused_before_connecting(
    network: _Network,
) -> None:
    recorder = _Recorder(
        lambda request: httpx.Response(302, headers={"Location": "http://127.0.0.1:8000/admin"})
    )
    error = _refusal(
        f"http://{PUBLIC_HOST}/photo.jpg",
        resolver=_public_resolver,
        transport=recorder.transport(),
    )
    assert error.code == "host_not_allowed"
    assert [str(r.url) for r in recorder.requests] == [f"http://{PUBLIC_ADDRESS}/photo.jpg"]
    assert network.connects == []
    assert not network.connected_to("127.0.0.1")


def test_a_redirect_to_a_sneaky_loopback_spelling_is_refused(
    network: _Network,
) -> None:
    recorder = _Recorder(
        lambda request: httpx.Response(302, headers={"Location": "//2130706433/x"})
    )
    error = _refusal(
        f"https://{PUBLIC_HOST}/photo.jpg",
        resolver=_public_resolver,
        transport=recorder.transport(),
    )
    assert error.code == "host_not_allowed"
    assert len(recorder.requests) == 1


def test_it_sends_the_request_to_the_checked_address_with_the_original_host_and_sni(
    network: _Network,
) -> None:
    recorder = _Recorder(
        lambda request: httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})
    )
    result = _fetch(
        f"https://{PUBLIC_HOST}/photos/red shoe.png?size=large#zoom",
        resolver=_public_resolver,
        transport=recorder.transport(),
    )
    (request,) = recorder.requests
    assert request.url.host == PUBLIC_ADDRESS
    assert request.url.scheme == "https"
    assert request.headers["Host"] == PUBLIC_HOST
    assert request.extensions["sni_hostname"] == PUBLIC_HOST
    assert request.headers["User-Agent"] == fetcher.USER_AGENT
    assert result.content == PNG
    assert result.content_type == "image/png"
    assert result.final_url == (f"https://{PUBLIC_HOST}/photos/red%20shoe.png?size=large")
    assert network.connects == []


def test_it_resolves_names_with_socket_getaddrinfo_at_call_time(
    network: _Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        assert host == PUBLIC_HOST
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_ADDRESS, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    recorder = _Recorder(lambda request: httpx.Response(200, content=PNG))
    _fetch(f"https://{PUBLIC_HOST}/a.png", transport=recorder.transport())
    assert recorder.requests[0].url.host == PUBLIC_ADDRESS


def test_the_fetchers_resolver_function_can_be_replaced(
    network: _Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetcher, "resolve_host", lambda host, port: ["10.9.8.7"])
    error = _refusal(f"https://{PUBLIC_HOST}/a.png")
    assert error.code == "host_not_allowed"
    assert network.connects == []


def test_it_reports_a_name_that_does_not_resolve(network: _Network) -> None:
    def no_such_host(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    error = _refusal("https://no-such-shop.example/a.png", resolver=no_such_host)
    assert error.code == "dns_failed"
    assert "no-such-shop.example" in error.message
    assert network.connects == []


def test_the_host_header_is_the_original_host_when_pinned(
    network: _Network, server: _Server
) -> None:
    result = _fetch(
        f"http://shop.test:{server.port}/echo",
        resolver=lambda host, port: ["127.0.0.1"],
        allow_private_hosts=["shop.test"],
    )
    echoed = json.loads(result.content)
    assert echoed["Host"] == f"shop.test:{server.port}"
    assert echoed["User-Agent"] == "ProductStudio/0.1 (+fetcher)"
    assert echoed["Accept-Encoding"] == "identity"
    assert network.connects == [("127.0.0.1", server.port)]
    assert network.lookups == ["127.0.0.1"]  # httpcore's connect, not a DNS query


def test_https_is_pinned_to_the_address_but_verified_against_the_host_name(
    network: _Network, tls_server: _TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetcher, "_ssl_context", lambda: tls_server.trusted)
    port = tls_server.server.port
    result = _fetch(
        f"https://shop.test:{port}/echo",
        resolver=lambda host, port: ["127.0.0.1"],
        allow_private_hosts=["shop.test"],
    )
    assert json.loads(result.content)["Host"] == f"shop.test:{port}"
    assert tls_server.server.seen_server_names[-1] == "shop.test"
    assert network.connects == [("127.0.0.1", port)]


def test_https_refuses_a_certificate_for_another_name(
    tls_server: _TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetcher, "_ssl_context", lambda: tls_server.trusted)
    error = _refusal(
        f"https://elsewhere.test:{tls_server.server.port}/echo",
        resolver=lambda host, port: ["127.0.0.1"],
        allow_private_hosts=["elsewhere.test"],
    )
    assert error.code == "connect_failed"
    assert tls_server.server.seen_server_names[-1] == "elsewhere.test"


def test_https_refuses_an_untrusted_certificate(tls_server: _TLSServer) -> None:
    error = _refusal(
        f"https://shop.test:{tls_server.server.port}/echo",
        resolver=lambda host, port: ["127.0.0.1"],
        allow_private_hosts=["shop.test"],
    )
    assert error.code == "connect_failed"


# --- schemes and malformed URLs ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/photo.jpg",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "shop.example/photo.jpg",
    ],
)
def test_it_refuses_anything_but_http_and_https(network: _Network, url: str) -> None:
    error = _refusal(url)
    assert error.code == "unsupported_scheme"
    assert error.message == "The image URL must start with http:// or https://."
    assert network.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@93.184.216.34/photo.jpg",
        "http://93.184.216.34\\@127.0.0.1/photo.jpg",
    ],
)
def test_it_refuses_urls_with_user_info(network: _Network, url: str) -> None:
    assert _refusal(url).code == "invalid_url"
    assert network.connects == []


@pytest.mark.parametrize(
    "url", ["http://", "http:///photo.jpg", "http://[::1/", "http://a..b/", "http://x:0/"]
)
def test_it_refuses_malformed_urls(network: _Network, url: str) -> None:
    assert _refusal(url).code == "invalid_url"
    assert network.connects == []


# --- the local server, explicitly allowed ------------------------------------------


def test_allowing_the_loopback_address_lets_the_local_server_through(
    server: _Server,
) -> None:
    result = _fetch(server.url("/image.png"), allow_private_hosts=LOCAL)
    assert result.content == PNG
    assert result.content_type == "image/png"
    assert result.final_url == server.url("/image.png")


def test_allowing_a_cidr_range_lets_the_local_server_through(server: _Server) -> None:
    result = _fetch(server.url("/image.png"), allow_private_hosts=["127.0.0.0/8"])
    assert result.content == PNG


def test_allowing_a_host_with_its_port_lets_only_that_port_through(
    server: _Server,
) -> None:
    url = server.url("/image.png", host="localhost")
    assert _fetch(url, allow_private_hosts=[f"localhost:{server.port}"]).content == PNG
    error = _refusal(url, allow_private_hosts=["localhost:1"])
    assert error.code == "host_not_allowed"


def test_it_reports_an_http_error_status(server: _Server) -> None:
    error = _refusal(server.url("/missing"), allow_private_hosts=LOCAL)
    assert error.code == "http_error"
    assert error.message == "The server answered 404 Not Found."


def test_it_reports_a_server_that_is_not_listening(network: _Network) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    error = _refusal(f"http://127.0.0.1:{closed_port}/", allow_private_hosts=LOCAL)
    assert error.code == "connect_failed"


def test_it_ignores_proxies_from_the_environment(
    network: _Network, server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
        monkeypatch.setenv(name.lower(), "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    result = _fetch(server.url("/image.png"), allow_private_hosts=LOCAL)
    assert result.content == PNG
    assert network.connects == [("127.0.0.1", server.port)]


# --- redirects ---------------------------------------------------------------------


def test_it_follows_a_redirect_chain_to_an_allowed_local_path(server: _Server) -> None:
    result = _fetch(server.url("/redirect/3"), allow_private_hosts=LOCAL)
    assert result.content == PNG
    assert result.final_url == server.url("/image.png")


def test_it_gives_up_on_a_redirect_loop(server: _Server) -> None:
    error = _refusal(server.url("/loop"), allow_private_hosts=LOCAL)
    assert error.code == "too_many_redirects"
    assert error.message == "The address redirected too many times (more than 5)."


def test_it_counts_redirects_against_the_limit(server: _Server) -> None:
    error = _refusal(server.url("/redirect/3"), allow_private_hosts=LOCAL, max_redirects=2)
    assert error.code == "too_many_redirects"


def test_it_rechecks_every_redirect_hop(network: _Network, server: _Server) -> None:
    error = _refusal(server.url("/to-metadata"), allow_private_hosts=LOCAL)
    assert error.code == "host_not_allowed"
    assert network.connects == [("127.0.0.1", server.port)]
    assert not network.connected_to("169.254.169.254")


# --- size limits -------------------------------------------------------------------


def test_it_refuses_early_when_content_length_is_too_large(server: _Server) -> None:
    error = _refusal(
        server.url("/huge-declared"), allow_private_hosts=LOCAL, max_bytes=25 * 1024**2
    )
    assert error.code == "too_large"
    assert error.message == "The image is larger than 25 MB."


def test_it_stops_reading_a_chunked_body_past_the_limit(server: _Server) -> None:
    error = _refusal(server.url("/huge-chunked"), allow_private_hosts=LOCAL, max_bytes=100_000)
    assert error.code == "too_large"


def test_a_body_of_exactly_the_limit_is_accepted(server: _Server) -> None:
    url = server.url("/image.png")
    assert _fetch(url, allow_private_hosts=LOCAL, max_bytes=len(PNG)).content == PNG
    error = _refusal(url, allow_private_hosts=LOCAL, max_bytes=len(PNG) - 1)
    assert error.code == "too_large"


def test_it_decodes_a_gzip_body_the_server_sent_anyway(server: _Server) -> None:
    assert _fetch(server.url("/gzip"), allow_private_hosts=LOCAL).content == PNG


def test_the_byte_limit_applies_to_the_decoded_body(server: _Server) -> None:
    assert len(GZIP_BOMB) < 100_000
    tracemalloc.start()
    try:
        error = _refusal(server.url("/gzip-bomb"), allow_private_hosts=LOCAL, max_bytes=1024 * 1024)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code == "too_large"
    # Inflating the whole 8 MB would show here; the cap keeps it near 1 MB.
    assert peak < 4 * 1024 * 1024


def test_it_refuses_an_encoding_it_cannot_decode(server: _Server) -> None:
    error = _refusal(server.url("/brotli"), allow_private_hosts=LOCAL)
    assert error.code == "http_error"


# --- the total deadline ------------------------------------------------------------


def _timed_refusal(url: str, timeout: float) -> tuple[FetchError, float]:
    started = time.monotonic()
    error = _refusal(url, allow_private_hosts=LOCAL, timeout=timeout)
    return error, time.monotonic() - started


def test_the_timeout_covers_a_server_that_trickles_bytes(server: _Server) -> None:
    error, elapsed = _timed_refusal(server.url("/trickle"), timeout=0.4)
    assert error.code == "timeout"
    assert error.message == "The website took too long to answer (over 0.4 seconds)."
    assert elapsed < 0.7


def test_a_late_byte_does_not_buy_the_server_a_fresh_read_timeout(
    server: _Server,
) -> None:
    error, elapsed = _timed_refusal(server.url("/stall-after-one-byte"), timeout=0.6)
    assert error.code == "timeout"
    assert elapsed < 0.85


def test_the_timeout_is_shared_by_all_redirect_hops(server: _Server) -> None:
    # Each hop takes 0.25 s, well inside the 0.6 s timeout: a timeout per hop would end
    # in too_many_redirects after six hops (1.5 s). Only a shared one says "timeout".
    error, elapsed = _timed_refusal(server.url("/sleepy-redirect"), timeout=0.6)
    assert error.code == "timeout"
    assert elapsed < 1.4  # generous: a loaded CI machine is slow, not wrong


# --- settings ----------------------------------------------------------------------


def test_fetch_url_from_settings_reads_the_django_settings(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        django.conf,
        "settings",
        SimpleNamespace(
            FETCH_MAX_BYTES=len(PNG) - 1,
            FETCH_TIMEOUT=2.0,
            FETCH_ALLOW_PRIVATE_HOSTS=LOCAL,
        ),
    )
    with pytest.raises(FetchError) as caught:
        fetcher.fetch_url_from_settings(server.url("/image.png"))
    assert caught.value.code == "too_large"


def test_the_pinned_transport_cannot_connect_anywhere_but_the_checked_address(
    network: _Network, server: _Server
) -> None:
    transport = fetcher._PinnedTransport(
        address=ipaddress.ip_address("127.0.0.2"), deadline=time.monotonic() + 2
    )
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get(server.url("/image.png"))
    assert network.connects == []
