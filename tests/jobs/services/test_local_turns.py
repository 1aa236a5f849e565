"""Local-engine jobs are claimed in turn across workspaces, not first come, first served."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import Tenant, User
from jobs import services, tasks
from jobs.models import Job, JobStatus


def _queued(tenant: Tenant, user: User, data: bytes, *, age_seconds: float) -> Job:
    upload = SimpleUploadedFile("mug.jpg", data, content_type="image/jpeg")
    # On-commit callbacks do not run here: the job stays queued for the test to claim.
    job = services.job_submit(
        tenant=tenant, user=user, model="bria-product-packshot", upload=upload
    )
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return job


def test_a_second_shop_s_single_job_is_claimed_before_the_rest_of_a_batch(
    tenant, owner, outsider, product_jpeg
):
    other = Tenant.objects.get(memberships__user=outsider)
    batch = [_queued(tenant, owner, product_jpeg, age_seconds=100 - i) for i in range(5)]
    single = _queued(other, outsider, product_jpeg, age_seconds=1)

    # The batch's oldest goes first (nobody runs anything yet, it is the oldest head).
    assert services.local_job_claim_next() == batch[0].pk
    # The batch's workspace now has a job running, the other none: its turn.
    assert services.local_job_claim_next() == single.pk
    assert services.local_job_claim_next() == batch[1].pk


def test_workspaces_with_as_many_jobs_running_take_turns_oldest_head_first(
    tenant, owner, outsider, product_jpeg
):
    other = Tenant.objects.get(memberships__user=outsider)
    a = [_queued(tenant, owner, product_jpeg, age_seconds=100 - i) for i in range(3)]
    b = [_queued(other, outsider, product_jpeg, age_seconds=50 - i) for i in range(3)]

    claimed = [services.local_job_claim_next() for _ in range(6)]

    assert claimed == [a[0].pk, b[0].pk, a[1].pk, b[1].pk, a[2].pk, b[2].pk]
    assert services.local_job_claim_next() is None


def test_when_the_workers_free_up_together_a_shop_still_waiting_goes_before_a_third_batch_job(
    tenant, owner, outsider, product_jpeg
):
    other = Tenant.objects.get(memberships__user=outsider)
    batch = [_queued(tenant, owner, product_jpeg, age_seconds=100 - i) for i in range(4)]
    single = _queued(other, outsider, product_jpeg, age_seconds=1)
    # Two workers took the batch's first two jobs at once, and both just finished: no
    # workspace has anything running, and the batch's third job is older than the shop's.
    Job.objects.filter(pk__in=[batch[0].pk, batch[1].pk]).update(
        status=JobStatus.SUCCEEDED, started_at=timezone.now(), completed_at=timezone.now()
    )

    assert [job.pk for job in Job.objects.local_in_turn()[:2]] == [single.pk, batch[2].pk]
    # Even when the free worker's task was queued for the batch's job.
    assert services.local_job_claim_next(named=batch[2].pk) == single.pk
    assert services.local_job_claim_next(named=batch[2].pk) == batch[2].pk


def test_the_task_runs_the_job_whose_turn_it_is_and_each_job_runs_once(
    tenant, owner, outsider, product_jpeg
):
    other = Tenant.objects.get(memberships__user=outsider)
    a = [_queued(tenant, owner, product_jpeg, age_seconds=100 - i) for i in range(2)]
    b = _queued(other, outsider, product_jpeg, age_seconds=1)
    # A's first job is running on another worker.
    Job.objects.filter(pk=a[0].pk).update(status=JobStatus.RUNNING, started_at=timezone.now())

    # The task named after A's second job runs B's job: B has nothing running.
    assert tasks.job_run(str(a[1].pk)) is True
    b.refresh_from_db()
    assert b.status == JobStatus.SUCCEEDED
    assert Job.objects.get(pk=a[1].pk).status == JobStatus.QUEUED

    # B's task then runs A's second job; one task per job, so the counts match.
    assert tasks.job_run(str(b.pk)) is True
    assert Job.objects.get(pk=a[1].pk).status == JobStatus.SUCCEEDED
    assert tasks.job_run(str(b.pk)) is False
    assert Job.objects.filter(attempts__gt=1).count() == 0


def test_segmind_jobs_and_running_jobs_are_never_claimed_by_the_local_turn(
    tenant, owner, product_jpeg
):
    segmind = _queued(tenant, owner, product_jpeg, age_seconds=10)
    Job.objects.filter(pk=segmind.pk).update(engine="segmind")
    running = _queued(tenant, owner, product_jpeg, age_seconds=5)
    Job.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING)

    assert services.local_job_claim_next() is None
    assert services.job_run_next() is False
    assert Job.objects.get(pk=segmind.pk).status == JobStatus.QUEUED


def test_the_sweeper_s_resend_of_a_lost_queued_job_runs_it(
    tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    # Its task was lost (the Redis broker is at-most-once): queued long ago, never run.
    lost = _queued(tenant, owner, product_jpeg, age_seconds=3600)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.jobs_sweep()["resent"] == 1

    lost.refresh_from_db()
    # The resent task ran inline (tests run django-q2 synchronously), in turn.
    assert (lost.status, lost.attempts) == (JobStatus.SUCCEEDED, 1)


def test_a_task_runs_its_own_job_when_its_workspace_has_the_turn(
    tenant, owner, outsider, product_jpeg
):
    other = Tenant.objects.get(memberships__user=outsider)
    older, own = (_queued(tenant, owner, product_jpeg, age_seconds=100 - i) for i in range(2))
    theirs = _queued(other, outsider, product_jpeg, age_seconds=1)
    Job.objects.filter(pk=theirs.pk).update(status=JobStatus.RUNNING)

    # The workspace has the turn (the other has a job running): the task's own job runs.
    assert services.local_job_claim_next(named=own.pk) == own.pk
    # Now each has one running: the other workspace has no queued job, so the oldest.
    assert services.local_job_claim_next(named=theirs.pk) == older.pk
