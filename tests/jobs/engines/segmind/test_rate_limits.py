"""Segmind's per-key rate limits, against the fake Segmind enforcing a sliding window: the
dispatcher paces each key to its budget, a 429 closes that key's gate and never fails a
job, queued jobs are claimed in turns across workspaces, and a job that waits past the
limit fails once, with its credits given back.

The dispatcher runs in the test's process (`segmind_dispatch` with a short budget), so
the fake's clock and the test's are the same."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts import services as account_services
from accounts.models import CreditKind, Lease, SegmindPlan, Tenant, User
from jobs import dispatcher as provider
from jobs import services
from jobs.engines.segmind import ratelimit
from jobs.models import Job, JobPrice, JobStatus, SegmindKeyBudget
from jobs.selectors import queue as queueing
from tests.support.fake_segmind import FakeSegmind

pytestmark = pytest.mark.usefixtures("no_trial_credits")

PLATFORM_KEY = "platform-key-0001"
OWN_KEY = "sg_own_key_of_the_shop_9876"
PACKSHOT = "bria-product-packshot"
PRICE = 2


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=0.2, api_key=PLATFORM_KEY, api_keys=[OWN_KEY]) as server:
        settings.SEGMIND_API_KEY = PLATFORM_KEY
        # Delivery, not price, is tested here: a model no operator priced is free.
        settings.SEGMIND_DEFAULT_PRICE = 0
        settings.SEGMIND_API_BASE = server.base_url
        settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SEGMIND_FIRST_POLL_SECONDS = 0.1
        settings.SEGMIND_POLL_INTERVAL_SECONDS = 0.1
        settings.SEGMIND_RATE_LIMIT = "unlimited"
        yield server


@pytest.fixture
def priced(tenant: Tenant, owner: User) -> JobPrice:
    account_services.credits_grant(tenant=tenant, amount=100, user=owner, memo="to spend")
    return JobPrice.objects.update_or_create(
        model=PACKSHOT, engine="segmind", defaults={"credits": PRICE}
    )[0]


@pytest.fixture
def other_shop(outsider: User) -> Tenant:
    return Tenant.objects.get(memberships__user=outsider)


def _queue(tenant: Tenant, user: User, product_jpeg: bytes, n: int = 1) -> list[Job]:
    """`n` packshot jobs, queued; nothing runs until the test dispatches."""
    return [
        services.job_submit(
            tenant=tenant,
            user=user,
            model=PACKSHOT,
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
            params={},
        )
        for _ in range(n)
    ]


def _dispatch_until(done: Callable[[], bool], seconds: float = 60.0) -> None:
    """Run dispatchers (each hands over after a few seconds, as in production) until
    `done()` or the deadline."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the jobs did not finish in time"
        provider.segmind_dispatch(budget_seconds=3)


def _all_finished(jobs: list[Job]) -> Callable[[], bool]:
    ids = [job.pk for job in jobs]
    return lambda: not Job.objects.filter(pk__in=ids).exclude(status=JobStatus.SUCCEEDED).exists()


def _statuses(jobs: list[Job]) -> list[str]:
    for job in jobs:
        job.refresh_from_db()
    return [job.status for job in jobs]


def _most_in_any_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered[i:] if t < start + window) for i, start in enumerate(ordered)),
        default=0,
    )


# --- pacing --------------------------------------------------------------------------------


def test_a_batch_larger_than_the_window_finishes_with_no_failed_job_and_no_429(
    fake, settings, tenant, owner, priced, product_jpeg
):
    settings.SEGMIND_RATE_LIMIT = "4/2s"
    fake.faults.rate_window(4, window=2, retry_after=1)
    jobs = _queue(tenant, owner, product_jpeg, n=12)

    _dispatch_until(_all_finished(jobs))

    stats = fake.stats()["rate_by_api_key"][PLATFORM_KEY]
    assert stats["submissions"] == 12
    # Paced, not found by refusals: a loaded machine may see one late arrival at most.
    assert stats["refused_submissions"] <= 1
    assert _most_in_any_window(stats["submitted"], 2.0) <= 4
    for job in Job.objects.filter(pk__in=[j.pk for j in jobs]):
        assert job.attempts == 1
        kinds = list(job.credit_entries.values_list("kind", flat=True).order_by("id"))
        assert kinds == [CreditKind.HOLD, CreditKind.CAPTURE]


def test_the_windows_history_is_kept_for_the_next_dispatcher(
    fake, settings, tenant, owner, priced, product_jpeg
):
    settings.SEGMIND_RATE_LIMIT = "2/60s"
    first, second, third = _queue(tenant, owner, product_jpeg, n=3)

    provider.segmind_dispatch(budget_seconds=2)
    provider.segmind_dispatch(budget_seconds=1)

    # One slot every 30 s: the first dispatcher sends one; the next one carries on with
    # the window's sends and the pace's bucket (a fresh, full bucket would send another).
    assert fake.stats()["submissions"] == 1
    assert _statuses([first, second, third])[1:] == [JobStatus.QUEUED] * 2
    budget = SegmindKeyBudget.objects.get(tenant=None)
    assert (budget.limit, budget.window_seconds) == (2, 60.0)
    assert len(budget.state["sends"]) == 1
    assert budget.state["tokens"] < 1


def test_with_polls_counted_polls_and_submissions_share_the_budget(
    fake, settings, tenant, owner, priced, product_jpeg
):
    settings.SEGMIND_RATE_LIMIT = "6/2s"
    settings.SEGMIND_RATE_LIMIT_COUNTS_POLLS = True
    fake.faults.rate_window(6, window=2, retry_after=1, count_polls=True)
    jobs = _queue(tenant, owner, product_jpeg, n=6)

    _dispatch_until(_all_finished(jobs))

    stats = fake.stats()["rate_by_api_key"][PLATFORM_KEY]
    assert stats["refused_submissions"] + stats["refused_polls"] <= 1
    assert _most_in_any_window(stats["submitted"] + stats["polled"], 2.0) <= 6 + 1
    # Lean polling: a few polls a job, not one every 0.1 s.
    assert stats["polls"] <= 6 * 4


# --- 429s never fail a job -------------------------------------------------------------------


def test_after_a_429_with_retry_after_no_request_for_the_key_is_sent_before_it(
    fake, tenant, owner, priced, product_jpeg
):
    fake.faults.rate_limit(1, retry_after=2, scope="submit")
    jobs = _queue(tenant, owner, product_jpeg, n=4)

    _dispatch_until(_all_finished(jobs))

    stats = fake.stats()["rate_by_api_key"][PLATFORM_KEY]
    [(refused_at, retry_after)] = stats["throttled"]
    assert retry_after == 2
    # Requests already on their way when the 429 was sent may arrive just after it.
    early = [t for t in stats["requests"] if refused_at + 0.25 < t < refused_at + retry_after]
    assert early == []
    assert stats["submissions"] == 4


def test_a_429_without_retry_after_leaves_jobs_queued_uncharged_and_lowers_the_budget(
    fake, settings, tenant, owner, priced, product_jpeg
):
    settings.SEGMIND_RATE_LIMIT = "50/min"
    fake.faults.rate_window(1, window=60)  # Segmind allows less than we were told
    jobs = _queue(tenant, owner, product_jpeg, n=3)
    ids = [job.pk for job in jobs]

    _dispatch_until(
        lambda: Job.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED).exists(), seconds=30
    )

    assert sorted(_statuses(jobs)) == [JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.SUCCEEDED]
    for job in jobs:
        if job.status == JobStatus.QUEUED:
            assert (job.attempts, job.error_code, job.started_at) == (0, "", None)
            assert list(job.credit_entries.values_list("kind", flat=True)) == [CreditKind.HOLD]
    # Lowered by a fifth for each 429 (a slow run may have met more than one).
    budget = SegmindKeyBudget.objects.get(tenant=None)
    assert 1 <= budget.adaptive_limit <= 40.0
    assert budget.state["throttles"]


def test_a_429_on_a_poll_is_waited_out_not_counted_as_a_polling_error(
    fake, settings, tenant, owner, priced, product_jpeg
):
    settings.SEGMIND_POLL_MAX_ERRORS = 2
    fake.faults.rate_limit(4, retry_after=0.3, scope="poll")
    jobs = _queue(tenant, owner, product_jpeg, n=1)

    _dispatch_until(_all_finished(jobs), seconds=30)

    assert fake.stats()["faults_served"]["429"] == 4
    assert fake.stats()["submissions"] == 1


def test_a_huge_retry_after_is_capped_and_logged(
    fake, settings, tenant, owner, priced, product_jpeg, caplog
):
    settings.SEGMIND_RETRY_AFTER_MAX_SECONDS = 1
    fake.faults.rate_limit(1, retry_after=86_400, scope="submit")
    jobs = _queue(tenant, owner, product_jpeg, n=1)

    with caplog.at_level(logging.WARNING, logger="jobs.dispatcher"):
        _dispatch_until(_all_finished(jobs), seconds=30)

    assert "SEGMIND_RETRY_AFTER_MAX_SECONDS" in caplog.text
    assert fake.stats()["submissions"] == 1


def test_429_on_every_request_keeps_jobs_waiting_then_the_limit_fails_them_once_refunded(
    fake, settings, tenant, owner, priced, product_jpeg
):
    fake.faults.rate_limit(10**6, retry_after=1)
    jobs = _queue(tenant, owner, product_jpeg, n=3)

    provider.segmind_dispatch(budget_seconds=3)

    assert _statuses(jobs) == [JobStatus.QUEUED] * 3
    assert all(job.attempts == 0 for job in jobs)
    # The API shows them as waiting in the queue (the job page and list read the same).
    assert Job.objects.segmind_queued().count() == 3
    settings.SEGMIND_RATE_WAIT_LIMIT_SECONDS = 3600
    Job.objects.filter(pk=jobs[0].pk).update(created_at=timezone.now() - timedelta(hours=2))

    services.jobs_sweep()
    services.jobs_sweep()

    first = jobs[0]
    first.refresh_from_db()
    assert first.status == JobStatus.FAILED
    assert first.error_code == "provider_rate_limited"
    assert "No credit was taken" in first.error_message
    assert list(first.credit_entries.values_list("kind", flat=True).order_by("id")) == [
        CreditKind.HOLD,
        CreditKind.RELEASE,
    ]
    assert _statuses(jobs[1:]) == [JobStatus.QUEUED] * 2


def test_a_rate_limited_queued_job_can_be_canceled_with_a_refund(
    fake, tenant, owner, priced, product_jpeg
):
    fake.faults.rate_limit(10**6, retry_after=1, scope="submit")
    [job] = _queue(tenant, owner, product_jpeg, n=1)
    provider.segmind_dispatch(budget_seconds=2)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert fake.stats()["faults_served"]["429"] >= 1

    assert services.job_cancel(job=job) is True

    job.refresh_from_db()
    tenant.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert (tenant.credit_balance, tenant.credit_held) == (100, 0)
    assert list(job.credit_entries.values_list("kind", flat=True).order_by("id")) == [
        CreditKind.HOLD,
        CreditKind.RELEASE,
    ]


# --- turns and keys --------------------------------------------------------------------------


def test_two_workspaces_jobs_interleave(
    fake, settings, tenant, owner, other_shop, outsider, product_jpeg
):
    settings.SEGMIND_RATE_LIMIT = "2/2s"
    fake.faults.rate_window(2, window=2, retry_after=1)
    batch = _queue(tenant, owner, product_jpeg, n=6)
    [single] = _queue(other_shop, outsider, product_jpeg, n=1)

    _dispatch_until(_all_finished([*batch, single]))

    order = list(
        Job.objects.filter(pk__in=[*(j.pk for j in batch), single.pk])
        .order_by("submitted_at")
        .values_list("pk", flat=True)
    )
    # The other shop's job went in the first turn, not after the six before it.
    assert order.index(single.pk) <= 1


@pytest.mark.parametrize("served_last", ["batch", "single"])
def test_the_turns_carry_on_across_a_hand_over(
    served_last, fake, settings, tenant, owner, other_shop, outsider, product_jpeg
):
    # One submission per dispatcher run: the next one decides from the lease's memory.
    settings.SEGMIND_RATE_LIMIT = "1/60s"
    batch = _queue(tenant, owner, product_jpeg, n=3)
    [single] = _queue(other_shop, outsider, product_jpeg, n=1)
    order = [[other_shop.pk, False], [tenant.pk, False]]
    if served_last == "single":
        order.reverse()
    Lease.objects.update_or_create(
        name=provider.LEASE, defaults={"state": {"expected": {}, "served": order}}
    )

    provider.segmind_dispatch(budget_seconds=1)

    sent = Job.objects.exclude(provider_request_id="").get()
    # The workspace served longer ago by the dispatcher before goes first, even when the
    # other one's job is older.
    assert sent.pk == (single.pk if served_last == "batch" else batch[0].pk)
    kept = Lease.objects.get(name=provider.LEASE).state["served"]
    assert kept[-1] == [sent.tenant_id, False]


def test_an_own_keys_budget_is_apart_from_the_platforms(
    fake, settings, tenant, owner, other_shop, outsider, product_jpeg
):
    settings.SEGMIND_RATE_LIMIT = "1/60s"
    account_services.segmind_key_set(tenant=other_shop, by=outsider, key=OWN_KEY)
    Tenant.objects.filter(pk=other_shop.pk).update(
        segmind_plan=SegmindPlan.CUSTOM, segmind_rate_limit=600
    )
    platform_jobs = _queue(tenant, owner, product_jpeg, n=3)
    own_jobs = _queue(other_shop, outsider, product_jpeg, n=3)
    assert all(job.own_key for job in own_jobs)

    _dispatch_until(_all_finished(own_jobs), seconds=30)

    assert sorted(_statuses(platform_jobs)) == [
        JobStatus.QUEUED,
        JobStatus.QUEUED,
        JobStatus.SUCCEEDED,
    ]
    assert fake.stats()["submissions_by_api_key"] == {PLATFORM_KEY: 1, OWN_KEY: 3}
    budgets = {b.tenant_id: (b.limit, b.window_seconds) for b in SegmindKeyBudget.objects.all()}
    assert budgets == {None: (1, 60.0), other_shop.pk: (600, 60.0)}
    # The platform's key spent its one request a minute: its next job starts about then.
    waiting = min(
        (job for job in Job.objects.filter(pk__in=[j.pk for j in platform_jobs])),
        key=lambda job: (job.status != JobStatus.QUEUED, job.created_at),
    )
    place = queueing.job_queue_place(job=waiting)
    assert place is not None and place.position == 1
    assert (place.estimated_start_at - timezone.now()).total_seconds() > 30


# --- the budget itself (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [("50/min", 50, 60), ("2/s", 2, 1), ("20/6s", 20, 6), ("1000/1h", 1000, 3600)],
)
def test_a_rate_reads_per_minute_per_second_or_per_n_seconds(text, limit, window):
    assert ratelimit.parse_rate(text) == ratelimit.Rate(limit, window)


@pytest.mark.parametrize("text", ["fast", "50", "0/min", "-1/min", "5/0s", "5/week"])
def test_a_rate_that_does_not_parse_is_refused(text):
    with pytest.raises(ValueError):
        ratelimit.parse_rate(text)


def test_the_gate_never_allows_more_than_the_limit_in_any_window():
    gate = ratelimit.KeyGate(ratelimit.Rate(5, 10))
    sent: list[float] = []
    now = 1000.0
    while now < 1100:
        while gate.available(now) > 0:
            gate.take(now)
            sent.append(now)
        now += 0.37
    assert _most_in_any_window(sent, 10.0) <= 5
    assert len(sent) >= 45


def _send_whenever_allowed(gate: ratelimit.KeyGate, start: float, end: float) -> list[float]:
    """A key with work always waiting: every request goes as soon as the gate allows."""
    sent: list[float] = []
    now = start
    while now < end:
        while gate.available(now) > 0:
            gate.take(now)
            sent.append(now)
        now = round(now + 0.01, 2)
    return sent


def test_a_saturated_key_is_idle_after_its_first_window_only():
    # 120/min: a burst of 12 at first, then one every 0.5 s; the window fills 54 s in.
    gate = ratelimit.KeyGate(ratelimit.Rate(120, 60))
    sent = _send_whenever_allowed(gate, 0.0, 240.0)
    gaps = [(b - a, a) for a, b in itertools.pairwise(sent)]
    long_gaps = [at for gap, at in gaps if gap > 2.0]
    # Once, when the first window fills; not again a window later with a new burst.
    assert len(long_gaps) == 1 and 50 < long_gaps[0] < 60
    assert _most_in_any_window(sent, 60.0) <= 120


def test_the_next_dispatcher_carries_on_the_pace_without_a_new_burst():
    rate = ratelimit.Rate(120, 60)
    gate = ratelimit.KeyGate(rate)
    sent = _send_whenever_allowed(gate, 0.0, 30.0)
    after = ratelimit.KeyGate.from_state(rate, gate.to_state())
    assert after.available(30.0) <= 1
    around = [t for t in sent + _send_whenever_allowed(after, 30.0, 40.0) if t >= 20.0]
    # One every 0.5 s across the hand-over; a fresh bucket would send 12 at 30 s.
    assert _most_in_any_window(around, 2.0) <= 5


def test_a_request_held_back_by_the_pace_alone_waits_one_slot_not_a_window():
    gate = ratelimit.KeyGate(ratelimit.Rate(2, 2))
    gate.take(0.0)
    assert gate.available(0.5) == 0
    assert gate.wait(0.5) == pytest.approx(0.5)
    assert gate.available_within(0.5, 0.6) == 1


def test_the_adaptive_limit_drops_once_per_429_burst_and_recovers_slowly():
    gate = ratelimit.KeyGate(ratelimit.Rate(50, 60))
    gate.on_429(0.0, 5.0)
    gate.on_429(0.1, 5.0)  # in flight together: the same event
    assert gate.limit == 40
    assert gate.available(1.0) == 0  # closed until its Retry-After
    assert gate.available(5.5) == 1  # then one probe
    gate.take(5.5)
    assert gate.available(5.6) == 0
    gate.on_success()
    assert gate.used(5.7) == 1 and gate.available(5.7) >= 1
    gate.used(70.0)
    assert gate.limit == 42  # one clean window: +5% of 50, not back to 50
    state = ratelimit.KeyGate.from_state(gate.rate, gate.to_state())
    assert state.limit == gate.limit and list(state.sends) == list(gate.sends)


def test_the_forecast_says_when_the_nth_next_request_may_go():
    gate = ratelimit.KeyGate(ratelimit.Rate(2, 10))  # one every 5 s, two in any 10 s
    gate.take(0.0)
    gate.take(1.0)

    assert gate.forecast(2.0, 1) == pytest.approx(10.0 + gate.margin)
    assert gate.forecast(2.0, 2) == pytest.approx(15.0 + gate.margin)
    assert gate.forecast(2.0, 3) == pytest.approx(20.0 + 2 * gate.margin)


def test_requests_are_spread_over_the_window_not_sent_at_once():
    gate = ratelimit.KeyGate(ratelimit.Rate(30, 6))  # 5 a second, a burst of 3
    sent: list[float] = []
    now = 0.0
    while now < 6.0:
        while gate.available(now) > 0:
            gate.take(now)
            sent.append(now)
        now += 0.05
    # A burst of 3 at once, then one every 0.2 s: never more than 3 + 1 in 0.2 s.
    assert _most_in_any_window(sent, 0.2) <= 4
    assert 29 <= len(sent) <= 31
    assert gate.wait(6.0) <= 0.2


def test_a_new_plan_starts_the_adaptive_limit_afresh():
    gate = ratelimit.KeyGate(ratelimit.Rate(50, 60))
    gate.on_429(0.0, 1.0)
    assert gate.limit == 40

    same = ratelimit.KeyGate.from_state(ratelimit.Rate(50, 60), gate.to_state())
    bigger = ratelimit.KeyGate.from_state(ratelimit.Rate(500, 60), gate.to_state())

    assert (same.limit, bigger.limit) == (40, 500)


def test_a_request_counts_in_the_window_from_its_answer_not_its_sending():
    gate = ratelimit.KeyGate(ratelimit.Rate(1, 10))
    gate.take(0.0)
    gate.settle(0.0, 2.5)  # Segmind may have counted it as late as 2.5

    assert gate.wait(10.5) > 0
    assert gate.forecast(3.0, 1) == pytest.approx(12.5 + gate.margin)
