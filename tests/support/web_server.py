"""A real web server (`manage.py runserver`, threaded, or gunicorn with the project's config,
as `make run` and production serve) on a database of its own, and a slow image host, for
tests and benchmarks of what one request does to another's.

pytest-django's `live_server` shares the test's database connection rules (and, on SQLite,
cannot show what a second process's lock does), so this runs the studio in a subprocess on
a `tests.support.cluster.Setup` database, as production does, and talks to it over loopback.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import httpx
from PIL import Image

from tests.support.cluster import PYTHON, ROOT, Setup
from tests.support.http_server import LocalServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def web_server(setup: Setup, server: str = "runserver", **env_extra: str) -> Iterator[str]:
    """A web server on `setup`'s database, its base URL: `manage.py runserver` (threaded, no
    reloader) or "gunicorn" (`productstudio/gunicorn.conf.py`; `env_extra` such as
    WEB_CONCURRENCY and WEB_THREADS tune it)."""
    port = free_port()
    log = setup.tmp / f"{server}-{port}.log"
    if server == "gunicorn":
        config = ROOT / "productstudio" / "gunicorn.conf.py"
        command = [PYTHON, "-m", "gunicorn", "-c", str(config), "--bind", f"127.0.0.1:{port}"]
    elif server == "runserver":
        command = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    else:
        raise ValueError(f"server: runserver or gunicorn, not {server!r}")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, **setup.env, **env_extra},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server} exited:\n" + log.read_text()[-3000:])
            try:
                httpx.get(base + "/api/v1/models", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{server} did not answer:\n" + log.read_text()[-3000:]
                    ) from None
                time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def workspace_with_key(setup: Setup, name: str) -> str:
    """A new workspace with credits to spare, and an API key for it."""
    out = setup.manage(
        "create_tenant",
        "--name",
        name,
        "--owner",
        f"{name.lower().replace(' ', '-')}@shop.test",
        "--credits",
        "100000",
        "--api-key",
    )
    return out.strip().splitlines()[-1]


def png_bytes(size: int = 64) -> bytes:
    """A small product photo: a square on a plain backdrop (a flat colour alone would be
    refused as blank)."""
    buffer = io.BytesIO()
    image = Image.new("RGB", (size, size), (200, 80, 50))
    image.paste((40, 60, 160), (size // 4, size // 4, size * 3 // 4, size * 3 // 4))
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class SlowImageHost:
    """A photo host on 127.0.0.1 that sends the headers and half a PNG at once, then the
    rest after `delay` seconds or when `release()` is called, whichever comes first:
    a fetch that is in flight for as long as the caller wants."""

    def __init__(self, delay: float = 120.0) -> None:
        self.server = LocalServer()
        self.body = png_bytes()
        self.delay = delay
        self.released = threading.Event()
        self.started = 0
        self._lock = threading.Lock()
        self.server.routes["/slow.png"] = self._serve
        self.server.start()

    @property
    def url(self) -> str:
        return self.server.url("/slow.png")

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.release()
        self.server.stop()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.started += 1
        half = len(self.body) // 2
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.write(self.body[:half])
        handler.wfile.flush()
        self.released.wait(self.delay)
        handler.wfile.write(self.body[half:])
