"""The rules the job and batch pages share with the services, on the models: counts by
status, which failed jobs of a batch are left to retry, when a batch ended, a job's refund,
and the portal's "run again" retrying a failed batch job inside its batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs import services
from jobs.models import Batch, Job, JobPrice, JobStatus

pytestmark = pytest.mark.django_db

PACKSHOT = "bria-product-packshot"


def _submit(tenant: Tenant, user: User, product_jpeg: bytes) -> Job:
    return services.job_submit(
        tenant=tenant,
        user=user,
        model=PACKSHOT,
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )


def _batch(tenant: Tenant, user: User, product_jpeg: bytes, statuses: Sequence[str]) -> Batch:
    batch = Batch.objects.create(tenant=tenant, created_by=user)
    start = timezone.now()
    for index, status in enumerate(statuses):
        job = _submit(tenant, user, product_jpeg)
        finished = status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
        Job.objects.filter(pk=job.pk).update(
            batch=batch,
            status=status,
            completed_at=start + timedelta(seconds=index) if finished else None,
        )
    return batch


def test_status_counts_counts_every_status_in_one_query(
    tenant: Tenant, owner: User, outsider: User, product_jpeg: bytes
) -> None:
    for status in [JobStatus.QUEUED, JobStatus.FAILED, JobStatus.FAILED]:
        job = _submit(tenant, owner, product_jpeg)
        Job.objects.filter(pk=job.pk).update(status=status)
    _submit(outsider.memberships.get().tenant, outsider, product_jpeg)

    with CaptureQueriesContext(connection) as queries:
        counts = Job.objects.for_tenant(tenant).status_counts()

    assert len(queries) == 1
    assert counts == {
        "queued": 1,
        "running": 0,
        "waiting_for_provider": 0,
        "succeeded": 0,
        "failed": 2,
        "canceled": 0,
    }


def test_a_failed_batch_job_is_retryable_until_it_has_a_rerun_in_the_batch(
    tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.FAILED, JobStatus.SUCCEEDED])
    failed = Job.objects.get(batch=batch, status=JobStatus.FAILED)
    jobs = Job.objects.filter(batch=batch)
    assert list(jobs.retryable()) == [failed]
    assert [job.is_retryable for job in jobs.with_retried().order_by("completed_at")] == [
        True,
        False,
    ]

    # A rerun outside the batch (the API's) leaves it retryable; one inside does not.
    services.job_rerun(job=failed, user=owner)
    assert list(jobs.retryable()) == [failed]
    services.job_rerun(job=failed, user=owner, batch=batch)
    assert not jobs.retryable().exists()
    assert not jobs.with_retried().get(pk=failed.pk).is_retryable


def test_a_batch_has_finished_once_every_job_has_and_ended_with_its_last(
    tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.SUCCEEDED, JobStatus.RUNNING])
    assert not Batch.objects.with_progress().get(pk=batch.pk).all_jobs_finished

    Job.objects.filter(batch=batch, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, completed_at=timezone.now() + timedelta(hours=1)
    )
    loaded = Batch.objects.with_progress().get(pk=batch.pk)
    assert loaded.all_jobs_finished
    jobs = list(Job.objects.filter(batch=batch))
    assert loaded.ended_at(jobs) == max(job.completed_at for job in jobs if job.completed_at)
    assert not Batch.objects.create(tenant=tenant).all_jobs_finished


def test_a_jobs_refund_entry_is_the_operators_refund(
    tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    job = _submit(tenant, owner, product_jpeg)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.refund_entry() is None

    entry = account_services.credits_refund(job=job, user=owner, memo="unusable")

    assert job.refund_entry() == entry


def test_a_free_job_has_no_refund_and_costs_no_query(
    tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    job = _submit(tenant, owner, product_jpeg)
    with CaptureQueriesContext(connection) as queries:
        assert job.refund_entry() is None
    assert len(queries) == 0


def test_running_a_failed_batch_job_again_retries_it_inside_its_batch(
    tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.FAILED, JobStatus.SUCCEEDED])
    failed = Job.objects.get(batch=batch, status=JobStatus.FAILED)
    succeeded = Job.objects.get(batch=batch, status=JobStatus.SUCCEEDED)
    Batch.objects.filter(pk=batch.pk).update(completed_at=timezone.now())

    assert services.job_rerun_or_retry(job=failed, user=owner).batch_id == batch.pk
    assert Batch.objects.get(pk=batch.pk).completed_at is None
    # A job that did not fail runs again on its own, as does one outside any batch.
    assert services.job_rerun_or_retry(job=succeeded, user=owner).batch_id is None
    alone = _submit(tenant, owner, product_jpeg)
    Job.objects.filter(pk=alone.pk).update(status=JobStatus.FAILED)
    alone.refresh_from_db()
    assert services.job_rerun_or_retry(job=alone, user=owner).batch_id is None
