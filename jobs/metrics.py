"""The studio's own figures for /metrics, in Prometheus' shapes.

Every figure is read from the database (or the broker) at each scrape, never kept in one
process's memory, so with several web and worker machines any web machine's /metrics shows
the same numbers, a 429 received by a worker's dispatcher included (the dispatcher saves
each key's count of 429s on the key's `SegmindKeyBudget` row at its lease renewals, every
few seconds). Each read stays small however many jobs ever ran: the unfinished jobs are
counted live (a partial index holds only them), the ended ones and the submit-to-stored
histogram come from the running totals the services keep per engine (`JobTally`), and on
PostgreSQL each part's statements stop after SCRAPE_STATEMENT_TIMEOUT_MS.
productstudio/health.py serves it; the names are listed in the README ("Health and
metrics").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from accounts.models import Lease, WebhookDelivery
from jobs import services
from jobs.models import (
    DISPATCHER_LEASE,
    LIVE_STATUSES,
    Job,
    JobTally,
    ProviderPause,
    SegmindKeyBudget,
)

logger = logging.getLogger(__name__)

# How long a scrape waits for Redis (the queue depths) before it reports them missing.
SCRAPE_REDIS_TIMEOUT_SECONDS = 2.0
# How long each of a scrape's database statements may take on PostgreSQL before it is
# stopped (Prometheus' default scrape timeout is 10 s).
SCRAPE_STATEMENT_TIMEOUT_MS = 5000


def _key_labels(budget: SegmindKeyBudget) -> list[str]:
    # The key's digest, never the key; `owner` says whose it is.
    owner = f"workspace:{budget.tenant_id}" if budget.tenant_id else "platform"
    return [budget.key_id, owner]


def job_state_counts() -> Iterator[tuple[str, str, int]]:
    """(state, engine, jobs) of the unfinished jobs (queued, running, waiting for
    Segmind), counted live: few, and read through the partial index that holds only them."""
    rows = (
        Job.objects.filter(status__in=LIVE_STATUSES)
        .order_by()
        .values("status", "engine")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        yield row["status"], row["engine"], row["n"]


def job_tallies() -> list[JobTally]:
    """Per engine, the running totals of ended jobs and the submit-to-stored histogram
    (kept by the services that end a job): one row an engine."""
    return list(JobTally.objects.order_by("engine"))


def latency_histograms() -> dict[str, tuple[list[tuple[str, float]], float]]:
    """Per engine: the cumulative buckets and the sum (seconds) of the time from a job's
    submission (its creation) to its outputs stored (its success)."""
    histograms = {}
    for tally in job_tallies():
        points: list[tuple[str, float]] = [(str(bound), n) for bound, n in tally.latency_buckets()]
        points.append(("+Inf", tally.latency_count))
        histograms[tally.engine] = (points, tally.latency_sum)
    return histograms


@contextmanager
def _bounded_reads() -> Iterator[None]:
    """A transaction whose statements PostgreSQL stops after SCRAPE_STATEMENT_TIMEOUT_MS:
    a slow database fails one part of a scrape instead of piling up scrapes (every
    machine's, every 15 s) on it."""
    if connection.vendor != "postgresql":
        # No such limit elsewhere; and SQLite's IMMEDIATE transactions (the settings) would
        # make each scrape take the write lock the workers need.
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = {int(SCRAPE_STATEMENT_TIMEOUT_MS)}")
        yield


def redis_client(url: str, timeout: float) -> Any:
    """A Redis client that gives up after `timeout` and does not retry: a probe or a
    scrape must answer within its own time limit (Prometheus' default is 10 s), where
    redis-py's default retries with backoff take longer when Redis is down."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def queue_depths() -> dict[str, int]:
    """Tasks waiting in each django-q2 cluster's queue: the broker's own count, on Redis
    through a client that gives up after SCRAPE_REDIS_TIMEOUT_SECONDS."""
    from django_q.brokers import get_broker

    clusters = (settings.Q_NAME, settings.WEBHOOK_Q_CLUSTER)
    if not settings.REDIS_URL:
        return {
            cluster: int(get_broker(list_key=cluster).queue_size() or 0) for cluster in clusters
        }
    client = redis_client(settings.REDIS_URL, SCRAPE_REDIS_TIMEOUT_SECONDS)
    try:
        # The broker's list key (django-q2's naming); making the broker connects nothing.
        return {
            cluster: int(client.llen(get_broker(list_key=cluster).list_key)) for cluster in clusters
        }
    finally:
        client.close()


class StudioCollector:
    """A prometheus_client collector of the studio's figures (one scrape, a handful of
    aggregate queries). A failed read is logged and reported as
    `productstudio_metrics_errors`, so the other figures are still scraped."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        errors = 0
        for part in (
            self._jobs,
            self._latency,
            self._queues,
            self._segmind_keys,
            self._dispatcher,
            self._webhooks,
        ):
            try:
                with _bounded_reads():
                    figures = list(part(now))
                yield from figures
            except DatabaseError as e:
                # The database is down: /readyz says so; one line a part, no traceback.
                errors += 1
                logger.warning("Metrics: %s could not be read: %r", part.__name__.strip("_"), e)
            except Exception:
                errors += 1
                logger.exception("Metrics: %s could not be read", part.__name__.strip("_"))
        yield GaugeMetricFamily(
            "productstudio_metrics_errors",
            "Parts of the studio's figures that could not be read in this scrape.",
            value=errors,
        )

    def _jobs(self, now: datetime) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "productstudio_jobs",
            "Unfinished jobs by state (queued, running, waiting_for_provider) and engine.",
            labels=["state", "engine"],
        )
        for state, engine, n in job_state_counts():
            family.add_metric([state, engine], n)
        ended = CounterMetricFamily(
            "productstudio_jobs_finished",
            "Jobs that ended, by state (succeeded, failed, canceled) and engine, ever.",
            labels=["state", "engine"],
        )
        for tally in job_tallies():
            for state in ("succeeded", "failed", "canceled"):
                ended.add_metric([state, tally.engine], getattr(tally, state))
        return [family, ended]

    def _latency(self, now: datetime) -> Iterable[Metric]:
        family = HistogramMetricFamily(
            "productstudio_job_submit_to_stored_seconds",
            "Time from a job's submission to its outputs stored, of jobs that succeeded.",
            labels=["engine"],
        )
        for engine, (points, total) in latency_histograms().items():
            family.add_metric([engine], points, total)
        return [family]

    def _queues(self, now: datetime) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "productstudio_queue_depth",
            "Tasks waiting in the django-q2 queue, per cluster.",
            labels=["cluster"],
        )
        for cluster, depth in queue_depths().items():
            family.add_metric([cluster], depth)
        return [family]

    def _segmind_keys(self, now: datetime) -> Iterable[Metric]:
        labels = ["key_id", "owner"]
        used = GaugeMetricFamily(
            "productstudio_segmind_budget_used",
            "Requests sent with the key in its current rate window.",
            labels=labels,
        )
        limit = GaugeMetricFamily(
            "productstudio_segmind_budget_limit",
            "Requests the key's budget allows per window (0: unlimited).",
            labels=labels,
        )
        allowed = GaugeMetricFamily(
            "productstudio_segmind_budget_allowed",
            "Requests per window the dispatcher allows itself now (lowered after 429s).",
            labels=labels,
        )
        window = GaugeMetricFamily(
            "productstudio_segmind_budget_window_seconds",
            "The key's rate window.",
            labels=labels,
        )
        closed = GaugeMetricFamily(
            "productstudio_segmind_gate_closed",
            "1 while a 429 keeps the key's gate closed.",
            labels=labels,
        )
        waiting = GaugeMetricFamily(
            "productstudio_segmind_jobs_queued",
            "Segmind jobs queued for the key (not sent yet).",
            labels=labels,
        )
        throttled = CounterMetricFamily(
            "productstudio_segmind_429",
            "429 answers Segmind gave the key, as of the dispatcher's last save.",
            labels=labels,
        )
        for view in services.segmind_budgets_in_use_view(now=now):
            key = _key_labels(view.budget)
            used.add_metric(key, view.used)
            limit.add_metric(key, view.limit)
            allowed.add_metric(key, view.adaptive_limit)
            window.add_metric(key, view.window_seconds)
            closed.add_metric(key, 1 if view.closed_until else 0)
            waiting.add_metric(key, view.jobs_waiting)
            throttled.add_metric(key, view.throttled_total)
        pauses = GaugeMetricFamily(
            "productstudio_segmind_pauses_open",
            "Segmind keys paused because their account is out of credit (406).",
            labels=["owner"],
        )
        counts: dict[str, int] = {"platform": 0, "workspace": 0}
        for tenant_id in ProviderPause.objects.open().values_list("tenant_id", flat=True):
            counts["workspace" if tenant_id else "platform"] += 1
        for owner, n in counts.items():
            pauses.add_metric([owner], n)
        return [used, limit, allowed, window, closed, waiting, throttled, pauses]

    def _dispatcher(self, now: datetime) -> Iterable[Metric]:
        leased_until = (
            Lease.objects.filter(name=DISPATCHER_LEASE)
            .values_list("leased_until", flat=True)
            .first()
        )
        held = leased_until is not None and leased_until > now
        return [
            GaugeMetricFamily(
                "productstudio_dispatcher_lease_held",
                "1 while a Segmind dispatcher holds its lease.",
                value=1 if held else 0,
            )
        ]

    def _webhooks(self, now: datetime) -> Iterable[Metric]:
        figures: dict[str, Any] = WebhookDelivery.objects.pending().aggregate(
            waiting=Count("pk"),
            due=Count("pk", filter=Q(next_attempt_at__lte=now)),
            oldest=Min("created_at"),
            latest=Max("created_at"),
        )
        oldest = figures["oldest"]
        return [
            GaugeMetricFamily(
                "productstudio_webhook_deliveries_waiting",
                "Webhook deliveries not delivered or given up yet (the backlog).",
                value=figures["waiting"],
            ),
            GaugeMetricFamily(
                "productstudio_webhook_deliveries_due",
                "Waiting webhook deliveries whose next attempt is due now.",
                value=figures["due"],
            ),
            GaugeMetricFamily(
                "productstudio_webhook_oldest_waiting_seconds",
                "Age of the oldest waiting webhook delivery (0 when none waits).",
                value=(now - oldest).total_seconds() if oldest else 0.0,
            ),
        ]
