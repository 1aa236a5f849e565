"""The studio's figures on /metrics, read from the database at each scrape: what any web
machine shows after real rows exist, a 429 received by a dispatcher included."""

from __future__ import annotations

import importlib
import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from prometheus_client.parser import text_string_to_metric_families

from accounts import services as account_services
from accounts.models import DeliveryStatus, Tenant, User, WebhookDelivery, WebhookEventType
from jobs import dispatcher as provider
from jobs import services
from jobs.engines.segmind import ratelimit
from jobs.models import Job, JobPrice, JobStatus, JobTally, SegmindKeyBudget
from productstudio.lib.context import LogContextFilter
from tests.support.fake_segmind import FakeSegmind

# Ended jobs are counted when their end commits (jobs/services/tallies.py): these tests
# commit for real rather than inside one test transaction that never does.
pytestmark = pytest.mark.django_db(transaction=True)

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


def _job(
    tenant: Tenant, *, engine: str, status: str, took: float | None = None, own_key: bool = False
) -> Job:
    job = Job.objects.create(
        tenant=tenant, model=PACKSHOT, engine=engine, status=status, own_key=own_key
    )
    if took is not None:
        created = timezone.now() - timedelta(seconds=100)
        Job.objects.filter(pk=job.pk).update(
            created_at=created, completed_at=created + timedelta(seconds=took)
        )
    return job


def _succeeded(tenant: Tenant, *, engine: str, took: float) -> Job:
    """A job that succeeds through the studio's own service, `took` seconds after it was
    submitted."""
    job = _job(tenant, engine=engine, status=JobStatus.RUNNING)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=took))
    job.refresh_from_db()
    assert services.job_succeed(job=job)
    return job


def _failed(tenant: Tenant, *, engine: str) -> Job:
    job = _job(tenant, engine=engine, status=JobStatus.RUNNING)
    assert services.job_fail(job_id=job.pk, code="engine_error", message="It broke.")
    return job


def _canceled(tenant: Tenant, *, engine: str) -> Job:
    job = _job(tenant, engine=engine, status=JobStatus.QUEUED)
    assert services.job_cancel(job=job)
    return job


def _family(samples: dict, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {k[1]: v for k, v in samples.items() if k[0] == name}


def test_jobs_are_counted_by_state_and_engine(client, settings, tenant):
    _succeeded(tenant, engine="local", took=3)
    _succeeded(tenant, engine="local", took=40)
    _failed(tenant, engine="local")
    _canceled(tenant, engine="segmind")
    _job(tenant, engine="segmind", status=JobStatus.QUEUED)
    _job(tenant, engine="local", status=JobStatus.RUNNING)

    samples = _scrape(client, settings)

    # The unfinished ones, counted live.
    assert _family(samples, "productstudio_jobs") == {
        (("engine", "segmind"), ("state", "queued")): 1,
        (("engine", "local"), ("state", "running")): 1,
    }
    # The ended ones, from the running totals the services keep.
    assert _family(samples, "productstudio_jobs_finished_total") == {
        (("engine", "local"), ("state", "succeeded")): 2,
        (("engine", "local"), ("state", "failed")): 1,
        (("engine", "local"), ("state", "canceled")): 0,
        (("engine", "segmind"), ("state", "succeeded")): 0,
        (("engine", "segmind"), ("state", "failed")): 0,
        (("engine", "segmind"), ("state", "canceled")): 1,
    }


def test_submit_to_stored_latency_is_a_histogram_per_engine(client, settings, tenant):
    _succeeded(tenant, engine="local", took=3)
    _succeeded(tenant, engine="local", took=40)
    _succeeded(tenant, engine="segmind", took=250)
    _failed(tenant, engine="segmind")  # not stored: not in the histogram

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
    assert samples[(f"{name}_sum", (("engine", "local"),))] == pytest.approx(43, abs=2)
    assert [bucket("segmind", le) for le in ("120.0", "300.0")] == [0, 1]
    assert samples[(f"{name}_count", (("engine", "segmind"),))] == 1


def test_ended_jobs_stay_counted_when_their_workspace_is_deleted(
    client, settings, tenant, outsider
):
    other = Tenant.objects.get(memberships__user=outsider)
    _succeeded(tenant, engine="local", took=3)
    _succeeded(other, engine="local", took=8)
    _failed(other, engine="local")
    before = _scrape(client, settings)

    other.delete()

    after = _scrape(client, settings)
    for name in (
        "productstudio_jobs_finished_total",
        "productstudio_job_submit_to_stored_seconds_bucket",
        "productstudio_job_submit_to_stored_seconds_count",
        "productstudio_job_submit_to_stored_seconds_sum",
    ):
        assert _family(after, name) == _family(before, name), name
    assert (
        after[("productstudio_jobs_finished_total", (("engine", "local"), ("state", "succeeded")))]
        == 2
    )


def test_a_job_ended_twice_by_racing_runs_is_counted_once(tenant):
    job = _succeeded(tenant, engine="local", took=3)
    _failed(tenant, engine="local")
    job.refresh_from_db()

    assert not services.job_succeed(job=job)
    assert not services.job_fail(job_id=job.pk, code="engine_error", message="Late.")
    assert not services.job_cancel(job=job)

    tally = JobTally.objects.get(engine="local")
    assert (tally.succeeded, tally.failed, tally.canceled, tally.latency_count) == (1, 1, 0, 1)


def test_an_end_that_is_rolled_back_is_not_counted(tenant):
    _succeeded(tenant, engine="local", took=3)
    job = _job(tenant, engine="local", status=JobStatus.RUNNING)

    with pytest.raises(RuntimeError), transaction.atomic():
        assert services.job_succeed(job=job)
        raise RuntimeError("the caller's batch failed")

    tally = JobTally.objects.get(engine="local")
    assert (tally.succeeded, tally.latency_count) == (1, 1)


def test_a_transaction_that_ends_many_jobs_counts_them_in_one_update_per_engine(tenant):
    # The rows exist already (an engine's first ended job makes its row).
    _succeeded(tenant, engine="local", took=3)
    _succeeded(tenant, engine="segmind", took=3)
    running = [_job(tenant, engine=e, status=JobStatus.RUNNING) for e in ["segmind"] * 5]
    local = _job(tenant, engine="local", status=JobStatus.RUNNING)

    with (
        CaptureQueriesContext(connection) as queries,
        transaction.atomic(),
        services.job_tallies_gathered(),
    ):
        for job in running[:3]:
            assert services.job_succeed(job=job)
        for job in running[3:]:
            assert services.job_fail(job_id=job.pk, code="engine_error", message="Broke.")
        assert services.job_fail(job_id=local.pk, code="engine_error", message="Broke.")

    tally_updates = [
        q["sql"] for q in queries.captured_queries if re.match(r'UPDATE "jobs_jobtally"', q["sql"])
    ]
    assert len(tally_updates) == 2
    segmind = JobTally.objects.get(engine="segmind")
    assert (segmind.succeeded, segmind.failed, segmind.latency_count) == (4, 2, 4)
    local_tally = JobTally.objects.get(engine="local")
    assert (local_tally.succeeded, local_tally.failed, local_tally.latency_count) == (1, 1, 1)


def test_a_gathered_end_rolled_back_to_its_savepoint_is_not_counted(tenant):
    undone, kept = (_job(tenant, engine="segmind", status=JobStatus.RUNNING) for _ in range(2))

    with transaction.atomic(), services.job_tallies_gathered():
        with pytest.raises(RuntimeError), transaction.atomic():
            assert services.job_succeed(job=undone)
            raise RuntimeError("this job's part of the batch failed")
        assert services.job_succeed(job=kept)

    tally = JobTally.objects.get(engine="segmind")
    assert (tally.succeeded, tally.latency_count) == (1, 1)
    assert Job.objects.get(pk=undone.pk).status == JobStatus.RUNNING


def test_a_scrape_reads_only_unfinished_jobs_from_the_jobs_table(client, settings, tenant):
    for took in (1, 2, 3):
        _succeeded(tenant, engine="local", took=took)
    _job(tenant, engine="local", status=JobStatus.QUEUED)
    settings.METRICS_TOKEN = TOKEN

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    on_jobs = [q["sql"] for q in queries.captured_queries if '"jobs_job"' in q["sql"]]
    assert on_jobs, "the unfinished jobs are counted live"
    for sql in on_jobs:
        # Every read of the jobs table is bounded to the few unfinished jobs (the partial
        # index's states), never a scan of every job that ever ended.
        assert re.search(r'"jobs_job"\."status" IN \(', sql), sql
        assert "'succeeded'" not in sql and "'failed'" not in sql, sql


def test_the_ended_jobs_totals_are_backfilled_from_the_jobs_already_there(tenant):
    _job(tenant, engine="local", status=JobStatus.SUCCEEDED, took=3)
    _job(tenant, engine="local", status=JobStatus.SUCCEEDED, took=40)
    _job(tenant, engine="segmind", status=JobStatus.FAILED, took=5)
    _job(tenant, engine="segmind", status=JobStatus.QUEUED)
    JobTally.objects.all().delete()
    migration = importlib.import_module("jobs.migrations.0019_job_tallies")

    migration.tallies_backfill(django_apps, None)

    local = JobTally.objects.get(engine="local")
    assert (local.succeeded, local.failed, local.canceled) == (2, 0, 0)
    assert local.latency_count == 2
    assert local.latency_sum == pytest.approx(43)
    assert dict(local.latency_buckets())[2.0] == 0
    assert dict(local.latency_buckets())[5.0] == 1
    assert dict(local.latency_buckets())[60.0] == 2
    segmind = JobTally.objects.get(engine="segmind")
    assert (segmind.succeeded, segmind.failed, segmind.latency_count) == (0, 1, 0)


def test_a_slow_database_fails_a_scrapes_part_within_its_statement_timeout(
    client, settings, tenant, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("the statement timeout is PostgreSQL's")
    monkeypatch.setattr("jobs.metrics.SCRAPE_STATEMENT_TIMEOUT_MS", 200)

    def slow_counts() -> Iterator[tuple[str, str, int]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(30)")
        yield from ()

    monkeypatch.setattr("jobs.metrics.job_state_counts", slow_counts)
    _succeeded(tenant, engine="local", took=3)

    began = time.monotonic()
    samples = _scrape(client, settings)

    assert time.monotonic() - began < 10
    assert samples[("productstudio_metrics_errors", ())] == 1
    # The other parts, after the one that timed out, are still read.
    assert samples[("productstudio_job_submit_to_stored_seconds_count", (("engine", "local"),))]


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


OWN_KEY = "own-key-of-the-shop-0001"
NEW_OWN_KEY = "own-key-of-the-shop-0002"


@pytest.fixture
def keys_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segmind accepts any own key (nothing is asked)."""
    monkeypatch.setattr("accounts.services.segmind_key._verifier", lambda key: False)


def _own_key_set(tenant: Tenant, key: str) -> str:
    by = User.objects.filter(memberships__tenant=tenant).first()
    assert by is not None
    account_services.segmind_key_set(tenant=tenant, by=by, key=key)
    return services.segmind_key_id(key)


@pytest.mark.usefixtures("keys_accepted")
def test_budget_use_per_segmind_key_is_read_from_its_saved_gate(client, settings, tenant):
    settings.SEGMIND_API_KEY = PLATFORM_KEY
    platform_id = services.segmind_key_id(PLATFORM_KEY)
    own_id = _own_key_set(tenant, OWN_KEY)
    gate = ratelimit.KeyGate(ratelimit.Rate(50, 60.0))
    now = time.time()
    for i in range(7):
        gate.take(now - 10 + i)
    SegmindKeyBudget.objects.create(
        key_id=platform_id, limit=50, window_seconds=60, adaptive_limit=50, state=gate.to_state()
    )
    SegmindKeyBudget.objects.create(key_id=own_id, tenant=tenant, limit=5, window_seconds=60)

    samples = _scrape(client, settings)

    platform = (("key_id", platform_id), ("owner", "platform"))
    own = (("key_id", own_id), ("owner", f"workspace:{tenant.pk}"))
    assert samples[("productstudio_segmind_budget_used", platform)] == 7
    assert samples[("productstudio_segmind_budget_limit", platform)] == 50
    assert samples[("productstudio_segmind_budget_limit", own)] == 5
    assert samples[("productstudio_segmind_budget_used", own)] == 0
    assert samples[("productstudio_segmind_429_total", platform)] == 0


@pytest.mark.usefixtures("keys_accepted")
def test_a_replaced_or_removed_keys_budget_is_not_reported_so_no_job_is_counted_twice(
    client, settings, tenant, outsider
):
    settings.SEGMIND_API_KEY = PLATFORM_KEY
    platform_id = services.segmind_key_id(PLATFORM_KEY)
    other = Tenant.objects.get(memberships__user=outsider)
    old_id = _own_key_set(tenant, OWN_KEY)
    new_id = _own_key_set(tenant, NEW_OWN_KEY)
    gone_id = _own_key_set(other, "own-key-of-the-other-shop")
    account_services.segmind_key_clear(tenant=other, by=outsider)
    for key_id, owner in (
        (platform_id, None),
        (old_id, tenant),
        (new_id, tenant),
        (gone_id, other),
    ):
        SegmindKeyBudget.objects.create(key_id=key_id, tenant=owner, limit=10)
    for _ in range(3):
        _job(tenant, engine="segmind", status=JobStatus.QUEUED, own_key=True)
    _job(tenant, engine="segmind", status=JobStatus.QUEUED)  # on the platform's key
    _job(other, engine="segmind", status=JobStatus.QUEUED)
    _job(other, engine="segmind", status=JobStatus.RUNNING)  # sent already: not queued

    samples = _scrape(client, settings)

    assert _family(samples, "productstudio_segmind_jobs_queued") == {
        (("key_id", platform_id), ("owner", "platform")): 2,
        (("key_id", new_id), ("owner", f"workspace:{tenant.pk}")): 3,
    }
    assert set(_family(samples, "productstudio_segmind_budget_limit")) == {
        (("key_id", platform_id), ("owner", "platform")),
        (("key_id", new_id), ("owner", f"workspace:{tenant.pk}")),
    }


@pytest.mark.usefixtures("keys_accepted")
def test_the_keys_queued_jobs_are_counted_in_one_query_however_many_keys(
    settings, tenant, django_assert_max_num_queries
):
    settings.SEGMIND_API_KEY = PLATFORM_KEY
    SegmindKeyBudget.objects.create(key_id=services.segmind_key_id(PLATFORM_KEY), limit=10)
    for n in range(4):
        user = User.objects.create_user(email=f"shop{n}@shops.test", password="x")
        shop = account_services.tenant_create(name=f"Shop {n}", owner=user)
        key_id = _own_key_set(shop, f"own-key-of-shop-{n:04d}")
        SegmindKeyBudget.objects.create(key_id=key_id, tenant=shop, limit=10)
        _job(shop, engine="segmind", status=JobStatus.QUEUED, own_key=True)

    # The workspaces with own keys, their budgets, the queued jobs grouped by key.
    with django_assert_max_num_queries(3) as queries:
        views = services.segmind_budgets_in_use_view()

    assert len(views) == 5
    assert sorted(view.jobs_waiting for view in views) == [0, 1, 1, 1, 1]
    assert sum('"jobs_job"' in q["sql"] for q in queries.captured_queries) == 1


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
