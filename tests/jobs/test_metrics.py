"""The studio's figures on /metrics, read from the database at each scrape: what any web
machine shows after real rows exist, a 429 received by a dispatcher included."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_q.brokers import get_broker
from prometheus_client.parser import text_string_to_metric_families

from accounts import services as account_services
from accounts.models import DeliveryStatus, Tenant, User, WebhookDelivery, WebhookEventType
from jobs import dispatcher as provider
from jobs import services
from jobs.engines.segmind import ratelimit
from jobs.models import Job, JobPrice, JobStatus, SegmindKeyBudget
from productstudio.lib.context import LogContextFilter
from tests.support.fake_segmind import FakeSegmind

TOKEN = "metrics-token-for-tests"
PLATFORM_KEY = "platform-key-0001"
PACKSHOT = "bria-product-packshot"


def _scrape(client: Any, settings: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _job(tenant: Tenant, *, engine: str, status: str, took: float | None = None) -> Job:
    job = Job.objects.create(tenant=tenant, model=PACKSHOT, engine=engine, status=status)
    if took is not None:
        created = timezone.now() - timedelta(seconds=100)
        Job.objects.filter(pk=job.pk).update(
            created_at=created, completed_at=created + timedelta(seconds=took)
        )
    return job


def test_jobs_are_counted_by_state_and_engine(client, settings, tenant):
    _job(tenant, engine="local", status=JobStatus.SUCCEEDED, took=3)
    _job(tenant, engine="local", status=JobStatus.SUCCEEDED, took=40)
    _job(tenant, engine="local", status=JobStatus.FAILED)
    _job(tenant, engine="segmind", status=JobStatus.QUEUED)

    samples = _scrape(client, settings)

    jobs = {k[1]: v for k, v in samples.items() if k[0] == "productstudio_jobs"}
    assert jobs == {
        (("engine", "local"), ("state", "succeeded")): 2,
        (("engine", "local"), ("state", "failed")): 1,
        (("engine", "segmind"), ("state", "queued")): 1,
    }


def test_submit_to_stored_latency_is_a_histogram_per_engine(client, settings, tenant):
    _job(tenant, engine="local", status=JobStatus.SUCCEEDED, took=3)
    _job(tenant, engine="local", status=JobStatus.SUCCEEDED, took=40)
    _job(tenant, engine="segmind", status=JobStatus.SUCCEEDED, took=250)
    _job(tenant, engine="segmind", status=JobStatus.FAILED, took=5)  # not stored: not counted

    samples = _scrape(client, settings)

    name = "productstudio_job_submit_to_stored_seconds"

    def bucket(engine: str, le: str) -> float:
        return samples[(f"{name}_bucket", (("engine", engine), ("le", le)))]

    assert [bucket("local", le) for le in ("2.0", "5.0", "30.0", "60.0", "+Inf")] == [
        0,
        1,
        1,
        2,
        2,
    ]
    assert samples[(f"{name}_count", (("engine", "local"),))] == 2
    assert samples[(f"{name}_sum", (("engine", "local"),))] == pytest.approx(43)
    assert [bucket("segmind", le) for le in ("120.0", "300.0")] == [0, 1]


def test_the_webhook_backlog_counts_deliveries_still_waiting(client, settings, tenant):
    now = timezone.now()
    for i, (status, due_in) in enumerate(
        [
            (DeliveryStatus.PENDING, -30),  # due now
            (DeliveryStatus.PENDING, 600),  # a retry later
            (DeliveryStatus.SUCCEEDED, -30),
        ]
    ):
        WebhookDelivery.objects.create(
            tenant=tenant,
            url="https://shop.example/hook",
            message_id=f"msg_{i}",
            event_type=WebhookEventType.JOB_SUCCEEDED,
            body="{}",
            status=status,
            next_attempt_at=now + timedelta(seconds=due_in),
            created_at=now - timedelta(seconds=120),
        )

    samples = _scrape(client, settings)

    assert samples[("productstudio_webhook_deliveries_waiting", ())] == 2
    assert samples[("productstudio_webhook_deliveries_due", ())] == 1
    assert samples[("productstudio_webhook_oldest_waiting_seconds", ())] >= 120


def test_queue_depth_is_the_brokers_count_per_cluster(client, settings, db):
    broker = get_broker(list_key=settings.Q_NAME)
    broker.enqueue("a task")
    broker.enqueue("another task")

    samples = _scrape(client, settings)

    assert samples[("productstudio_queue_depth", (("cluster", settings.Q_NAME),))] == 2
    assert samples[("productstudio_queue_depth", (("cluster", "webhooks"),))] == 0


def test_budget_use_per_segmind_key_is_read_from_its_saved_gate(client, settings, tenant):
    gate = ratelimit.KeyGate(ratelimit.Rate(50, 60.0))
    now = time.time()
    for i in range(7):
        gate.take(now - 10 + i)
    SegmindKeyBudget.objects.create(
        key_id="abc123", limit=50, window_seconds=60, adaptive_limit=50, state=gate.to_state()
    )
    SegmindKeyBudget.objects.create(key_id="own456", tenant=tenant, limit=5, window_seconds=60)

    samples = _scrape(client, settings)

    platform = (("key_id", "abc123"), ("owner", "platform"))
    own = (("key_id", "own456"), ("owner", f"workspace:{tenant.pk}"))
    assert samples[("productstudio_segmind_budget_used", platform)] == 7
    assert samples[("productstudio_segmind_budget_limit", platform)] == 50
    assert samples[("productstudio_segmind_budget_limit", own)] == 5
    assert samples[("productstudio_segmind_budget_used", own)] == 0
    assert samples[("productstudio_segmind_429_total", platform)] == 0


def test_a_gates_count_of_429s_is_carried_from_one_dispatcher_run_to_the_next():
    gate = ratelimit.KeyGate(ratelimit.Rate(10, 60.0))
    gate.on_429(time.time(), 1.0)
    gate.on_429(time.time() + 5, 1.0)

    carried = ratelimit.KeyGate.from_state(ratelimit.Rate(10, 60.0), gate.to_state())

    assert carried.throttled_total == 2


# --- a 429 received by the dispatcher shows on /metrics -------------------------------------


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=0.2, api_key=PLATFORM_KEY) as server:
        settings.SEGMIND_API_KEY = PLATFORM_KEY
        settings.SEGMIND_API_BASE = server.base_url
        settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SEGMIND_FIRST_POLL_SECONDS = 0.1
        settings.SEGMIND_POLL_INTERVAL_SECONDS = 0.1
        settings.SEGMIND_RATE_LIMIT = "unlimited"
        yield server


def _dispatch(tenant: Tenant, owner: User, product_jpeg: bytes, n: int) -> None:
    jobs = [
        services.job_submit(
            tenant=tenant,
            user=owner,
            model=PACKSHOT,
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
            params={},
        )
        for _ in range(n)
    ]
    ids = [job.pk for job in jobs]
    deadline = time.monotonic() + 60
    while Job.objects.filter(pk__in=ids).exclude(status=JobStatus.SUCCEEDED).exists():
        assert time.monotonic() < deadline, "the jobs did not finish in time"
        provider.segmind_dispatch(budget_seconds=3)


class _Recorder(logging.Handler):
    """Keeps the records it is given, with the context `LOG_FORMAT=json` writes."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__()
        self.into = into
        self.addFilter(LogContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.mark.usefixtures("no_trial_credits")
def test_a_429_the_dispatcher_received_shows_on_any_machines_metrics(
    client, settings, fake, tenant, owner, product_jpeg
):
    account_services.credits_grant(tenant=tenant, amount=100, user=owner, memo="to spend")
    JobPrice.objects.create(model=PACKSHOT, engine="segmind", credits=2)
    fake.faults.rate_limit(1, retry_after=1, scope="submit")
    lines: list[logging.LogRecord] = []
    handler = _Recorder(lines)
    logging.getLogger("jobs.dispatcher").addHandler(handler)
    try:
        _dispatch(tenant, owner, product_jpeg, n=2)
    finally:
        logging.getLogger("jobs.dispatcher").removeHandler(handler)
    # A later dispatcher run starts from the saved gate and keeps its count.
    _dispatch(tenant, owner, product_jpeg, n=1)

    samples = _scrape(client, settings)

    [key_id] = SegmindKeyBudget.objects.values_list("key_id", flat=True)
    platform = (("key_id", key_id), ("owner", "platform"))
    assert samples[("productstudio_segmind_429_total", platform)] == 1
    assert samples[("productstudio_segmind_jobs_queued", platform)] == 0
    assert samples[("productstudio_metrics_errors", ())] == 0
    # The dispatcher's line about the 429 names the job it was sending.
    [throttled] = [r for r in lines if "rate-limited" in r.getMessage()]
    assert getattr(throttled, "job_id", "") in {
        str(pk) for pk in Job.objects.values_list("pk", flat=True)
    }


def test_a_broker_that_is_down_costs_the_scrape_only_the_queue_depth(
    client, settings, tenant, monkeypatch
):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    monkeypatch.setattr("django_q.conf.Conf.REDIS", settings.REDIS_URL)
    monkeypatch.setattr("django_q.conf.Conf.ORM", None)
    _job(tenant, engine="local", status=JobStatus.QUEUED)

    began = time.monotonic()
    samples = _scrape(client, settings)

    assert time.monotonic() - began < 5  # within a scrape's time, no retries with backoff

    assert samples[("productstudio_metrics_errors", ())] == 1
    assert not [key for key in samples if key[0] == "productstudio_queue_depth"]
    assert samples[("productstudio_jobs", (("engine", "local"), ("state", "queued")))] == 1


def test_queue_depth_on_redis_is_the_length_of_each_clusters_list(
    client, settings, db, monkeypatch
):
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs with TEST_REDIS_URL (.ci/run starts redis-server)")
        pytest.skip("no TEST_REDIS_URL: no Redis server to count")
    settings.REDIS_URL = url
    settings.Q_NAME = f"metrics-test-{os.getpid()}"
    monkeypatch.setattr("django_q.conf.Conf.REDIS", url)
    monkeypatch.setattr("django_q.conf.Conf.ORM", None)
    broker = get_broker(list_key=settings.Q_NAME)
    broker.delete_queue()
    try:
        for n in range(3):
            broker.enqueue(f"task {n}")

        samples = _scrape(client, settings)
    finally:
        broker.delete_queue()

    assert samples[("productstudio_queue_depth", (("cluster", settings.Q_NAME),))] == 3
