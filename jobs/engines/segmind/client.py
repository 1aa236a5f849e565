"""Segmind's API over httpx: submit a generation, poll it, read what it made.

The protocol is described in `docs/segmind.md`. Two kinds of endpoint:

- "v2" models: `POST {base}/v2/{slug}` answers a `request_id` with a `status_url` and a
  `response_url`; the status URL is polled until COMPLETED or FAILED, then the response URL
  holds the `output` (a URL, a list of URLs, base64 image data, or a dict holding them).
- "workflow" (PixelFlow): `POST {base}/workflows/{id}` answers a `poll_url`; polling it
  gives the state and, once COMPLETED, an `output` that is a JSON document sent as a
  string, with the image somewhere inside it.

The client is async-first: the orchestrator polls hundreds of requests from one event
loop with one `SegmindClient`, whose gate keeps requests from queueing inside the
connection pool (see the "Waiting on a slow remote API" notes). Every failure becomes a
`SegmindError` with a stable code, a sentence for a shop owner, and `retryable` set for
the transient ones; `call_with_retries` is the backoff to wrap single calls in.

The error type and its codes live in `errors.py`, and finding the images in an answer in
`outputs.py`; callers keep importing `SegmindError`, `Output` and `find_outputs` from here.

The API key is sent in headers only. It is never logged, never shown by `repr`, and
scrubbed from any text Segmind echoes back before it lands in an error.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import heapq
import ipaddress
import itertools
import json
import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx

from jobs.engines.segmind.errors import _STATUS_CODES, SegmindError, _error
from jobs.engines.segmind.outputs import Output, _parse_workflow_output, find_outputs

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUEUED: Final = "QUEUED"
PROCESSING: Final = "PROCESSING"
COMPLETED: Final = "COMPLETED"
FAILED: Final = "FAILED"
STATES: Final = frozenset({QUEUED, PROCESSING, COMPLETED, FAILED})
KINDS: Final = ("v2", "workflow")

DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
DEFAULT_MAX_CONNECTIONS: Final = 50

# Segmind's text goes into messages a person reads; a whole HTML error page would not help.
_PROVIDER_TEXT_LIMIT = 300


@dataclass(frozen=True)
class Submission:
    """Where to find a submitted request again; stored on the job row as JSON."""

    request_id: str
    kind: str
    status_url: str
    result_url: str

    def to_dict(self) -> dict[str, str]:
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "status_url": self.status_url,
            "result_url": self.result_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Submission:
        """The submission `to_dict` stored; ValueError if the data is not one."""
        values = {}
        for name in ("request_id", "kind", "status_url", "result_url"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"a stored Segmind submission needs a text {name}")
            values[name] = value
        if values["kind"] not in KINDS:
            raise ValueError(f"unknown Segmind request kind {values['kind']!r}")
        return cls(**values)


@dataclass(frozen=True)
class Poll:
    """What Segmind said about a request: its state, and its images once COMPLETED."""

    state: str
    error: str | None = None
    outputs: tuple[Output, ...] = ()
    inference_time: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def finished(self) -> bool:
        return self.state in (COMPLETED, FAILED)

    def failure(self) -> SegmindError | None:
        """The `provider_failed` error to record for a FAILED request, else None."""
        if self.state != FAILED:
            return None
        return _error("provider_failed", self.error or "")


# A request id no submission ever gets: `key_check` asks for its status.
KEY_CHECK_REQUEST_ID = "00000000-0000-0000-0000-000000000000"


def key_check(*, api_key: str, base_url: str) -> None:
    """`SegmindClient.key_check` from synchronous code (the portal's settings page)."""

    async def check() -> None:
        async with SegmindClient(api_key=api_key, base_url=base_url, max_connections=1) as c:
            await call_with_retries(c.key_check, attempts=2)

    asyncio.run(check())


class SegmindClient:
    """An async Segmind client: one per event loop, shared by every request it polls.

    Requests wait on a gate as wide as the connection pool, so hundreds of polls queue
    here rather than inside httpx's pool, where they would run into its pool timeout.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if not api_key:
            raise ValueError("a Segmind API key is required")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        base = httpx.URL(base_url.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError("the Segmind base URL must be an http(s) URL")
        self._api_key = api_key
        self._base = base
        self.base_url = str(base).rstrip("/")
        self.max_connections = max_connections
        self._gate = PriorityGate(max_connections)
        # Every request checks where the key may go; the same few URLs come back often.
        self._key_ok: dict[str, bool] = {}
        # Several small connection pools rather than one large one: httpcore's pool does
        # work quadratic in its size on every request (50 connections cost more CPU than
        # the request itself). Each request takes the least busy pool; the gate keeps the
        # total within max_connections, so a pool never has to queue.
        sizes = [POOL_SIZE] * (max_connections // POOL_SIZE)
        if max_connections % POOL_SIZE:
            sizes.append(max_connections % POOL_SIZE)
        # One TLS context for all of them, and for every client in the process (the
        # dispatcher keeps one client per key): each costs ~40 ms to build.
        tls = _tls_context()
        self._pools = [
            httpx.AsyncClient(
                transport=transport,
                verify=tls,
                timeout=timeout,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                # Proxies and netrc from the environment must not see the key.
                trust_env=False,
                # A redirect would carry the key to wherever it points.
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": "ProductStudio"},
            )
            for size in sizes
        ]
        self._busy = [0] * len(self._pools)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"max_connections={self.max_connections})"
        )

    async def __aenter__(self) -> SegmindClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    @property
    def is_closed(self) -> bool:
        return all(pool.is_closed for pool in self._pools)

    # --- the three calls ---------------------------------------------------------

    async def submit(self, slug: str, kind: str, params: Mapping[str, Any]) -> Submission:
        """Start a generation; the Submission says where to poll it.

        Not safe to repeat blindly: a timeout or dropped connection after the request
        was sent may still have started (and billed) a generation.
        """
        _check_kind(kind)
        if not slug:
            raise ValueError("a Segmind model slug is required")
        prefix = "v2" if kind == "v2" else "workflows"
        url = f"{self.base_url}/{prefix}/{quote(slug, safe='')}"
        response = await self._send("POST", url, kind, json_body=dict(params))
        if not response.is_success:
            raise self._response_error(response, on_submit=True, slug=slug)
        body = _json_object(response)
        if body is None:
            raise _error(
                "provider_bad_response", "the answer to the submission was not a JSON object"
            )
        return self._submission(kind, body)

    async def status(self, sub: Submission) -> Poll:
        """The request's state. For workflows this is `result()`: both read the poll URL."""
        return await self._poll(sub, sub.status_url, need_outputs=sub.kind == "workflow")

    async def result(self, sub: Submission) -> Poll:
        """The request's state and, once COMPLETED, its images (at least one)."""
        return await self._poll(sub, sub.result_url, need_outputs=True)

    async def key_check(self) -> None:
        """Check the key with a call that costs nothing: the status of a request that
        does not exist. Segmind authenticates first, so a good key gets 404 and a bad one
        401 or 403; 406 means the key is good but its account is out of credit. Raises
        the SegmindError of anything but 404."""
        url = f"{self.base_url}/v2/requests/{KEY_CHECK_REQUEST_ID}/status"
        response = await self._send("GET", url, "v2")
        if response.status_code != 404:
            raise self._response_error(response, on_submit=True, slug="")

    # --- internals ---------------------------------------------------------------

    def _submission(self, kind: str, body: Mapping[str, Any]) -> Submission:
        request_id = _text(body.get("request_id"))
        poll_url = _text(body.get("poll_url"))
        status_url = _text(body.get("status_url"))
        response_url = _text(body.get("response_url"))
        if not request_id and poll_url:
            request_id = httpx.URL(poll_url).path.rstrip("/").rsplit("/", 1)[-1]
        if not request_id:
            raise _error("provider_bad_response", "the answer to the submission has no request_id")
        fallback = f"{self.base_url}/v2/requests/{quote(request_id, safe='')}"
        if kind == "v2":
            status = self._absolute(status_url or poll_url or fallback + "/status")
            result = self._absolute(response_url or poll_url or fallback)
        else:
            # A workflow has one URL for both; the v2 result URL is the documented
            # shape that also answers state and output, so it is the fallback.
            status = result = self._absolute(poll_url or response_url or status_url or fallback)
        for url in (status, result):
            if not self._may_send_key_to(url):
                raise _error(
                    "provider_bad_response",
                    self._redact(
                        f"request {request_id} was accepted but its status address points "
                        f"outside Segmind ({url})"
                    ),
                )
        return Submission(request_id=request_id, kind=kind, status_url=status, result_url=result)

    async def _poll(self, sub: Submission, url: str, *, need_outputs: bool) -> Poll:
        _check_kind(sub.kind)
        response = await self._send("GET", url, sub.kind)
        code = response.status_code
        if code == 404:
            raise self._response_error(response, on_submit=False)
        body = _json_object(response)
        # FAILED comes back as 422 with the state still in the body: a result, not an
        # error of the call itself.
        said_failed = body is not None and _state(body) == FAILED
        if code == 422 or (400 <= code < 500 and said_failed):
            return Poll(
                state=FAILED,
                error=self._redact(_provider_text(response)) or None,
                inference_time=_inference_time(body or {}),
                raw=body or {},
            )
        if not response.is_success:
            raise self._response_error(response, on_submit=False)
        if body is None:
            raise _error("provider_bad_response", "the status answer was not a JSON object")
        return self._read_poll(body, sub.kind, need_outputs=need_outputs)

    def _read_poll(self, body: dict[str, Any], kind: str, *, need_outputs: bool) -> Poll:
        state = _state(body)
        if state is None:
            shown = str(body.get("status"))[:40]
            raise _error("provider_bad_response", f"unknown request state {shown!r}")
        error = None
        outputs: tuple[Output, ...] = ()
        if state == FAILED:
            error = self._redact(_text(body.get("error")) or "") or None
        elif state == COMPLETED:
            value = body.get("output")
            if kind == "workflow":
                value = _parse_workflow_output(value)
            outputs = find_outputs(value)
            if need_outputs and not outputs:
                raise _error(
                    "provider_bad_response",
                    "the request is COMPLETED but the answer holds no image",
                )
        return Poll(
            state=state,
            error=error,
            outputs=outputs,
            inference_time=_inference_time(body),
            raw=body,
        )

    async def _send(
        self, method: str, url: str, kind: str, *, json_body: Any = None
    ) -> httpx.Response:
        if not self._may_send_key_to(url):
            raise _error(
                "provider_bad_response",
                self._redact(f"refused to send the API key to an address outside Segmind ({url})"),
            )
        headers = {"x-api-key": self._api_key}
        if kind == "workflow":
            # The workflow pages authenticate with a bearer token; send both forms.
            headers["Authorization"] = f"Bearer {self._api_key}"
        # Polls of requests already paid for go before new submissions: when the
        # dispatcher is busy, finishing work beats starting more.
        priority = 1 if method == "POST" else 0
        try:
            async with self._gate.slot(priority):
                index = self._busy.index(min(self._busy))
                self._busy[index] += 1
                try:
                    return await self._pools[index].request(
                        method, url, headers=headers, json=json_body
                    )
                finally:
                    self._busy[index] -= 1
        except httpx.TimeoutException as exc:
            raise _error("provider_timeout", self._exc_text(exc)) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _error("provider_connection", self._exc_text(exc)) from exc
        except httpx.DecodingError as exc:
            raise _error("provider_bad_response", self._exc_text(exc)) from exc
        except httpx.HTTPError as exc:
            # Our own side's fault (bad URL scheme, local protocol error): no retry helps.
            err = _error("provider_connection", self._exc_text(exc))
            err.retryable = False
            raise err from exc

    def _response_error(
        self, response: httpx.Response, *, on_submit: bool, slug: str = ""
    ) -> SegmindError:
        status = response.status_code
        text = self._redact(_provider_text(response))
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        sentence = None
        if status in _STATUS_CODES:
            code = _STATUS_CODES[status]
        elif status == 404 and on_submit:
            code = "provider_not_found"
            sentence = (
                f'Segmind does not offer the model or workflow "{slug}", '
                "so the image could not be made."
            )
        elif status == 404:
            code = "result_expired"
        elif status >= 500:
            code = "provider_unavailable"
        elif status >= 400:
            code = "provider_bad_request"
        else:
            # 1xx/3xx: redirects are not followed, so there is no answer to read.
            code = "provider_bad_response"
            text = text or f"unexpected HTTP {status}"
        return _error(code, text, status=status, retry_after=retry_after, sentence=sentence)

    def _absolute(self, url: str) -> str:
        if url.startswith(("https://", "http://")):
            return url  # already absolute (the usual answer); where it points is checked apart
        return str(httpx.URL(self.base_url + "/").join(url))

    def _may_send_key_to(self, url: str) -> bool:
        known = self._key_ok.get(url)
        if known is None:
            known = self._key_ok[url] = self._check_key_target(url)
            if len(self._key_ok) > 10_000:
                self._key_ok.clear()
        return known

    def _check_key_target(self, url: str) -> bool:
        """Only Segmind's own hosts get the key, whatever a (stored) answer says.

        The base host and its siblings under the same parent domain are accepted
        (api.segmind.com -> *.segmind.com); an IP or a two-label base host must match
        exactly. An https base never downgrades to http.
        """
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return False
        if target.scheme not in ("http", "https") or not target.host:
            return False
        if self._base.scheme == "https" and target.scheme != "https":
            return False
        host, base_host = target.host.lower(), self._base.host.lower()
        if host == base_host:
            return True
        if _is_ip(base_host) or base_host.count(".") < 2:
            return False
        parent = base_host.split(".", 1)[1]
        return host == parent or host.endswith("." + parent)

    def _redact(self, text: str) -> str:
        # A key that short cannot be real; scrubbing it would mangle ordinary words.
        if len(self._api_key) >= 6:
            text = text.replace(self._api_key, "[redacted]")
        return text

    def _exc_text(self, exc: Exception) -> str:
        detail = str(exc).strip()
        name = type(exc).__name__
        return self._redact(f"{name}: {detail}" if detail else name)[:_PROVIDER_TEXT_LIMIT]


# --- reading answers ------------------------------------------------------------------


POOL_SIZE = 4


class PriorityGate:
    """A semaphore whose waiters go in order of priority (lower first), then arrival."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def slot(self, priority: int = 0) -> _GateSlot:
        return _GateSlot(self, priority)

    async def acquire(self, priority: int = 0) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            # Granted just as it was cancelled: hand the slot on.
            if waiter.done() and not waiter.cancelled():
                self.release()
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class _GateSlot:
    def __init__(self, gate: PriorityGate, priority: int) -> None:
        self._gate = gate
        self._priority = priority

    async def __aenter__(self) -> None:
        await self._gate.acquire(self._priority)

    async def __aexit__(self, *exc_info: object) -> None:
        self._gate.release()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=False)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown Segmind request kind {kind!r} (expected v2 or workflow)")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost"
    return True


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _state(body: Mapping[str, Any]) -> str | None:
    value = body.get("status")
    if isinstance(value, str) and value.strip().upper() in STATES:
        return value.strip().upper()
    return None


def _provider_text(response: httpx.Response) -> str:
    """Segmind's own words about a failure: the body's `error` (as the SDK reads it)."""
    body = _json_object(response)
    text = ""
    if body is not None:
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                text = value
                break
            if isinstance(value, dict | list) and value:
                text = json.dumps(value)
                break
    else:
        raw = response.text.strip()
        # An HTML error page from a proxy says nothing a shop owner can use.
        if raw and not raw.startswith("<"):
            text = raw
    text = " ".join(text.split())
    if len(text) > _PROVIDER_TEXT_LIMIT:
        text = text[: _PROVIDER_TEXT_LIMIT - 1] + "…"
    return text


def _inference_time(body: Mapping[str, Any]) -> float | None:
    metrics = body.get("metrics")
    value = metrics.get("inference_time") if isinstance(metrics, dict) else None
    if value is None:
        value = body.get("inference_time")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# --- retrying -----------------------------------------------------------------------


def backoff_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
    rng: random.Random | None = None,
) -> float:
    """The wait before retry number `attempt + 1` (attempt 0 is the first failure).

    Full jitter: uniform between 0 and `min(max_delay, base_delay * 2**attempt)`, so many
    requests throttled together do not come back together. A `retry_after` from Segmind
    is a floor, but capped at `max_delay`: one long Retry-After must not park the dispatcher,
    and a retry that comes too early just earns another 429 with a fresh Retry-After.
    """
    ceiling = min(max_delay, base_delay * 2.0 ** min(attempt, 60))
    delay = (rng or random).uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_delay))
    return delay


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """`await fn()`, retrying retryable SegmindErrors with backoff (see `backoff_delay`).

    Anything else, and a non-retryable SegmindError, is raised at once; after `attempts`
    calls the last error is raised.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return await fn()
        except SegmindError as exc:
            if not exc.retryable or attempt == attempts - 1:
                raise
            delay = backoff_delay(
                attempt,
                retry_after=exc.retry_after,
                base_delay=base_delay,
                max_delay=max_delay,
                rng=rng,
            )
            logger.info(
                "Segmind call failed (%s, HTTP %s); retry %d of %d in %.2f s",
                exc.code,
                exc.status,
                attempt + 1,
                attempts - 1,
                delay,
            )
            await sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
