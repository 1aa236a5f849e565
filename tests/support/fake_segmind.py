"""A fake Segmind API: a real HTTP server on 127.0.0.1 that speaks docs/segmind.md.

It serves the five ProductStudio endpoints (four v2 model slugs and the PixelFlow workflow),
their status / result / poll URLs, and the generated output PNGs, so the provider, the
workers and the benchmark can run end to end without touching api.segmind.com. Faults
(credits, rate limits, 5xx, FAILED jobs, expiry, malformed JSON, slow answers, dropped
connections) are injected on demand, from Python or over HTTP, so a separate process can
be driven too.

Python:

    with FakeSegmind(latency=0.2) as fake:
        fake.faults.rate_limit(2, retry_after=1)
        ...  # point SEGMIND_API_BASE at fake.base_url
        fake.stats()["submissions"]

Command line (foreground until Ctrl-C):

    python -m tests.support.fake_segmind --port 9100 --latency 5 --api-key KEY [--also-accept KEY2]

Several keys (the platform's and workspaces' own) may be accepted, each with its own
account: `faults.out_of_credit(key)` makes that key's submits answer 406 until
`faults.top_up(key)`, and `stats()["submissions_by_api_key"]` says which key sent what.

Segmind's per-key rate limit: `faults.rate_window(20, 60, retry_after=5, count_polls=True)`
(or `--rate-limit 20/60s --retry-after 5 --count-polls`) refuses with 429 any request
that would make more than 20 counted requests with one key within 60 seconds; refused
requests are not counted. `stats()["rate_by_api_key"]` gives per key the submissions
accepted and refused, the polls, when every request arrived (`requests`), when each
accepted submission and each poll arrived (`submitted`, `polled`), and when each 429 was
sent with which Retry-After (`throttled`; wall-clock seconds), so a test can check that
nothing was sent before a Retry-After ran out.

HTTP control: GET /_fake/stats, GET /_fake/faults, POST /_fake/faults (JSON),
POST /_fake/reset. These need no key.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import math
import socket
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from PIL import Image, ImageDraw

WORKFLOW_ID = "65c9c7f641c340d7ef2f7134-v1"
V2_SLUGS = (
    "ai-product-photography",
    "segmind-scenecraft-v01",
    "qwen-image-edit-plus-product-photography",
    "bria-product-packshot",
)
# The two models whose output size follows megapixel x aspect_ratio (jobs/catalog.py).
SIZED_SLUGS = ("ai-product-photography", "segmind-scenecraft-v01")

Scope = Literal["any", "submit", "poll", "output"]
Category = Literal["submit", "poll", "output"]
SCOPES: tuple[str, ...] = ("any", "submit", "poll", "output")

# A JSON document cut short, as a proxy or a crashed worker would leave it.
MALFORMED_BODY = b'{"status": '


@dataclass
class _Countdown:
    """A fault that answers the next `remaining` matching requests."""

    remaining: int = 0
    scope: Scope = "any"

    def take(self, category: Category) -> bool:
        if self.remaining <= 0 or (self.scope != "any" and self.scope != category):
            return False
        self.remaining -= 1
        return True


@dataclass
class _Plan:
    """What the faults decided for one request; all None/False means answer normally."""

    drop: bool = False
    delay: float = 0.0
    # Set by `Faults.slow_end()`: a slow answer then goes out at once.
    delay_ended: threading.Event | None = None
    status: int | None = None
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    malformed: bool = False


class Faults:
    """The knobs: latency, retention, and the faults for the next N requests.

    Every method is safe to call from any thread while the server runs. Plain attributes
    (`latency`, `retention`) may be assigned directly.
    """

    def __init__(self, server: FakeSegmind, latency: float, retention: float) -> None:
        self._server = server
        self._lock = threading.Lock()
        self.latency = latency
        self.retention = retention
        self._clear()

    def _clear(self) -> None:
        self._credits = _Countdown(scope="submit")
        # Per key: the next n submits with that key answer 406; and keys whose account is
        # out of credit until topped up ("*" for every key).
        self._credits_by_key: dict[str, int] = {}
        self._broke: set[str] = set()
        self._rate_limit = _Countdown()
        self.retry_after = 1
        self._server_error = _Countdown()
        self.server_error_status = 500
        self._fail_jobs = 0
        self.fail_message = "Inference failed: injected by the fake"
        self._malformed = _Countdown()
        self._slow = _Countdown()
        self.slow_seconds = 0.0
        # Requests still held by an earlier `slow` are let go, not left waiting.
        ended = getattr(self, "_slow_ended", None)
        if ended is not None:
            ended.set()
        self._slow_ended = threading.Event()
        self._drop = _Countdown()
        self._output_urls: list[str] = []
        # Segmind's per-key limit: (n, window seconds, Retry-After or None, polls count).
        self._window: tuple[int, float, float | None, bool] | None = None

    def rate_window(
        self,
        n: int | None = None,
        window: float = 60.0,
        retry_after: float | None = None,
        count_polls: bool = False,
    ) -> None:
        """Enforce at most `n` counted requests per key in any `window` seconds (None or
        0: no limit). Past it, 429 with `Retry-After: retry_after` (no header with None).
        Submissions always count; status, result and workflow polls only with
        `count_polls` (output downloads never)."""
        if (n is not None and n < 0) or window <= 0:
            raise ValueError("rate_window needs n >= 0 and a positive window")
        with self._lock:
            self._window = (int(n), float(window), retry_after, bool(count_polls)) if n else None

    def window_rule(self) -> tuple[int, float, float | None, bool] | None:
        with self._lock:
            return self._window

    def output_url(self, n: int = 1, url: str = "http://169.254.169.254/latest/") -> None:
        """The next `n` completed results give `url` as their output, instead of the
        fake's own image: an address the client must refuse, or a file it must not keep."""
        with self._lock:
            self._output_urls = [url] * n

    def take_output_url(self) -> str | None:
        with self._lock:
            return self._output_urls.pop(0) if self._output_urls else None

    def insufficient_credits(self, n: int = 1, key: str | None = None) -> None:
        """The next `n` submits answer 406 `{"error": "Insufficient credits"}`; with `key`,
        the next `n` submits sent with that API key (others are answered as usual)."""
        with self._lock:
            if key is None:
                self._credits = _Countdown(n, "submit")
            else:
                self._credits_by_key[key] = n

    def out_of_credit(self, key: str | None = None) -> None:
        """Every submit with `key` (with None: with any key) answers 406 until `top_up`."""
        with self._lock:
            self._broke.add("*" if key is None else key)

    def top_up(self, key: str | None = None) -> None:
        """`key`'s account has credit again (None: every account)."""
        with self._lock:
            if key is None:
                self._broke.clear()
                self._credits_by_key.clear()
            else:
                self._broke.discard(key)
                self._credits_by_key.pop(key, None)

    def take_key_credits(self, key: str) -> bool:
        """Whether a submit with this (accepted) key is refused for want of credit."""
        with self._lock:
            if "*" in self._broke or key in self._broke:
                return True
            remaining = self._credits_by_key.get(key, 0)
            if remaining > 0:
                self._credits_by_key[key] = remaining - 1
                return True
            return False

    def rate_limit(self, n: int = 1, retry_after: int = 1, scope: Scope = "any") -> None:
        """The next `n` requests in `scope` answer 429 with `Retry-After: retry_after`."""
        with self._lock:
            self._rate_limit = _Countdown(n, _scope(scope))
            self.retry_after = retry_after

    def server_error(self, n: int = 1, status: int = 500, scope: Scope = "any") -> None:
        """The next `n` requests in `scope` answer `status` (500, 502 or 504)."""
        if status not in (500, 502, 503, 504):
            raise ValueError(f"not a server error status: {status}")
        with self._lock:
            self._server_error = _Countdown(n, _scope(scope))
            self.server_error_status = status

    def fail_jobs(self, n: int = 1, error: str | None = None) -> None:
        """The next `n` submitted jobs end FAILED with `error` instead of COMPLETED."""
        with self._lock:
            self._fail_jobs = n
            if error is not None:
                self.fail_message = error

    def malformed_json(self, n: int = 1, scope: Scope = "any") -> None:
        """The next `n` JSON answers in `scope` are a truncated `{"status": ` (HTTP 200)."""
        with self._lock:
            self._malformed = _Countdown(n, _scope(scope))

    def slow(self, n: int = 1, seconds: float = 2.0, scope: Scope = "any") -> None:
        """The next `n` requests in `scope` wait `seconds` before being answered."""
        with self._lock:
            self._slow = _Countdown(n, _scope(scope))
            self.slow_seconds = seconds
            if self._slow_ended.is_set():
                self._slow_ended = threading.Event()

    def slow_end(self) -> None:
        """Answer the requests `slow` holds now, without waiting out their seconds: a test
        holds a request for as long as it needs (a crash mid-request), then lets it go."""
        with self._lock:
            self._slow_ended.set()

    def drop_connection(self, n: int = 1, scope: Scope = "any") -> None:
        """The next `n` requests in `scope` get their socket closed without any answer."""
        with self._lock:
            self._drop = _Countdown(n, _scope(scope))

    def expire(self, request_id: str) -> None:
        """Forget a request now: its status, result and output answer 404 from here on."""
        self._server.expire(request_id)

    def reset(self) -> None:
        """Clear every pending fault (latency and retention are kept)."""
        with self._lock:
            self._clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency": self.latency,
                "retention": self.retention,
                "insufficient_credits": self._credits.remaining,
                "insufficient_credits_by_key": dict(self._credits_by_key),
                "out_of_credit": sorted(self._broke),
                "rate_limit": {
                    "n": self._rate_limit.remaining,
                    "scope": self._rate_limit.scope,
                    "retry_after": self.retry_after,
                },
                "server_error": {
                    "n": self._server_error.remaining,
                    "scope": self._server_error.scope,
                    "status": self.server_error_status,
                },
                "fail_jobs": {"n": self._fail_jobs, "error": self.fail_message},
                "malformed_json": {"n": self._malformed.remaining, "scope": self._malformed.scope},
                "slow": {
                    "n": self._slow.remaining,
                    "scope": self._slow.scope,
                    "seconds": self.slow_seconds,
                },
                "drop_connection": {"n": self._drop.remaining, "scope": self._drop.scope},
                "rate_window": None
                if self._window is None
                else {
                    "n": self._window[0],
                    "window": self._window[1],
                    "retry_after": self._window[2],
                    "count_polls": self._window[3],
                },
            }

    def apply(self, settings: dict[str, Any]) -> None:
        """Set faults from a JSON object (the body of `POST /_fake/faults`).

        Counters take either a number (`"rate_limit": 2`) or an object with the method's
        keyword arguments (`"rate_limit": {"n": 2, "retry_after": 3, "scope": "submit"}`).
        """
        unknown = set(settings) - {
            "latency",
            "retention",
            "insufficient_credits",
            "out_of_credit",
            "top_up",
            "rate_limit",
            "server_error",
            "fail_jobs",
            "malformed_json",
            "slow",
            "drop_connection",
            "output_url",
            "expire",
            "advance",
            "rate_window",
        }
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        if "latency" in settings:
            self.latency = float(settings["latency"])
        if "retention" in settings:
            self.retention = float(settings["retention"])
        methods: dict[str, Callable[..., None]] = {
            "insufficient_credits": self.insufficient_credits,
            "rate_limit": self.rate_limit,
            "server_error": self.server_error,
            "fail_jobs": self.fail_jobs,
            "malformed_json": self.malformed_json,
            "slow": self.slow,
            "drop_connection": self.drop_connection,
            "output_url": self.output_url,
        }
        for name, method in methods.items():
            if name not in settings:
                continue
            value = settings[name]
            if isinstance(value, dict):
                method(**value)
            else:
                method(int(value))
        # A key, a list of keys, or null for every key.
        for name, switch in (("out_of_credit", self.out_of_credit), ("top_up", self.top_up)):
            if name in settings:
                value = settings[name]
                for key in value if isinstance(value, list) else [value]:
                    switch(None if key is None else str(key))
        expire = settings.get("expire")
        for request_id in [expire] if isinstance(expire, str) else expire or []:
            self.expire(str(request_id))
        if "advance" in settings:
            self._server.advance(float(settings["advance"]))
        if "rate_window" in settings:
            value = settings["rate_window"]
            if value is None or isinstance(value, int | float):
                self.rate_window(int(value or 0))
            else:
                self.rate_window(**value)

    def plan(self, category: Category, json_answer: bool) -> _Plan:
        """Consume the faults that apply to one request, in a fixed order of precedence."""
        with self._lock:
            if self._drop.take(category):
                return _Plan(drop=True)
            plan = _Plan()
            if self._slow.take(category):
                plan.delay = self.slow_seconds
                plan.delay_ended = self._slow_ended
            if self._rate_limit.take(category):
                plan.status = 429
                plan.error = "Rate Limited: too many requests"
                plan.headers["Retry-After"] = str(math.ceil(self.retry_after))
            elif self._server_error.take(category):
                plan.status = self.server_error_status
                plan.error = {
                    500: "Server Error",
                    502: "Bad Gateway: service temporarily unavailable",
                    503: "Service Unavailable",
                    504: "Timeout: request timed out",
                }[self.server_error_status]
            elif category == "submit" and self._credits.take(category):
                plan.status = 406
                plan.error = "Insufficient credits"
            elif json_answer and self._malformed.take(category):
                plan.malformed = True
            return plan

    def take_failure(self) -> str | None:
        """The error message for a job being submitted, if it is to fail."""
        with self._lock:
            if self._fail_jobs <= 0:
                return None
            self._fail_jobs -= 1
            return self.fail_message


def _scope(scope: str) -> Scope:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    return cast(Scope, scope)


@dataclass
class _Job:
    request_id: str
    kind: Literal["v2", "workflow"]
    slug: str
    params: dict[str, Any]
    job_key: str
    submitted_at: float
    latency: float
    error: str | None
    width: int
    height: int
    transparent: bool = False
    expired: bool = False
    status_polls: int = 0
    result_fetches: int = 0
    downloads: int = 0
    # Its submission was answered late by `Faults.slow` (e.g. after its sender died).
    held: bool = False


def job_key_for(body: Any) -> str:
    """The stats key of a submit without an `x-fake-job` header: a hash of its JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def output_size(slug: str, params: dict[str, Any], packshot_size: int = 2000) -> tuple[int, int]:
    """Width and height of a job's output, as Segmind would render it."""
    if slug in SIZED_SLUGS:
        from jobs import catalog

        try:
            size = catalog.model(slug).output_size(params)
        except (ValueError, TypeError):
            size = None  # a bad megapixel/aspect was already refused; keep the fake simple
        if size is not None:
            return size
    if slug == "bria-product-packshot":
        return packshot_size, packshot_size
    return 1024, 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The benchmark polls hundreds of jobs at once; the default backlog of 5 would refuse.
    request_queue_size = 256

    def __init__(self, fake: FakeSegmind, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, like the real gateway: httpx pools connections across polls.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the second waits
    # for the client's delayed ACK and every answer takes 40 ms more than it should.
    disable_nagle_algorithm = True
    server: _HTTPServer
    # Whether `Faults.slow` held the request being answered (set for each request: the
    # handler serves every request of a kept-alive connection).
    held = False

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.fake._handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.fake._handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # 500 jobs x many polls would drown the test output


class FakeSegmind:
    """The fake server. `start()` binds 127.0.0.1:`port` (0 picks a free port)."""

    def __init__(
        self,
        port: int = 0,
        latency: float = 5.0,
        api_key: str | None = "test-key",
        retention: float = 3600.0,
        packshot_size: int = 2000,
        api_keys: Iterable[str] = (),
    ) -> None:
        self.port = port
        self.api_key = api_key
        # Every key the fake accepts: `api_key` and `api_keys` (a platform key and
        # workspaces' own keys). None of them, and no `api_key`: any key is accepted.
        self.api_keys = set(api_keys) | ({api_key} if api_key else set())
        self.packshot_size = packshot_size
        self._default_latency = latency
        self._default_retention = retention
        self._lock = threading.Lock()
        self.faults = Faults(self, latency, retention)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._png_cache: dict[tuple[int, int, bool], bytes] = {}
        self._png_lock = threading.Lock()
        self._clear_state()

    def _clear_state(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._clock_offset = 0.0
        self._counts: Counter[str] = Counter()
        self._by_key: Counter[str] = Counter()
        # Accepted submissions, and submits refused with 406, per API key sent.
        self._by_api_key: Counter[str] = Counter()
        self._refused_by_api_key: Counter[str] = Counter()
        self._faults_served: Counter[str] = Counter()
        # Per API key: counted request times in the rate window (monotonic), and what
        # the stats report (wall-clock times).
        self._window_sends: dict[str, deque[float]] = {}
        self._rate_stats: dict[str, dict[str, Any]] = {}

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeSegmind:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self, self.port)
        self.port = self._httpd.server_address[1]
        # A short poll interval: stop() waits up to one interval, and tests stop a lot.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-segmind",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeSegmind:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`: what SEGMIND_API_BASE should be set to."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- state -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every job and count, clear the faults, restore latency and retention."""
        with self._lock:
            self._clear_state()
        self.faults.reset()
        self.faults.latency = self._default_latency
        self.faults.retention = self._default_retention

    def expire(self, request_id: str) -> None:
        with self._lock:
            job = self._jobs.get(request_id)
            if job is not None:
                job.expired = True

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward, e.g. past the retention without waiting an hour."""
        with self._lock:
            self._clock_offset += seconds

    def _now(self) -> float:
        return time.monotonic() + self._clock_offset

    def _state(self, job: _Job, now: float) -> str:
        done_at = job.submitted_at + job.latency
        if job.expired or now >= done_at + self.faults.retention:
            return "EXPIRED"
        # A short QUEUED phase first, so clients see every state the real queue shows.
        if now < job.submitted_at + job.latency * 0.2:
            return "QUEUED"
        if now < done_at:
            return "PROCESSING"
        return "FAILED" if job.error else "COMPLETED"

    def stats(self) -> dict[str, Any]:
        """Counts and per-request state; the same document as `GET /_fake/stats`."""
        with self._lock:
            now = self._now()
            return {
                "submissions": self._counts["submissions"],
                "submit_attempts": self._counts["submit_attempts"],
                "submissions_by_key": dict(self._by_key),
                "submissions_by_api_key": dict(self._by_api_key),
                "refused_by_api_key": dict(self._refused_by_api_key),
                "status_polls": self._counts["status_polls"],
                "result_fetches": self._counts["result_fetches"],
                "workflow_polls": self._counts["workflow_polls"],
                "output_downloads": self._counts["output_downloads"],
                "faults_served": dict(self._faults_served),
                "rate_by_api_key": {
                    key: {
                        name: list(value) if isinstance(value, list) else value
                        for name, value in entry.items()
                    }
                    for key, entry in self._rate_stats.items()
                },
                "requests": {
                    job.request_id: {
                        "kind": job.kind,
                        "slug": job.slug,
                        "job_key": job.job_key,
                        "params": job.params,
                        "state": self._state(job, now),
                        "latency": job.latency,
                        "error": job.error,
                        "width": job.width,
                        "height": job.height,
                        "status_polls": job.status_polls,
                        "result_fetches": job.result_fetches,
                        "downloads": job.downloads,
                        "held": job.held,
                    }
                    for job in self._jobs.values()
                },
            }

    # --- images ----------------------------------------------------------------------

    def png(self, width: int, height: int, transparent: bool = False) -> bytes:
        """A flat backdrop with a 'product' on it; encoded once per size."""
        key = (width, height, transparent)
        with self._png_lock:
            cached = self._png_cache.get(key)
            if cached is None:
                cached = _render_png(width, height, transparent)
                self._png_cache[key] = cached
            return cached

    # --- HTTP ------------------------------------------------------------------------

    def _handle(self, h: _Handler, method: str) -> None:
        path = urlsplit(h.path).path
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length > 0 else b""
        try:
            if path.startswith("/_fake/"):
                self._control(h, method, path, raw)
                return
            route = _route(method, path)
            if route is None:
                self._json(h, 404, {"error": "Not Found"})
                return
            name, arg = route
            self._count_attempt(name, arg)
            category: Category = (
                "submit"
                if name in ("submit", "workflow_submit")
                else "output"
                if name == "output"
                else "poll"
            )
            if category != "output":
                self._rate_note(_given_key(h), category)
            plan = self.faults.plan(category, json_answer=name != "output")
            h.held = bool(plan.delay)
            if plan.drop:
                self._served("drop_connection")
                _drop(h)
                return
            if plan.delay:
                self._served("slow")
                if plan.delay_ended is None:
                    time.sleep(plan.delay)
                else:
                    plan.delay_ended.wait(plan.delay)
            if plan.status is not None:
                self._served(str(plan.status))
                if plan.status == 406:
                    self._refused(h)
                if plan.status == 429:
                    self._throttled(_given_key(h), category, plan.headers.get("Retry-After"))
                self._json(h, plan.status, {"error": plan.error}, plan.headers)
                return
            if plan.malformed:
                self._served("malformed_json")
                self._send(h, 200, MALFORMED_BODY, "application/json")
                return
            if name != "output" and not self._authorized(h):
                self._json(h, 401, {"error": "Unauthorized: missing or invalid API key"})
                return
            if category != "output" and not self._window_admits(h, category):
                return
            # Segmind authenticates first: only a key it knows can be out of credit.
            if category == "submit" and self.faults.take_key_credits(_given_key(h)):
                self._served("406")
                self._refused(h)
                self._json(h, 406, {"error": "Insufficient credits"})
                return
            getattr(self, f"_do_{name}")(h, arg, raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its own timeout); nothing left to answer

    def _authorized(self, h: _Handler) -> bool:
        if not self.api_keys:
            return True
        return _given_key(h) in self.api_keys

    def _refused(self, h: _Handler) -> None:
        with self._lock:
            self._refused_by_api_key[_given_key(h)] += 1

    def _count_attempt(self, name: str, arg: str) -> None:
        counter = {
            "submit": "submit_attempts",
            "workflow_submit": "submit_attempts",
            "status": "status_polls",
            "result": "result_fetches",
            "workflow_poll": "workflow_polls",
            "output": "output_downloads",
        }[name]
        with self._lock:
            self._counts[counter] += 1
            job = self._jobs.get(arg.removesuffix(".png"))
            if job is not None:
                if name in ("status", "workflow_poll"):
                    job.status_polls += 1
                elif name == "result":
                    job.result_fetches += 1
                elif name == "output":
                    job.downloads += 1

    def _rate_entry(self, key: str) -> dict[str, Any]:
        entry = self._rate_stats.get(key)
        if entry is None:
            entry = self._rate_stats[key] = {
                "submissions": 0,
                "refused_submissions": 0,
                "polls": 0,
                "refused_polls": 0,
                "requests": [],
                "submitted": [],
                "polled": [],
                "throttled": [],
            }
        return entry

    def _rate_note(self, key: str, category: Category) -> None:
        """Every submit or poll attempt with `key`, refused or not, when it arrived."""
        with self._lock:
            entry = self._rate_entry(key)
            entry["requests"].append(round(time.time(), 4))
            if category == "poll":
                entry["polls"] += 1
                entry["polled"].append(round(time.time(), 4))

    def _throttled(self, key: str, category: Category, retry_after: str | None) -> None:
        with self._lock:
            entry = self._rate_entry(key)
            entry["refused_submissions" if category == "submit" else "refused_polls"] += 1
            after = float(retry_after) if retry_after is not None else None
            entry["throttled"].append([round(time.time(), 4), after])

    def _window_admits(self, h: _Handler, category: Category) -> bool:
        """Count the request against its key's window, or answer 429 (not counted)."""
        rule = self.faults.window_rule()
        if rule is None:
            return True
        n, window, retry_after, count_polls = rule
        if category == "poll" and not count_polls:
            return True
        key = _given_key(h)
        now = time.monotonic()
        with self._lock:
            sends = self._window_sends.setdefault(key, deque())
            while sends and sends[0] <= now - window:
                sends.popleft()
            admitted = len(sends) < n
            if admitted:
                sends.append(now)
        if admitted:
            return True
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        self._served("429")
        self._throttled(key, category, headers.get("Retry-After"))
        self._json(h, 429, {"error": "Rate Limited: too many requests"}, headers)
        return False

    def _served(self, fault: str) -> None:
        with self._lock:
            self._faults_served[fault] += 1

    def _do_submit(self, h: _Handler, slug: str, raw: bytes) -> None:
        job = self._submit(h, "v2", slug, raw)
        if job is None:
            return
        rid = job.request_id
        self._json(
            h,
            200,
            {
                "request_id": rid,
                "status_url": self.url(f"/v2/requests/{rid}/status"),
                "response_url": self.url(f"/v2/requests/{rid}"),
                "status": "QUEUED",
            },
        )

    def _do_workflow_submit(self, h: _Handler, workflow_id: str, raw: bytes) -> None:
        job = self._submit(h, "workflow", workflow_id, raw)
        if job is None:
            return
        rid = job.request_id
        self._json(
            h,
            200,
            {
                "request_id": rid,
                "poll_url": self.url(f"/workflows/request/{rid}"),
                "status": "QUEUED",
            },
        )

    def _submit(
        self, h: _Handler, kind: Literal["v2", "workflow"], slug: str, raw: bytes
    ) -> _Job | None:
        known = V2_SLUGS if kind == "v2" else (WORKFLOW_ID,)
        if slug not in known:
            what = "Model" if kind == "v2" else "Workflow"
            self._json(h, 404, {"error": f"{what} not found: {slug}"})
            return None
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            params = None
        if not isinstance(params, dict):
            self._json(h, 400, {"error": "Bad Request: the body must be a JSON object"})
            return None
        missing = _missing_required(slug, params)
        if missing:
            self._json(h, 400, {"error": f"Bad Request: missing required fields {missing}"})
            return None
        try:
            latency_header = h.headers.get("x-fake-latency")
            latency = float(latency_header) if latency_header else self.faults.latency
        except ValueError:
            self._json(h, 400, {"error": "Bad Request: x-fake-latency must be a number"})
            return None
        width, height = output_size(slug, params, self.packshot_size)
        job = _Job(
            request_id=str(uuid.uuid4()),
            kind=kind,
            slug=slug,
            params=params,
            job_key=h.headers.get("x-fake-job") or job_key_for(params),
            submitted_at=0.0,
            latency=max(0.0, latency),
            error=self.faults.take_failure(),
            width=width,
            height=height,
            transparent=params.get("background_color") == "transparent",
            held=h.held,
        )
        with self._lock:
            job.submitted_at = self._now()
            self._jobs[job.request_id] = job
            self._counts["submissions"] += 1
            self._by_key[job.job_key] += 1
            self._by_api_key[_given_key(h)] += 1
            entry = self._rate_entry(_given_key(h))
            entry["submissions"] += 1
            entry["submitted"].append(round(time.time(), 4))
        return job

    def _lookup(self, request_id: str, kind: str) -> tuple[_Job, str] | None:
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None or job.kind != kind:
                return None
            state = self._state(job, self._now())
            return (job, state) if state != "EXPIRED" else None

    def _completed(
        self, h: _Handler, request_id: str, kind: str, failed_status: int
    ) -> _Job | None:
        """The job if it is COMPLETED; otherwise answers 404, FAILED or its state itself."""
        found = self._lookup(request_id, kind)
        if found is None:
            self._json(h, 404, {"error": "Request not found"})
            return None
        job, state = found
        if state == "FAILED":
            body = {"status": "FAILED", "request_id": request_id, "error": job.error}
            self._json(h, failed_status, body)
            return None
        if state != "COMPLETED":
            self._json(h, 200, {"status": state, "request_id": request_id})
            return None
        return job

    def _do_status(self, h: _Handler, request_id: str, raw: bytes) -> None:
        if self._completed(h, request_id, "v2", failed_status=422) is not None:
            self._json(h, 200, {"status": "COMPLETED", "request_id": request_id})

    def _do_result(self, h: _Handler, request_id: str, raw: bytes) -> None:
        job = self._completed(h, request_id, "v2", failed_status=422)
        if job is None:
            return
        output: str
        if job.slug == "qwen-image-edit-plus-product-photography" and job.params.get("base64"):
            output = base64.b64encode(self.png(job.width, job.height)).decode("ascii")
        else:
            output = self.faults.take_output_url() or self.url(f"/outputs/{request_id}.png")
        self._json(
            h,
            200,
            {
                "status": "COMPLETED",
                "request_id": request_id,
                "output": output,
                "metrics": {"inference_time": round(job.latency, 3)},
            },
        )

    def _do_workflow_poll(self, h: _Handler, request_id: str, raw: bytes) -> None:
        # The protocol gives 422 only for v2; the PixelFlow poll answers 200 with the
        # error in the body (the SDK's pixelflows.run returns such a body as it is).
        job = self._completed(h, request_id, "workflow", failed_status=200)
        if job is None:
            return
        document = {
            "request_id": request_id,
            "workflow_id": job.slug,
            "outputs": {
                "image": {
                    "url": self.faults.take_output_url() or self.url(f"/outputs/{request_id}.png"),
                    "content_type": "image/png",
                    "width": job.width,
                    "height": job.height,
                }
            },
            "metrics": {"execution_time": round(job.latency, 3)},
        }
        self._json(
            h,
            200,
            {"status": "COMPLETED", "request_id": request_id, "output": json.dumps(document)},
        )

    def _do_output(self, h: _Handler, filename: str, raw: bytes) -> None:
        request_id = filename.removesuffix(".png")
        with self._lock:
            job = self._jobs.get(request_id)
            state = self._state(job, self._now()) if job is not None else "EXPIRED"
        if job is None or state != "COMPLETED" or not filename.endswith(".png"):
            self._send(h, 404, b"Not Found", "text/plain")
            return
        self._send(h, 200, self.png(job.width, job.height, job.transparent), "image/png")

    def _control(self, h: _Handler, method: str, path: str, raw: bytes) -> None:
        if method == "GET" and path == "/_fake/stats":
            self._json(h, 200, self.stats())
        elif method == "GET" and path == "/_fake/faults":
            self._json(h, 200, self.faults.snapshot())
        elif method == "POST" and path == "/_fake/faults":
            try:
                settings = json.loads(raw or b"{}")
                if not isinstance(settings, dict):
                    raise ValueError("the body must be a JSON object")
                self.faults.apply(settings)
            except (ValueError, TypeError) as e:
                self._json(h, 400, {"error": str(e)})
                return
            self._json(h, 200, self.faults.snapshot())
        elif method == "POST" and path == "/_fake/reset":
            self.reset()
            self._json(h, 200, self.faults.snapshot())
        else:
            self._json(h, 404, {"error": "Not Found"})

    def _json(
        self,
        h: _Handler,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send(h, status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self,
        h: _Handler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)


def _given_key(h: _Handler) -> str:
    # The SDK sends x-api-key everywhere; the workflow page's example sends a Bearer token.
    bearer = h.headers.get("Authorization", "")
    return h.headers.get("x-api-key") or (
        bearer[len("Bearer ") :] if bearer.startswith("Bearer ") else ""
    )


def _route(method: str, path: str) -> tuple[str, str] | None:
    parts = path.strip("/").split("/")
    if method == "POST" and len(parts) == 2 and parts[0] == "v2" and parts[1] != "requests":
        return "submit", parts[1]
    if method == "GET" and len(parts) == 4 and parts[:2] == ["v2", "requests"]:
        return ("status", parts[2]) if parts[3] == "status" else None
    if method == "GET" and len(parts) == 3 and parts[:2] == ["v2", "requests"]:
        return "result", parts[2]
    if method == "POST" and len(parts) == 2 and parts[0] == "workflows":
        return "workflow_submit", parts[1]
    if method == "GET" and len(parts) == 3 and parts[:2] == ["workflows", "request"]:
        return "workflow_poll", parts[2]
    if method == "GET" and len(parts) == 2 and parts[0] == "outputs":
        return "output", parts[1]
    return None


def _missing_required(slug: str, params: dict[str, Any]) -> list[str]:
    from jobs import catalog

    spec = catalog.get_model(slug)
    if spec is None:
        return []
    return [
        name for name, p in spec.params.items() if p.required and params.get(name) in (None, "")
    ]


def _drop(h: _Handler) -> None:
    h.close_connection = True
    with contextlib.suppress(OSError):  # the client may already be gone
        h.connection.shutdown(socket.SHUT_RDWR)


def _render_png(width: int, height: int, transparent: bool) -> bytes:
    mode = "RGBA" if transparent else "RGB"
    backdrop = (0, 0, 0, 0) if transparent else (236, 229, 218)
    image = Image.new(mode, (width, height), backdrop)
    draw = ImageDraw.Draw(image)
    # A mug-ish block with a shadow: enough shape for thumbnails and crops to be visible.
    w, h = width, height
    draw.ellipse((w * 0.3, h * 0.78, w * 0.7, h * 0.86), fill=(170, 160, 150, 255))
    draw.rectangle((w * 0.35, h * 0.3, w * 0.65, h * 0.82), fill=(200, 80, 50, 255))
    draw.ellipse((w * 0.35, h * 0.26, w * 0.65, h * 0.34), fill=(220, 110, 80, 255))
    buffer = io.BytesIO()
    # Level 1: the flat colours compress well anyway, and encoding stays in milliseconds.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_segmind",
        description="Run the fake Segmind API on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=9100, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=5.0, help="seconds until COMPLETED")
    parser.add_argument("--api-key", default="test-key", help="the key clients must send")
    parser.add_argument(
        "--also-accept", action="append", default=[], help="another key to accept (repeatable)"
    )
    parser.add_argument("--retention", type=float, default=3600.0, help="seconds kept")
    parser.add_argument(
        "--rate-limit",
        default="",
        help="per-key limit, N/<seconds>s or N/min (e.g. 20/60s): more answers 429",
    )
    parser.add_argument(
        "--retry-after", type=float, default=None, help="the 429's Retry-After (default: none)"
    )
    parser.add_argument(
        "--count-polls", action="store_true", help="status and result polls count too"
    )
    args = parser.parse_args(argv)
    rate = None
    if args.rate_limit:
        from jobs.engines.segmind.ratelimit import parse_rate

        try:
            rate = parse_rate(args.rate_limit)
        except ValueError as e:
            parser.error(f"--rate-limit: {e}")
    fake = FakeSegmind(
        port=args.port,
        latency=args.latency,
        api_key=args.api_key,
        retention=args.retention,
        api_keys=args.also_accept,
    ).start()
    if rate is not None:
        fake.faults.rate_window(
            rate.limit, rate.window, retry_after=args.retry_after, count_polls=args.count_polls
        )
    # Flushed at once: scripts and tests read this line to learn the port.
    print(f"fake Segmind listening on {fake.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
