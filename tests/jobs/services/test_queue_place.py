"""A waiting job's place in line and a batch's estimated finish (issue 17, point 7): in
the service (`jobs.selectors.queue`), the API's job and batch, and the portal's pages and their
status JSON. Jobs are made queued directly: nothing runs, so the places hold still."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Lease, SegmindPlan, Tenant, User
from jobs.engines.segmind import ratelimit
from jobs.models import Batch, Job, JobStatus, SegmindKeyBudget
from jobs.selectors import queue as queueing
from jobs.views.progress import finish_text, queue_text
from tests.support.api_helpers import key_client

PACKSHOT = "bria-product-packshot"
LOCAL = PACKSHOT
T0 = timezone.now() - timedelta(minutes=5)


@pytest.fixture
def other_shop(outsider: User) -> Tenant:
    return Tenant.objects.get(memberships__user=outsider)


@pytest.fixture(autouse=True)
def _platform_limit(settings: Any) -> None:
    settings.SEGMIND_RATE_LIMIT = "6/min"
    settings.Q_WORKERS = 2


def _job(
    tenant: Tenant,
    seconds: float,
    *,
    engine: str = "segmind",
    own_key: bool = False,
    status: str = JobStatus.QUEUED,
    batch: Batch | None = None,
    **fields: Any,
) -> Job:
    """A job made `seconds` after T0 (so the order of creation is the test's)."""
    return Job.objects.create(
        tenant=tenant,
        model=PACKSHOT if engine == "segmind" else LOCAL,
        engine=engine,
        own_key=own_key,
        status=status,
        batch=batch,
        created_at=T0 + timedelta(seconds=seconds),
        **fields,
    )


def _place(job: Job, now: datetime | None = None) -> queueing.QueuePlace:
    job = Job.objects.select_related("tenant").get(pk=job.pk)
    place = queueing.job_queue_place(job=job, now=now)
    assert place is not None
    return place


def _budget(tenant: Tenant | None, gate: ratelimit.KeyGate) -> SegmindKeyBudget:
    return SegmindKeyBudget.objects.create(
        key_id=f"key-{tenant.pk if tenant else 'platform'}",
        tenant=tenant,
        limit=gate.rate.limit,
        window_seconds=gate.rate.window,
        adaptive_limit=gate.adaptive,
        state=gate.to_state(),
    )


# --- the service -----------------------------------------------------------------------


def test_only_a_queued_job_has_a_place(tenant: Tenant) -> None:
    for status in [s for s in JobStatus if s != JobStatus.QUEUED]:
        job = _job(tenant, 0, status=status)
        assert queueing.job_queue_place(job=job) is None


def test_two_workspaces_segmind_jobs_interleave_in_positions(
    tenant: Tenant, other_shop: Tenant
) -> None:
    batch = [_job(tenant, i) for i in range(5)]
    single = _job(other_shop, 10)
    assert [_place(job).position for job in batch] == [1, 3, 4, 5, 6]
    # The other shop's one job goes second, not behind the whole batch.
    assert _place(single).position == 2
    assert _place(single).ahead == 1


def test_every_place_is_the_jobs_rank_in_the_order_its_line_is_served(
    tenant: Tenant, other_shop: Tenant, outsider: User
) -> None:
    third = Tenant.objects.create(name="Third Shop", slug="third-shop")
    # Mixed arrivals: batches and single jobs, two engines, own keys and the platform's.
    shops = [tenant, other_shop, third]
    for i in range(36):
        shop = shops[(i * 7) % 5 % 3]
        _job(shop, i, engine="local" if i % 4 == 0 else "segmind", own_key=i % 6 == 1)
    # Served at different times (a workspace never served goes first on a tie).
    _job(
        tenant,
        100,
        engine="local",
        status=JobStatus.RUNNING,
        started_at=T0 + timedelta(seconds=200),
    )
    _job(
        other_shop,
        101,
        engine="local",
        status=JobStatus.SUCCEEDED,
        started_at=T0 + timedelta(seconds=150),
    )
    platform = list(Job.objects.filter(own_key=False).segmind_in_turn())
    assert [_place(job).position for job in platform] == list(range(1, len(platform) + 1))
    own = list(Job.objects.filter(own_key=True, tenant=tenant).segmind_in_turn())
    assert [_place(job).position for job in own] == list(range(1, len(own) + 1))
    local = list(Job.objects.local_in_turn())
    assert [_place(job).position for job in local] == list(range(1, len(local) + 1))
    # Turns: no workspace's second job before every workspace's first.
    assert len({job.tenant_id for job in platform[:3]}) == 3


def test_jobs_claimed_and_not_yet_sent_count_as_ahead(tenant: Tenant, other_shop: Tenant) -> None:
    _job(other_shop, 0, status=JobStatus.RUNNING)  # claimed, at the key's gate
    _job(other_shop, 1, status=JobStatus.RUNNING, provider_request_id="req-1")  # sent
    job = _job(tenant, 2)
    assert _place(job).ahead == 1


def test_an_own_keys_queue_is_apart_from_the_platforms(tenant: Tenant, other_shop: Tenant) -> None:
    for i in range(4):
        _job(other_shop, i)
    own = _job(tenant, 10, own_key=True)
    platform = _job(tenant, 11)
    assert _place(own).position == 1
    assert _place(platform).position == 2
    # Another workspace's own key is another line too.
    assert _place(_job(other_shop, 12, own_key=True)).position == 1


def test_the_start_follows_the_keys_budget(settings: Any, tenant: Tenant) -> None:
    now = timezone.now()
    jobs = [_job(tenant, i) for i in range(8)]
    # 6 a minute, spread evenly from an idle key: the first now, then one every 10 s.
    assert _place(jobs[0], now).estimated_start_at == now
    sixth = (_place(jobs[5], now).estimated_start_at - now).total_seconds()
    assert 49 <= sixth <= 51
    seventh = (_place(jobs[6], now).estimated_start_at - now).total_seconds()
    assert 59 <= seventh <= 62
    # A higher limit brings it in: 60 a minute is one a second, six at once.
    settings.SEGMIND_RATE_LIMIT = "60/min"
    assert (_place(jobs[6], now).estimated_start_at - now).total_seconds() <= 2


def test_a_closed_gate_pushes_the_start_out(tenant: Tenant) -> None:
    now = timezone.now()
    job = _job(tenant, 0)
    assert _place(job, now).estimated_start_at == now
    gate = ratelimit.KeyGate(ratelimit.parse_rate("6/min"))
    gate.on_429(now.timestamp(), retry_after=120)
    _budget(None, gate)
    start = _place(job, now).estimated_start_at
    assert 119 <= (start - now).total_seconds() <= 121


def test_requests_sent_in_the_window_take_the_budget(tenant: Tenant) -> None:
    now = timezone.now()
    gate = ratelimit.KeyGate(ratelimit.parse_rate("6/min"))
    for i in range(6):
        gate.take(now.timestamp() - 30 + i)
    _budget(None, gate)
    start = _place(_job(tenant, 0), now).estimated_start_at
    assert 25 <= (start - now).total_seconds() <= 35


def test_an_own_key_starts_from_the_workspaces_plan(tenant: Tenant) -> None:
    now = timezone.now()
    tenant.segmind_plan = SegmindPlan.FREE  # 5 a minute: one every 12 s
    tenant.save()
    jobs = [_job(tenant, i, own_key=True) for i in range(6)]
    assert _place(jobs[0], now).estimated_start_at == now
    assert 47 <= (_place(jobs[4], now).estimated_start_at - now).total_seconds() <= 49
    assert (_place(jobs[5], now).estimated_start_at - now).total_seconds() >= 59
    tenant.segmind_plan = SegmindPlan.PRO  # 120 a minute: two a second, twelve at once
    tenant.save()
    assert _place(jobs[5], now).estimated_start_at == now


def test_local_jobs_take_turns_by_the_workspaces_running_jobs(
    tenant: Tenant, other_shop: Tenant
) -> None:
    # The shop has a local job running: the other shop's queued job goes first.
    _job(tenant, 0, engine="local", status=JobStatus.RUNNING)
    mine = [_job(tenant, 1 + i, engine="local") for i in range(3)]
    theirs = _job(other_shop, 10, engine="local")
    assert _place(theirs).position == 1
    assert [_place(job).position for job in mine] == [2, 3, 4]
    # Segmind jobs are in another line.
    assert _place(_job(other_shop, 11)).position == 1


def test_a_local_start_is_about_one_usual_time_per_round_of_workers(tenant: Tenant) -> None:
    now = timezone.now()
    done = now - timedelta(minutes=1)
    for i in range(3):
        _job(
            tenant,
            -100 - i,
            engine="local",
            status=JobStatus.SUCCEEDED,
            started_at=done,
            completed_at=done + timedelta(seconds=4),
        )
    jobs = [_job(tenant, i, engine="local") for i in range(5)]
    starts = [(_place(job, now).estimated_start_at - now).total_seconds() for job in jobs]
    # Two workers, four seconds a job.
    assert starts == [4, 4, 8, 8, 12]


def test_a_batch_finishes_after_its_last_job_in_turn(tenant: Tenant, other_shop: Tenant) -> None:
    now = timezone.now()
    Lease.objects.create(name="segmind-dispatcher", state={"expected": {PACKSHOT: 20.0}})
    batch = Batch.objects.create(tenant=tenant)
    jobs = [_job(tenant, i, batch=batch) for i in range(8)]
    _job(other_shop, 100)
    last = _place(jobs[-1], now)
    assert last.position == 9
    finish = queueing.batch_finish_estimate(batch=batch, now=now)
    assert finish == last.estimated_start_at + timedelta(seconds=20)
    assert (finish - now).total_seconds() >= 60


def test_a_batch_with_nothing_queued_finishes_when_its_running_jobs_should(
    tenant: Tenant,
) -> None:
    now = timezone.now()
    batch = Batch.objects.create(tenant=tenant)
    started = now - timedelta(seconds=3)
    _job(tenant, 0, batch=batch, status=JobStatus.RUNNING, started_at=started)
    _job(tenant, 1, batch=batch, status=JobStatus.SUCCEEDED)
    typical = queueing.model_typical_seconds(model=PACKSHOT, engine="segmind")
    assert queueing.batch_finish_estimate(batch=batch, now=now) == started + timedelta(
        seconds=typical
    )


def test_a_done_batch_has_no_estimate(tenant: Tenant) -> None:
    batch = Batch.objects.create(tenant=tenant)
    _job(tenant, 0, batch=batch, status=JobStatus.SUCCEEDED)
    _job(tenant, 1, batch=batch, status=JobStatus.FAILED)
    assert queueing.batch_finish_estimate(batch=batch) is None


def test_the_place_takes_a_fixed_number_of_queries(tenant: Tenant, other_shop: Tenant) -> None:
    def queries(n: int) -> int:
        for i in range(n):
            _job(other_shop, 1000 + n * 10 + i)
            _job(other_shop, 1000 + n * 10 + i, engine="local")
        segmind_job = _job(tenant, 5000 + n)
        local_job = _job(tenant, 5000 + n, engine="local")
        with CaptureQueriesContext(connection) as ctx:
            _place(segmind_job)
            _place(local_job)
        return len(ctx)

    assert queries(1) == queries(30)


# --- the API ---------------------------------------------------------------------------


def test_the_api_shows_a_queued_jobs_place_and_null_once_it_runs(
    tenant: Tenant, other_shop: Tenant
) -> None:
    _job(other_shop, 0)
    job = _job(tenant, 1)
    client = key_client(tenant)
    body = client.get(reverse("api_job", args=[job.pk])).json()
    assert body["queue"]["position"] == 2
    assert body["queue"]["ahead"] == 1
    assert datetime.fromisoformat(body["queue"]["estimated_start_at"].replace("Z", "+00:00"))
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    assert client.get(reverse("api_job", args=[job.pk])).json()["queue"] is None


def test_the_jobs_list_leaves_the_place_to_each_jobs_own_route(tenant: Tenant) -> None:
    _job(tenant, 0)
    results = key_client(tenant).get(reverse("api_jobs")).json()["results"]
    assert [row["queue"] for row in results] == [None]


def test_another_workspace_gets_404_for_a_queued_job(tenant: Tenant, other_shop: Tenant) -> None:
    job = _job(tenant, 0)
    response = key_client(other_shop).get(reverse("api_job", args=[job.pk]))
    assert response.status_code == 404
    assert "queue" not in response.json()


def test_the_api_shows_a_batchs_estimated_finish_until_it_is_done(tenant: Tenant) -> None:
    batch = Batch.objects.create(tenant=tenant)
    job = _job(tenant, 0, batch=batch)
    client = key_client(tenant)
    body = client.get(reverse("api_batch", args=[batch.pk])).json()
    assert body["estimated_finish_at"] is not None
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert client.get(reverse("api_batch", args=[batch.pk])).json()["estimated_finish_at"] is None


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


@pytest.mark.parametrize("route", ["api_job", "job_detail", "job_status"])
def test_a_queued_jobs_route_takes_as_many_queries_behind_50_jobs_as_behind_1(
    route: str, owner_client: Client, tenant: Tenant, other_shop: Tenant
) -> None:
    client = key_client(tenant) if route == "api_job" else owner_client

    def url(job: Job) -> str:
        args: list[Any] = [job.pk] if route == "api_job" else [tenant.slug, job.pk]
        return str(reverse(route, args=args))

    _job(other_shop, 0)
    first = _job(tenant, 1)
    # Once before counting: the first request writes the key's last-used time.
    client.get(url(first))
    few = _queries(client, url(first))
    for i in range(50):
        _job(other_shop, 2 + i)
        _job(tenant, 2 + i, batch=None)
    last = _job(tenant, 100)
    assert _place(last).position == 103
    assert _queries(client, url(last)) == few


# --- the portal ------------------------------------------------------------------------


def test_queue_words_say_the_place_and_the_wait() -> None:
    now = timezone.now()

    def text(position: int, seconds: float, engine: str = "segmind") -> str:
        place = queueing.QueuePlace(position, position - 1, now + timedelta(seconds=seconds))
        return queue_text(place=place, engine=engine, now=now)

    assert text(12, 40) == "In line: 12th for Segmind · starts in about 40 s"
    assert text(1, 0) == "In line: 1st for Segmind · should start any moment"
    assert text(2, 150, "local") == "In line: 2nd for a worker · starts in about 2 min"
    assert text(13, 3 * 3600) == "In line: 13th for Segmind · starts in about 3 h 00 min"
    finish = now + timedelta(minutes=3)
    assert finish_text(finish=finish, now=now) == (
        f"Estimated finish: about 3 min ({timezone.localtime(finish):%H:%M})"
    )


@pytest.mark.parametrize("who", ["owner", "member"])
def test_the_job_page_and_its_status_say_a_queued_jobs_place(
    who: str,
    owner_client: Client,
    member_client: Client,
    tenant: Tenant,
    other_shop: Tenant,
) -> None:
    client = owner_client if who == "owner" else member_client
    _job(other_shop, 0)
    job = _job(tenant, 1)
    page = client.get(reverse("job_detail", args=[tenant.slug, job.pk])).content.decode()
    assert '<p id="job-queue" class="muted">In line: 2nd for Segmind' in page
    # Waiting its turn is not "longer than usual": the time bar waits for the start.
    assert '<div id="job-progress" class="job-progress" hidden>' in page
    data = client.get(reverse("job_status", args=[tenant.slug, job.pk])).json()
    assert data["queue"]["position"] == 2
    assert data["queue"]["text"].startswith("In line: 2nd for Segmind · ")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    page = client.get(reverse("job_detail", args=[tenant.slug, job.pk])).content.decode()
    assert '<p id="job-queue" class="muted" hidden>' in page
    assert '<div id="job-progress" class="job-progress">' in page
    assert client.get(reverse("job_status", args=[tenant.slug, job.pk])).json()["queue"] is None


def test_an_outsider_gets_404_for_a_queued_jobs_page_and_status(
    outsider_client: Client, tenant: Tenant
) -> None:
    job = _job(tenant, 0)
    for route in ["job_detail", "job_status"]:
        response = outsider_client.get(reverse(route, args=[tenant.slug, job.pk]))
        assert response.status_code == 404


def test_the_batch_page_and_its_status_say_the_estimated_finish(
    member_client: Client, tenant: Tenant
) -> None:
    batch = Batch.objects.create(tenant=tenant)
    jobs = [_job(tenant, i, batch=batch) for i in range(3)]
    page = member_client.get(reverse("batch_detail", args=[tenant.slug, batch.pk])).content
    assert b'<p id="batch-estimate" class="muted small">Estimated finish: about ' in page
    data = member_client.get(reverse("batch_status", args=[tenant.slug, batch.pk])).json()
    assert data["estimated_finish_text"].startswith("Estimated finish: about ")
    assert data["estimated_finish_at"]
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(status=JobStatus.SUCCEEDED)
    data = member_client.get(reverse("batch_status", args=[tenant.slug, batch.pk])).json()
    assert (data["estimated_finish_at"], data["estimated_finish_text"]) == (None, "")
