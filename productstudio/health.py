"""What a load balancer and a monitoring system ask each machine: /healthz, /readyz and
/metrics, answered by `HealthMiddleware` before the HTTPS redirect, the host check, the
session and the log-in.

- /healthz: the process answers (200, no database), for a process supervisor's liveness.
- /readyz: this machine can serve: the database, the task broker and the media storage
  answer within READYZ_TIMEOUT_SECONDS each. 200 `ready` (or `degraded`, with warnings)
  when they do, 503 `unready` naming the failing checks when one does not. Two checks only
  warn (200 `degraded`): a Segmind dispatcher lease gone stale while Segmind work waits,
  and open Segmind pauses (406). Both are the whole site's state, not this machine's:
  taking every web machine out of the load balancer for them would turn jobs that wait
  into a site that is down, and the shop's pages already say why their jobs wait.
- /metrics: Prometheus' text format, django-prometheus' request figures and the studio's
  own (jobs.metrics), behind METRICS_TOKEN and/or METRICS_ALLOW; 404 with neither.

Why before the HTTPS redirect and the host check: a load balancer probes each machine at
its own address over plain HTTP, with that address as the Host; a redirect or a 400 for
an unknown host would count as a failed probe. Nothing here reads a session, a tenant's
data or a secret, and the answers say which check failed, never why in a way that leaks
configuration (an exception's class and message, no URL or key).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.models import Lease
from accounts.throttling import client_address
from jobs.metrics import redis_client
from jobs.models import DISPATCHER_LEASE, Job, JobStatus, ProviderPause

logger = logging.getLogger(__name__)

# The key /readyz asks the storage about: whether it exists does not matter, only that the
# storage answers (on S3, one HEAD request).
STORAGE_PROBE_NAME = "readyz/probe"


class CheckFailed(Exception):
    """A check's own verdict, in words safe to show to whoever probes."""


def _failure(e: BaseException) -> str:
    if isinstance(e, CheckFailed):
        return str(e)
    # The class only: a message may hold a host name, a path or a bucket.
    return type(e).__name__


# --- the checks ----------------------------------------------------------------------


def check_database() -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ms = max(1, int(settings.READYZ_TIMEOUT_SECONDS * 1000))
            cursor.execute(f"SET LOCAL statement_timeout = {ms}")
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "answers"


def check_broker() -> str:
    if settings.REDIS_URL:
        client = redis_client(settings.REDIS_URL, settings.READYZ_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
        return "redis answers"
    from django_q.models import OrmQ

    OrmQ.objects.using(str(settings.Q_CLUSTER.get("orm") or "default")).exists()
    return "orm queue table answers"


def check_storage() -> str:
    default_storage.exists(STORAGE_PROBE_NAME)
    return "answers"


def check_dispatcher() -> str:
    """Warns when Segmind work (queued or running jobs) waits and no dispatcher has held
    the lease nor touched that work for DISPATCHER_STALE_SECONDS: no worker is dispatching
    (all workers down, or the jobs cluster not running)."""
    work = Job.objects.filter(engine="segmind", status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
    touched = work.aggregate(at=Max("updated_at"))["at"]
    if touched is None:
        return "no Segmind work" if settings.SEGMIND_API_KEY else "no Segmind key set"
    now = timezone.now()
    leased_until = (
        Lease.objects.filter(name=DISPATCHER_LEASE).values_list("leased_until", flat=True).first()
    )
    if leased_until is not None and leased_until > now:
        return "lease held"
    since = max(filter(None, (leased_until, touched)))
    stale_for = now - since
    if stale_for > timedelta(seconds=settings.DISPATCHER_STALE_SECONDS):
        raise CheckFailed(
            f"Segmind work waits and no dispatcher has held the lease for "
            f"{stale_for.total_seconds():.0f} s: is the jobs cluster (qcluster) running?"
        )
    return "lease free; a dispatcher is due"


def check_segmind_pauses() -> str:
    """Warns while a Segmind key is paused (its account answered 406, out of credit)."""
    owners = list(ProviderPause.objects.open().values_list("tenant_id", flat=True))
    if not owners:
        return "none open"
    platform = sum(1 for tenant_id in owners if tenant_id is None)
    own = len(owners) - platform
    parts = []
    if platform:
        parts.append("the platform's key (top up its Segmind account)")
    if own:
        parts.append(f"{own} workspace key{'s' if own != 1 else ''}")
    raise CheckFailed(f"Segmind paused for want of credit: {' and '.join(parts)}.")


# (name, check, in a thread of its own, only a warning)
CHECKS: list[tuple[str, Callable[[], str], bool, bool]] = [
    ("database", check_database, False, False),
    # The broker and the storage may be other machines with long client timeouts (S3's
    # are a minute): each runs on a thread of its own the probe stops waiting for (_Flight).
    ("broker", check_broker, True, False),
    ("storage", check_storage, True, False),
    ("dispatcher", check_dispatcher, False, True),
    ("segmind_pauses", check_segmind_pauses, False, True),
]
# Checks that read the database: not run (and failed) when the database is not answering.
_ON_DATABASE = {"dispatcher", "segmind_pauses"}


def _timed(check: Callable[[], str], into: dict[str, Any]) -> None:
    began = time.monotonic()
    try:
        detail = check()
        into.update(ok=True, detail=detail)
    except Exception as e:
        into.update(ok=False, detail=_failure(e), error=e)
    finally:
        into["ms"] = round((time.monotonic() - began) * 1000, 1)


# A finished threaded check's result serves the probes of the next second: several load
# balancer nodes (or anyone: /readyz needs no token) probing at once then cost one storage
# request and one Redis ping a second, not one each; a second is short beside any probe
# interval, so an outage still shows on the next probe.
READYZ_CACHE_SECONDS = 1.0


class _Flight:
    """One threaded check, single-flight: a probe that finds it running waits for that run
    (until its own deadline) instead of starting another or failing, and a result younger
    than READYZ_CACHE_SECONDS is reused. Every run happens on one long-lived thread, so the
    clients that keep a connection per thread (django-storages' boto3 session, for one)
    reuse it from probe to probe.

    Not a ThreadPoolExecutor: its threads are joined when the interpreter exits, and a
    check hung on its client's own timeout (S3's is a minute) would hold up a worker's
    shutdown; this thread is a daemon."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], str], Future[dict[str, Any]]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._future: Future[dict[str, Any]] | None = None
        self._finished_at = 0.0
        self.started = 0  # runs begun, for tests and curiosity

    def result(self, check: Callable[[], str]) -> Future[dict[str, Any]]:
        """The running or fresh run of `check`, or a new one."""
        with self._lock:
            future = self._future
            if future is not None and (
                not future.done() or time.monotonic() - self._finished_at < READYZ_CACHE_SECONDS
            ):
                return future
            # A thread started before a fork (a preloading server) is not in this process.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._serve, args=(self._jobs,), name=f"readyz-{self.name}", daemon=True
                )
                self._pid = os.getpid()
                self._thread.start()
            future = Future()
            self._future = future
            self.started += 1
            self._jobs.put((check, future))
            return future

    def _serve(
        self, jobs: queue.SimpleQueue[tuple[Callable[[], str], Future[dict[str, Any]]]]
    ) -> None:
        while True:
            check, future = jobs.get()
            into: dict[str, Any] = {}
            try:
                _timed(check, into)
            except BaseException as e:  # a check's SystemExit must not leave probes waiting
                into.update(ok=False, detail=_failure(e))
            finally:
                # Logged here, once a run, not by each probe the result answers.
                error = into.pop("error", None)
                if error is not None and not isinstance(error, CheckFailed):
                    logger.warning("readyz: %s failed: %r", self.name, error)
                with self._lock:
                    self._finished_at = time.monotonic()
                future.set_result(into)

    def forget(self) -> None:
        """Drop the cached result (tests, and settings changed at run time)."""
        with self._lock:
            if self._future is not None and self._future.done():
                self._future = None


_flights: dict[str, _Flight] = {}
_flights_lock = threading.Lock()


def _flight(name: str) -> _Flight:
    with _flights_lock:
        flight = _flights.get(name)
        if flight is None:
            flight = _flights[name] = _Flight(name)
        return flight


def forget_results() -> None:
    """Forget every cached check result: the next probe asks again."""
    with _flights_lock:
        flights = list(_flights.values())
    for flight in flights:
        flight.forget()


def readiness() -> tuple[int, dict[str, Any]]:
    """Run every check: the HTTP status and the body of /readyz."""
    timeout = settings.READYZ_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    results: dict[str, dict[str, Any]] = {name: {} for name, *_ in CHECKS}
    futures: dict[str, Future[dict[str, Any]]] = {}
    for name, check, threaded, _ in CHECKS:
        # The ORM broker is the database: asked in line, on the request's connection.
        if threaded and not (name == "broker" and not settings.REDIS_URL):
            futures[name] = _flight(name).result(check)
    for name, check, _, _ in CHECKS:
        if name in futures:
            continue
        if name in _ON_DATABASE and not results["database"].get("ok"):
            results[name] = {"ok": False, "detail": "not checked: the database is not answering"}
            continue
        _timed(check, results[name])
    for name, future in futures.items():
        try:
            # A copy: the same result answers every probe that shares the run.
            results[name] = dict(future.result(max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            results[name] = {"ok": False, "detail": f"no answer within {timeout:g} s"}
    failing: list[str] = []
    warnings: list[str] = []
    for name, _, _, warn_only in CHECKS:
        result = results[name]
        error = result.pop("error", None)
        if result.get("ok"):
            continue
        if error is not None and not isinstance(error, CheckFailed):
            logger.warning("readyz: %s failed: %r", name, error)
        (warnings if warn_only else failing).append(name)
        if warn_only:
            result["warning"] = True
    status = "unready" if failing else ("degraded" if warnings else "ready")
    body = {"status": status, "failing": failing, "warnings": warnings, "checks": results}
    return (503 if failing else 200), body


# --- the views -----------------------------------------------------------------------


def _no_store(response: HttpResponseBase) -> HttpResponseBase:
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponseBase:
    return _no_store(JsonResponse({"status": "alive"}))


def readyz(request: HttpRequest) -> HttpResponseBase:
    status, body = readiness()
    return _no_store(JsonResponse(body, status=status))


def _address_allowed(address: str, allowed: list[str]) -> bool:
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A dual-stack listener (`[::]`) sees an IPv4 client as `::ffff:a.b.c.d`: matched as
    # the IPv4 address it is, so `127.0.0.1` or `10.0.0.0/8` in the list means it.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(item, strict=False) for item in allowed)


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics(request: HttpRequest) -> HttpResponseBase:
    token, allowed = settings.METRICS_TOKEN, settings.METRICS_ALLOW
    if not token and not allowed:
        # Off: nothing says it exists.
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    if allowed and not _address_allowed(client_address(request), allowed):
        return HttpResponse(
            "Forbidden: not from an address in METRICS_ALLOW.",
            status=403,
            content_type="text/plain",
        )
    if token and not hmac.compare_digest(_bearer(request).encode(), token.encode()):
        response = HttpResponse(
            "A scrape needs METRICS_TOKEN as `Authorization: Bearer <token>`.",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return _no_store(HttpResponse(metrics_text(), content_type=_content_type()))


def _content_type() -> str:
    from prometheus_client import CONTENT_TYPE_LATEST

    return CONTENT_TYPE_LATEST


def metrics_text() -> bytes:
    """The exposition: this process's (or, under gunicorn with PROMETHEUS_MULTIPROC_DIR,
    every worker process's) request figures, then the studio's, read from the database."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    from jobs.metrics import StudioCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
        base = generate_latest(processes)
    else:
        base = generate_latest(REGISTRY)
    studio = CollectorRegistry(auto_describe=False)
    studio.register(StudioCollector())
    return base + generate_latest(studio)


ROUTES: dict[str, Callable[[HttpRequest], HttpResponseBase]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


class HealthMiddleware:
    """Answers /healthz, /readyz and /metrics (a trailing slash too) before the rest of
    the middleware runs (see the module's docstring for why)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        view = ROUTES.get(request.path.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse("Method not allowed.", status=405, content_type="text/plain")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)
