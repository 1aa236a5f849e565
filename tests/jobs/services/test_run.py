"""Running a job: once, even when its task is delivered twice."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from jobs import services, tasks
from jobs.models import AssetKind, Job, JobStatus
from tests.support.photos import backdrop_only_png


def _queued_job(tenant, owner, data: bytes) -> Job:
    upload = SimpleUploadedFile("mug.jpg", data, content_type="image/jpeg")
    # Without executing on-commit callbacks the job stays queued for the test to run.
    return services.job_submit(
        tenant=tenant, user=owner, model="bria-product-packshot", upload=upload
    )


def test_the_task_runs_a_queued_job_to_success(tenant, owner, product_jpeg):
    job = _queued_job(tenant, owner, product_jpeg)
    assert job.status == JobStatus.QUEUED
    assert tasks.job_run(str(job.id)) is True
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.started_at is not None and job.completed_at is not None
    assert job.attempts == 1
    assert job.assets.filter(kind=AssetKind.OUTPUT).count() == 1


def test_a_task_delivered_twice_does_the_work_once(tenant, owner, product_jpeg):
    job = _queued_job(tenant, owner, product_jpeg)
    assert tasks.job_run(str(job.id)) is True
    assert tasks.job_run(str(job.id)) is False
    job.refresh_from_db()
    assert job.attempts == 1
    assert job.assets.filter(kind=AssetKind.OUTPUT).count() == 1


def test_a_canceled_job_is_not_run(tenant, owner, product_jpeg):
    job = _queued_job(tenant, owner, product_jpeg)
    assert services.job_cancel(job=job) is True
    assert tasks.job_run(str(job.id)) is False
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()


def test_a_blank_photo_fails_with_a_message_a_shop_understands(tenant, owner):
    # A flat colour is refused at submission; a plain backdrop is for the engine to judge.
    job = _queued_job(tenant, owner, backdrop_only_png())
    tasks.job_run(str(job.id))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "empty_image"
    assert "blank" in job.error_message
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()


def test_the_sweeper_requeues_a_job_whose_worker_died(
    tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    job = _queued_job(tenant, owner, product_jpeg)
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=long_ago, attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.jobs_sweep()
    assert result["requeued"] == 1
    job.refresh_from_db()
    # The requeued task ran inline (tests run django-q2 synchronously).
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempts == 2


def test_the_sweeper_gives_up_after_three_attempts(tenant, owner, product_jpeg):
    job = _queued_job(tenant, owner, product_jpeg)
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=long_ago, attempts=3)
    assert services.jobs_sweep()["failed"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "worker_lost"


def test_the_task_checks_the_stored_parameters_with_the_same_validator(tenant, owner, product_jpeg):
    job = _queued_job(tenant, owner, product_jpeg)
    Job.objects.filter(pk=job.pk).update(params={**job.params, "background_color": "pink"})
    tasks.job_run(str(job.id))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "validation_error"
    assert "background_color" in job.error_message
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()


def test_the_job_page_shows_the_output_size_of_a_megapixel_model(owner_client, tenant, owner):
    from django.urls import reverse

    from jobs import catalog

    spec = catalog.model("ai-product-photography")
    params = catalog.resolve_params(
        spec, {"image": "https://shop.test/a.jpg", "prompt": "on marble", "megapixel": "1.0"}
    )
    job = Job.objects.create(tenant=tenant, created_by=owner, model=spec.slug, params=params)
    page = owner_client.get(reverse("job_detail", args=[tenant.slug, job.id])).content.decode()
    assert "Output 1280 \u00d7 768 px" in page
    assert "on marble" in page
