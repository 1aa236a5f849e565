"""Live progress in the portal: the job page's status JSON, the batch page and its status
JSON (a fixed number of queries whatever the batch's size), retrying a batch's failed
jobs, and the batches list."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Tenant, User
from jobs import catalog, services
from jobs.models import Asset, AssetKind, Batch, Job, JobPrice, JobStatus
from jobs.views.progress import timing_text

pytestmark = pytest.mark.django_db

PACKSHOT = "bria-product-packshot"


def _submit(tenant: Tenant, user: User, product_jpeg: bytes) -> Job:
    """A queued job: no worker runs it (on-commit callbacks are not run here)."""
    return services.job_submit(
        tenant=tenant,
        user=user,
        model=PACKSHOT,
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )


def _set(job: Job, status: str, **fields: Any) -> Job:
    now = timezone.now()
    if status == JobStatus.RUNNING:
        fields.setdefault("started_at", now)
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED):
        fields.setdefault("completed_at", now)
    Job.objects.filter(pk=job.pk).update(status=status, **fields)
    job.refresh_from_db()
    return job


def _fail(job: Job) -> Job:
    return _set(
        job,
        JobStatus.FAILED,
        error_code="no_product_found",
        error_message="No product could be told apart from the background.",
    )


def _batch(
    tenant: Tenant, user: User, product_jpeg: bytes, statuses: Sequence[str], name: str = ""
) -> Batch:
    """A batch whose jobs have `statuses`, sharing one stored photo."""
    first = _submit(tenant, user, product_jpeg)
    batch = Batch.objects.create(tenant=tenant, created_by=user, name=name)
    start = timezone.now()
    jobs = [
        Job(
            tenant=tenant,
            created_by=user,
            batch=batch,
            model=PACKSHOT,
            params=first.params,
            input_asset=first.input_asset,
            sku=f"MUG-{index:03d}",
            created_at=start + timedelta(microseconds=index),
            status=status,
            started_at=start if status != JobStatus.QUEUED else None,
            completed_at=start if status in (JobStatus.SUCCEEDED, JobStatus.FAILED) else None,
            error_code="no_product_found" if status == JobStatus.FAILED else "",
            error_message="No product found." if status == JobStatus.FAILED else "",
        )
        for index, status in enumerate(statuses)
    ]
    Job.objects.bulk_create(jobs)
    if jobs:
        # The photo now belongs to the batch's first job, and the job that stored it goes.
        Asset.objects.filter(job=first).update(job=jobs[0])
        first.delete()
    return batch


def _status(client: Client, tenant: Tenant, job: Job) -> dict[str, Any]:
    response = client.get(reverse("job_status", args=[tenant.slug, job.id]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    return response.json()


# -- the job page -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "label", "terminal"),
    [
        (JobStatus.QUEUED, "Queued", False),
        (JobStatus.RUNNING, "Running", False),
        (JobStatus.WAITING_FOR_PROVIDER, "Waiting for Segmind", False),
        (JobStatus.FAILED, "Failed", True),
        (JobStatus.CANCELED, "Canceled", True),
    ],
)
def test_the_job_status_says_each_state_with_its_label_and_time(
    owner_client: Client,
    tenant: Tenant,
    owner: User,
    product_jpeg: bytes,
    status: str,
    label: str,
    terminal: bool,
) -> None:
    job = _submit(tenant, owner, product_jpeg)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=12))
    job = _fail(job) if status == JobStatus.FAILED else _set(job, status)
    data = _status(owner_client, tenant, job)
    assert data["status"] == status
    assert data["label"] == label
    assert data["terminal"] is terminal
    assert 12 <= data["elapsed_seconds"] < 20
    assert data["typical_seconds"] == 1.0  # the local engine
    assert data["outputs"] == []
    assert data["error_message"] == (
        "No product could be told apart from the background." if status == "failed" else ""
    )
    assert bool(data["waiting_message"]) is (status == JobStatus.WAITING_FOR_PROVIDER)


def test_a_finished_jobs_status_lists_its_images_and_stops_the_clock(
    owner_client: Client,
    tenant: Tenant,
    owner: User,
    product_jpeg: bytes,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job = _submit(tenant, owner, product_jpeg)
    job.refresh_from_db()
    output = job.assets.get(kind=AssetKind.OUTPUT)
    data = _status(owner_client, tenant, job)
    assert data["status"] == "succeeded"
    assert data["label"] == "Succeeded"
    assert data["terminal"] is True
    assert data["timing"].startswith("Took ")
    assert data["outputs"] == [
        {
            "id": str(output.id),
            "url": reverse("asset_file", args=[tenant.slug, output.id]),
            "download_url": reverse("asset_file", args=[tenant.slug, output.id]) + "?download=1",
            "thumb_url": None,
            "width": output.width,
            "height": output.height,
            "format": output.format,
            "transparent": False,
        }
    ]
    assert owner_client.get(data["outputs"][0]["url"]).status_code == 200
    # The clock stopped when the job finished.
    assert data["elapsed_seconds"] == _status(owner_client, tenant, job)["elapsed_seconds"]


def test_a_segmind_job_is_timed_against_its_models_typical_time(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    job = _set(_submit(tenant, owner, product_jpeg), JobStatus.RUNNING)
    Job.objects.filter(pk=job.pk).update(
        engine="segmind", created_at=timezone.now() - timedelta(seconds=5)
    )
    typical = catalog.get_model(PACKSHOT).typical_seconds  # type: ignore[union-attr]
    assert typical
    data = _status(owner_client, tenant, job)
    assert data["typical_seconds"] == typical
    assert data["timing"] == f"5 s of about {round(typical)} s"


def test_the_timing_says_how_long_against_the_usual() -> None:
    assert timing_text(status="running", elapsed=12.2, typical=20) == "12 s of about 20 s"
    assert (
        timing_text(status="running", elapsed=95, typical=20)
        == "1 min 35 s so far, longer than the usual 20 s"
    )
    assert timing_text(status="queued", elapsed=3, typical=None) == "3 s so far"
    assert (
        timing_text(status="succeeded", elapsed=14, typical=20) == "Took 14 s (usually about 20 s)"
    )
    assert timing_text(status="failed", elapsed=4, typical=20) == "Ended after 4 s"


def test_a_failed_job_page_shows_its_message_a_retry_button_and_a_change_parameter_link(
    member_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    job = _fail(_submit(tenant, owner, product_jpeg))
    page = member_client.get(reverse("job_detail", args=[tenant.slug, job.id])).content.decode()
    assert '<div id="job-failed" class="card alert" role="alert">' in page  # shown, not hidden
    assert "No product could be told apart from the background." in page
    assert f'action="{reverse("job_rerun", args=[tenant.slug, job.id])}"' in page
    assert f'href="{reverse("job_new", args=[tenant.slug])}?from={job.id}"' in page
    assert "Try again" in page and "Change a parameter" in page


def test_a_running_job_page_hides_the_failure_box_and_shows_its_progress(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    job = _set(_submit(tenant, owner, product_jpeg), JobStatus.RUNNING)
    page = owner_client.get(reverse("job_detail", args=[tenant.slug, job.id])).content.decode()
    assert '<div id="job-failed" class="card alert" role="alert" hidden>' in page
    assert 'id="job-progress-bar" max="1.0"' in page
    assert reverse("job_status", args=[tenant.slug, job.id]) in page
    assert "Working on it" in page


def test_trying_a_failed_batch_job_again_keeps_the_new_job_in_the_batch(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.SUCCEEDED, JobStatus.FAILED])
    Batch.objects.filter(pk=batch.pk).update(completed_at=timezone.now())
    failed = batch.jobs.get(status=JobStatus.FAILED)
    response = owner_client.post(reverse("job_rerun", args=[tenant.slug, failed.id]))
    rerun = Job.objects.get(rerun_of=failed)
    assert response["Location"] == reverse("job_detail", args=[tenant.slug, rerun.id])
    assert rerun.batch_id == batch.pk
    assert rerun.sku == failed.sku
    batch.refresh_from_db()
    assert batch.completed_at is None  # followed again until the retry finishes


def test_a_job_status_of_another_workspace_is_404(
    outsider_client: Client, outsider: User, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    job = _submit(tenant, owner, product_jpeg)
    own = Tenant.objects.get(memberships__user=outsider)
    assert outsider_client.get(reverse("job_status", args=[own.slug, job.id])).status_code == 404
    assert outsider_client.get(reverse("job_status", args=[tenant.slug, job.id])).status_code == 404


# -- the batch page ---------------------------------------------------------------------------

MIXED = [
    JobStatus.SUCCEEDED,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.RUNNING,
    JobStatus.QUEUED,
]


@pytest.mark.parametrize("who", ["owner", "member"])
def test_the_batch_status_counts_its_jobs_and_lists_each_in_order(
    who: str,
    owner_client: Client,
    member_client: Client,
    tenant: Tenant,
    owner: User,
    product_jpeg: bytes,
) -> None:
    client = owner_client if who == "owner" else member_client
    batch = _batch(tenant, owner, product_jpeg, MIXED, name="Spring mugs")
    response = client.get(reverse("batch_status", args=[tenant.slug, batch.id]))
    assert response.status_code == 200
    data = response.json()
    progress = data["progress"]
    assert (progress["total"], progress["done"], progress["percent"]) == (5, 3, 60)
    assert (progress["succeeded"], progress["failed"], progress["running"]) == (2, 1, 1)
    assert progress["queued"] == 1
    assert data["complete"] is False
    assert data["retryable"] == 1
    assert data["results"] == 2
    assert data["name"] == "Spring mugs"
    assert data["gallery_url"] == f"{reverse('gallery', args=[tenant.slug])}?batch={batch.id}"
    assert [job["status"] for job in data["jobs"]] == MIXED
    failed = data["jobs"][2]
    assert failed["error_message"] == "No product found."
    assert failed["rerun_url"] == reverse("job_rerun", args=[tenant.slug, failed["id"]])
    assert failed["retried"] is False


def test_the_batch_page_shows_each_jobs_sku_status_and_error_and_a_retry(
    member_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, MIXED)
    response = member_client.get(reverse("batch_detail", args=[tenant.slug, batch.id]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "3 of 5 done" in page
    assert "MUG-002" in page and "No product found." in page
    assert page.count('data-job-id="') == 5
    failed = batch.jobs.get(status=JobStatus.FAILED)
    assert f'action="{reverse("job_rerun", args=[tenant.slug, failed.id])}"' in page
    retry_all = reverse("batch_retry_failed", args=[tenant.slug, batch.id])
    assert f'<form id="batch-retry" method="post" action="{retry_all}">' in page
    assert '<p id="batch-done" class="notice" hidden>' in page


def test_a_finished_batch_says_all_done_and_links_to_its_results_in_the_gallery(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.SUCCEEDED] * 3)
    page = owner_client.get(reverse("batch_detail", args=[tenant.slug, batch.id])).content
    text = page.decode()
    assert '<p id="batch-done" class="notice">' in text
    assert 'All done: <span id="batch-results">3</span> result' in text
    assert f'href="{reverse("gallery", args=[tenant.slug])}?batch={batch.id}"' in text
    assert reverse("batch_status", args=[tenant.slug, batch.id]).encode() in page
    data = owner_client.get(reverse("batch_status", args=[tenant.slug, batch.id])).json()
    assert data["complete"] is True
    assert data["elapsed_text"].startswith("Took ")


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("route", ["batch_status", "batch_detail"])
def test_the_batch_page_and_status_take_as_many_queries_for_50_jobs_as_for_5(
    route: str,
    owner_client: Client,
    tenant: Tenant,
    owner: User,
    product_jpeg: bytes,
    django_assert_max_num_queries: Any,
) -> None:
    small = _batch(tenant, owner, product_jpeg, MIXED)
    large = _batch(tenant, owner, product_jpeg, MIXED * 10)
    few = _queries(owner_client, reverse(route, args=[tenant.slug, small.id]))
    with django_assert_max_num_queries(few):
        owner_client.get(reverse(route, args=[tenant.slug, large.id]))
    # The estimated finish takes a few of them (its last queued job's place in line).
    assert few <= 18


def test_an_outsider_gets_404_for_a_batch_even_through_their_own_workspace(
    outsider_client: Client, outsider: User, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.FAILED])
    own = Tenant.objects.get(memberships__user=outsider)
    for slug in (tenant.slug, own.slug):
        for route in ("batch_detail", "batch_status"):
            assert outsider_client.get(reverse(route, args=[slug, batch.id])).status_code == 404
        retry = outsider_client.post(reverse("batch_retry_failed", args=[slug, batch.id]))
        assert retry.status_code == 404
    assert Job.objects.count() == 1


# -- retrying a batch's failed jobs -----------------------------------------------------------


def test_retrying_a_batch_reruns_each_failed_job_once_into_the_batch(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.FAILED, JobStatus.SUCCEEDED] * 2)
    Batch.objects.filter(pk=batch.pk).update(completed_at=timezone.now())
    failed = set(batch.jobs.filter(status=JobStatus.FAILED).values_list("pk", flat=True))
    url = reverse("batch_retry_failed", args=[tenant.slug, batch.id])

    response = owner_client.post(url, follow=True)
    assert "Retrying 2 failed jobs." in response.content.decode()
    reruns = Job.objects.filter(rerun_of__isnull=False)
    assert set(reruns.values_list("rerun_of", flat=True)) == failed
    assert all(job.batch_id == batch.pk for job in reruns)
    assert all(job.status == JobStatus.QUEUED for job in reruns)
    batch.refresh_from_db()
    assert batch.completed_at is None
    assert batch.progress()["total"] == 6

    # Pressed again: the failed jobs already have their rerun.
    again = owner_client.post(url, follow=True)
    assert "No failed job is left to retry." in again.content.decode()
    assert Job.objects.filter(rerun_of__isnull=False).count() == 2


def test_a_rerun_that_fails_again_can_be_retried_in_turn(
    tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.FAILED])
    (rerun,) = services.batch_retry_failed(batch=batch, user=owner)
    _fail(rerun)
    (second,) = services.batch_retry_failed(batch=batch, user=owner)
    assert second.rerun_of_id == rerun.pk
    assert services.batch_retry_failed(batch=batch, user=owner) == []


def test_retrying_without_enough_credits_retries_nothing_and_says_so(
    owner_client: Client,
    tenant: Tenant,
    owner: User,
    product_jpeg: bytes,
    no_trial_credits: None,
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.FAILED] * 3)
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)
    tenant.credit_balance = 0
    tenant.save(update_fields=["credit_balance"])
    url = reverse("batch_retry_failed", args=[tenant.slug, batch.id])
    page = owner_client.post(url, follow=True).content.decode()
    assert "Retrying the 3 failed jobs needs more credits than the workspace&#x27;s 0." in page
    assert "No job was retried." in page
    assert Job.objects.count() == 3


def test_a_rerun_cannot_join_another_workspaces_batch(
    tenant: Tenant, owner: User, outsider: User, product_jpeg: bytes
) -> None:
    job = _fail(_submit(tenant, owner, product_jpeg))
    other = Batch.objects.create(tenant=Tenant.objects.get(memberships__user=outsider))
    with pytest.raises(services.JobError) as error:
        services.job_rerun(job=job, user=owner, batch=other)
    assert error.value.field == "batch"
    assert Job.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_people_retrying_a_batch_at_once_retry_each_failed_job_once(
    tenant: Tenant, owner: User, member: User, product_jpeg: bytes, no_worker: list[Any]
) -> None:
    # No worker: tasks are recorded, not run (`no_worker`).
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.FAILED] * 4)
    start = threading.Barrier(2, timeout=10)
    made: list[int] = []

    def retry(user: User) -> None:
        try:
            start.wait()
            made.append(len(services.batch_retry_failed(batch=batch, user=user)))
        finally:
            connection.close()

    threads = [threading.Thread(target=retry, args=(user,)) for user in (owner, member)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(made) == [0, 4]
    assert Job.objects.filter(rerun_of__isnull=False).count() == 4


# -- the batches list -------------------------------------------------------------------------


def test_the_batches_list_shows_each_batch_with_its_progress(
    member_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    _batch(tenant, owner, product_jpeg, MIXED, name="Spring mugs")
    _batch(tenant, owner, product_jpeg, [JobStatus.SUCCEEDED], name="Teapots")
    page = member_client.get(reverse("batch_list", args=[tenant.slug])).content.decode()
    assert "Spring mugs" in page and "Teapots" in page
    assert "3 of 5 done" in page and "1 failed" in page
    assert "1 of 1 done" in page
    assert page.index("Teapots") < page.index("Spring mugs")  # newest first


def test_the_batches_list_takes_as_many_queries_for_many_batches_and_pages_them(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    _batch(tenant, owner, product_jpeg, MIXED)
    url = reverse("batch_list", args=[tenant.slug])
    owner_client.get(url)  # the first page of a workspace also saves it in the session
    few = _queries(owner_client, url)
    for _ in range(24):
        _batch(tenant, owner, product_jpeg, [JobStatus.QUEUED, JobStatus.SUCCEEDED])
    assert _queries(owner_client, url) == few
    page_two = owner_client.get(url, {"page": 2}).content.decode()
    assert "Page 2 of 2 · 25 batches" in page_two


def test_the_batches_list_tells_a_new_shop_how_to_make_a_batch(
    owner_client: Client, tenant: Tenant, outsider: User, product_jpeg: bytes
) -> None:
    _batch(Tenant.objects.get(memberships__user=outsider), outsider, product_jpeg, [], "Theirs")
    page = owner_client.get(reverse("batch_list", args=[tenant.slug])).content.decode()
    assert "No batches yet" in page
    assert "Theirs" not in page
    assert f'href="{reverse("job_new", args=[tenant.slug])}"' in page


def test_the_dashboard_and_navigation_lead_to_the_batches(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, MIXED, name="Spring mugs")
    page = owner_client.get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert f'href="{reverse("batch_list", args=[tenant.slug])}"' in page
    assert f'href="{reverse("batch_detail", args=[tenant.slug, batch.id])}"' in page
    assert "Recent batches" in page


def test_a_waiting_batch_job_is_labelled_as_waiting_for_segmind(
    owner_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    batch = _batch(tenant, owner, product_jpeg, [JobStatus.WAITING_FOR_PROVIDER])
    data = owner_client.get(reverse("batch_status", args=[tenant.slug, batch.id])).json()
    assert data["jobs"][0]["label"] == "Waiting for Segmind"
    assert data["progress"]["waiting_for_provider"] == 1
