"""A dead dispatcher's successor settles, at takeover, the jobs it left mid-submission.

The rule: only a dispatcher that takes the lease over from a holder whose lease ran out
(it died holding it) sends the Segmind jobs left `running` without a request id to the
queue again, each counted as resubmitted after a crash. A live holder's job in
submission is never touched; jobs with a request id are polled again, never resubmitted;
local jobs keep the sweeper's rule. The real-cluster SIGKILL runs are in test_crashes.py.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import CreditKind, Lease, Tenant, User
from jobs import dispatcher as provider
from jobs import services, tasks
from jobs.models import AssetKind, Job, JobPrice, JobStatus
from tests.jobs.engines.segmind.test_dispatcher import _submitted_job


@pytest.fixture(autouse=True)
def priced(db: None) -> JobPrice:
    return JobPrice.objects.update_or_create(
        model="bria-product-packshot", engine="segmind", defaults={"credits": 2}
    )[0]


def _unsent_job(tenant: Tenant, owner: User, product_jpeg: bytes, attempts: int = 1) -> Job:
    """A job as a dispatcher's claim leaves it while its submission is on its way."""
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), attempts=attempts
    )
    return Job.objects.get(pk=job.pk)


def _lease(holder: str, seconds: float) -> None:
    """The lease as `holder` left it: running out `seconds` from now (negative: ran out)."""
    Lease.objects.update_or_create(
        name=provider.LEASE,
        defaults={"holder": holder, "leased_until": timezone.now() + timedelta(seconds=seconds)},
    )


def _credit_kinds(job: Job) -> list[str]:
    return sorted(job.credit_entries.values_list("kind", flat=True))


def test_the_successor_of_a_dead_holder_sends_its_unsent_job_again_once_marked(
    fake, tenant, owner, product_jpeg
):
    balance = tenant.credit_balance
    unsent = _unsent_job(tenant, owner, product_jpeg)
    in_flight = _submitted_job(fake, tenant, owner, product_jpeg)
    _lease("4242-dead", -1)

    counts = provider.segmind_dispatch(budget_seconds=5)

    assert counts["submitted"] == 1
    unsent.refresh_from_db()
    assert unsent.status == JobStatus.SUCCEEDED
    assert unsent.crash_resubmits == 1
    assert unsent.resubmitted_after_crash_at is not None
    assert unsent.attempts == 2
    assert unsent.assets.filter(kind=AssetKind.OUTPUT).count() == 1
    # The job with a request id was polled again, not resubmitted, and is not marked.
    in_flight.refresh_from_db()
    assert in_flight.status == JobStatus.SUCCEEDED
    assert in_flight.crash_resubmits == 0
    assert in_flight.resubmitted_after_crash_at is None
    # Two submissions in all: the in-flight job's one, and the unsent job's new one.
    assert fake.stats()["submissions"] == 2
    for job in (unsent, in_flight):
        assert _credit_kinds(job) == [CreditKind.CAPTURE, CreditKind.HOLD]
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (balance - 4, 0)


def test_a_live_holders_job_in_submission_is_not_touched(fake, tenant, owner, product_jpeg):
    unsent = _unsent_job(tenant, owner, product_jpeg)
    _lease("4242-live", provider.LEASE_SECONDS)

    assert provider.segmind_dispatch(budget_seconds=1)["skipped"] == 1
    # The sweeper (stale only after 2 x Q_TIMEOUT) leaves it to its holder too.
    assert services.jobs_sweep()["requeued"] == 0
    tasks.segmind_watch()

    unsent.refresh_from_db()
    assert unsent.status == JobStatus.RUNNING
    assert unsent.crash_resubmits == 0
    assert fake.stats()["submit_attempts"] == 0


def test_a_lease_given_up_is_not_a_takeover(fake, tenant, owner, product_jpeg):
    # A holder that gave its lease up had finished its submissions: a job left running
    # without a request id is not settled at once (the sweeper's rule applies).
    unsent = _unsent_job(tenant, owner, product_jpeg)
    _lease("", -1)

    provider.segmind_dispatch(budget_seconds=1)

    unsent.refresh_from_db()
    assert unsent.status == JobStatus.RUNNING
    assert unsent.crash_resubmits == 0


def test_of_two_successors_only_one_takes_the_lease_over(db):
    _lease("4242-dead", -1)
    assert provider._take_over("first") == "4242-dead"
    assert provider._take_over("second") == ""
    assert Lease.objects.get(name=provider.LEASE).holder == "first"


def test_a_dispatcher_that_lost_its_lease_claims_nothing(fake, tenant, owner, product_jpeg):
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )
    _lease("successor", provider.LEASE_SECONDS)
    stale = provider._Dispatcher("stalled", 1.0)
    try:
        assert stale._claim_queued(time.monotonic()) == 0
    finally:
        stale.loop.run_until_complete(stale._close())
        stale.io.shutdown()
        stale.loop.close()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.attempts == 0


@pytest.mark.parametrize("wake", ["sweeper", "watch"])
def test_the_sweeper_and_the_watch_start_a_successor_once_the_lease_ran_out(
    wake, fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    unsent = _unsent_job(tenant, owner, product_jpeg)
    _lease("4242-dead", -1)
    with django_capture_on_commit_callbacks(execute=True):
        if wake == "sweeper":
            # Not stale by the sweeper's own rule (2 x Q_TIMEOUT): the takeover settles it.
            assert services.jobs_sweep()["requeued"] == 0
        else:
            assert tasks.segmind_watch() is True
    unsent.refresh_from_db()
    assert unsent.status == JobStatus.SUCCEEDED
    assert unsent.crash_resubmits == 1
    assert fake.stats()["submissions"] == 1


def test_a_job_out_of_attempts_fails_refunded_and_still_counts_the_lost_submission(
    fake, tenant, owner, product_jpeg
):
    balance = tenant.credit_balance
    unsent = _unsent_job(tenant, owner, product_jpeg, attempts=3)
    _lease("4242-dead", -1)

    provider.segmind_dispatch(budget_seconds=1)

    unsent.refresh_from_db()
    assert unsent.status == JobStatus.FAILED
    assert unsent.error_code == "worker_lost"
    assert unsent.crash_resubmits == 1
    assert _credit_kinds(unsent) == [CreditKind.HOLD, CreditKind.RELEASE]
    tenant.refresh_from_db()
    assert tenant.credit_held == 0
    assert tenant.credit_balance == balance
    assert fake.stats()["submit_attempts"] == 0


def test_a_segmind_job_the_sweeper_requeues_is_marked_but_a_local_one_is_not(
    fake, tenant, owner, product_jpeg
):
    segmind_job = _unsent_job(tenant, owner, product_jpeg)
    local_job = _unsent_job(tenant, owner, product_jpeg)
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=segmind_job.pk).update(started_at=long_ago)
    Job.objects.filter(pk=local_job.pk).update(started_at=long_ago, engine="local")

    assert services.jobs_sweep()["requeued"] == 2

    segmind_job.refresh_from_db()
    local_job.refresh_from_db()
    assert (segmind_job.status, segmind_job.crash_resubmits) == (JobStatus.QUEUED, 1)
    assert (local_job.status, local_job.crash_resubmits) == (JobStatus.QUEUED, 0)


def test_a_local_job_running_at_takeover_keeps_the_sweepers_rule(fake, tenant, owner, product_jpeg):
    local_job = _unsent_job(tenant, owner, product_jpeg)
    Job.objects.filter(pk=local_job.pk).update(engine="local")
    _lease("4242-dead", -1)

    provider.segmind_dispatch(budget_seconds=1)

    local_job.refresh_from_db()
    assert local_job.status == JobStatus.RUNNING
    assert local_job.crash_resubmits == 0


def test_operators_see_the_jobs_resubmitted_after_a_crash_in_the_admin(
    fake, tenant, owner, product_jpeg
):
    from django.test import Client
    from django.urls import reverse

    from tests.support.two_factor import staff_login

    recent, older, clean = (_unsent_job(tenant, owner, product_jpeg) for _ in range(3))
    now = timezone.now()
    Job.objects.filter(pk=recent.pk).update(crash_resubmits=1, resubmitted_after_crash_at=now)
    Job.objects.filter(pk=older.pk).update(
        crash_resubmits=2, resubmitted_after_crash_at=now - timedelta(days=10)
    )
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    # The admin lets staff in only with their second factor passed.
    client = staff_login(Client(), operator)
    changelist = reverse("admin:jobs_job_changelist")

    page = client.get(changelist).content.decode()
    assert "1 job resubmitted after a crash in the last 7 days" in page
    assert "2 times, last" in page and "once, last" in page

    def listed(choice: str) -> set[str]:
        response = client.get(changelist, {"resubmitted_after_crash": choice})
        return {str(pk) for pk in response.context["cl"].queryset.values_list("pk", flat=True)}

    assert listed("recent") == {str(recent.pk)}
    assert listed("yes") == {str(recent.pk), str(older.pk)}
    assert listed("no") == {str(clean.pk)}
    detail = client.get(reverse("admin:jobs_job_change", args=[older.pk])).content.decode()
    assert "Crash resubmits" in detail


def test_the_admin_is_not_open_to_a_shop_owner(owner_client):
    from django.urls import reverse

    response = owner_client.get(reverse("admin:jobs_job_changelist"))
    assert response.status_code == 302
    assert "resubmitted after a crash" not in response.content.decode()


def test_the_watch_looks_every_minute_half_a_minute_after_the_sweeper(db):
    from django_q.models import Schedule

    watch = Schedule.objects.get(name="segmind-watch")
    sweep = Schedule.objects.get(name="jobs-sweep")
    assert watch.func == "jobs.tasks.segmind_watch"
    assert (watch.schedule_type, watch.minutes, watch.repeats) == ("I", 1, -1)
    assert watch.cluster is None  # the jobs cluster, where the dispatcher runs
    offset = (watch.next_run - sweep.next_run).total_seconds() % 60
    assert offset == pytest.approx(30, abs=1)
