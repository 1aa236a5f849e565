"""A real HTTP server on 127.0.0.1 for tests: serves canned routes from a thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    """A request the server got, as sent: for checking what a POST carried."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LocalServer:
    """Routes are set per test: `server.route("/mug.jpg", body=..., headers=...)`.
    GET and POST answer the same routes; `received` keeps every POST with its body."""

    def __init__(self) -> None:
        self.routes: dict[str, Route | Callable[[BaseHTTPRequestHandler], None]] = {}
        self.requests: list[str] = []
        self.received: list[Received] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            # Without it, a keep-alive answer's body waits 40 ms for a delayed ACK.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                owner.received.append(Received("POST", self.path, headers, body))
                self.do_GET()

            def do_GET(self) -> None:
                owner.requests.append(self.path)
                route = owner.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    self.wfile.write(b"not found")
                    return
                if callable(route):
                    route(self)
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, body: bytes = b"", status: int = 200, **headers: str) -> str:
        self.routes[path] = Route(
            status=status, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        return self.url(path)

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class HangingServer:
    """A receiver that accepts connections, reads what is sent, and never answers: what a
    stuck webhook receiver looks like. It counts connections and how many are open at once.
    `events` (shared with other servers, if given) records each accept as "hang"."""

    def __init__(self, events: list[str] | None = None) -> None:
        self.events = events if events is not None else []
        self.accepted = 0
        self.open = 0
        self.most_open = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> HangingServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
                self.events.append("hang")
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self._stopping.is_set():
                try:
                    if not conn.recv(65536):
                        break  # the sender gave up and closed
                except TimeoutError:
                    continue
                except OSError:
                    break
        with self._lock:
            self.open -= 1
