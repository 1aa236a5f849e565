"""Jobs on Segmind, end to end against the fake Segmind on 127.0.0.1.

django-q2 runs tasks inline in tests: submitting a job enqueues the dispatcher, which
claims and submits the job, polls until the request ends and stores the output. Faults
are injected in the fake.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Lease
from jobs import catalog, services, tasks
from jobs import dispatcher as provider
from jobs.engines.segmind import client as segmind
from jobs.models import Asset, AssetKind, Job, JobStatus
from tests.support.fake_segmind import FakeSegmind

KEY = "test-key"
PROMPTS = {
    "ai-product-photography": {"prompt": "on a marble counter"},
    "segmind-scenecraft-v01": {"prompt": "in a living room"},
    "qwen-image-edit-plus-product-photography": {"prompt": "place it in a kitchen"},
    "65c9c7f641c340d7ef2f7134-v1": {"product_prompt": "a blue running shoe"},
    "bria-product-packshot": {},
}


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=0.3, api_key=KEY) as server:
        settings.SEGMIND_API_KEY = KEY
        # Delivery, not price, is tested here: a model no operator priced is free.
        settings.SEGMIND_DEFAULT_PRICE = 0
        settings.SEGMIND_API_BASE = server.base_url
        settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SEGMIND_FIRST_POLL_SECONDS = 0.1
        settings.SEGMIND_POLL_INTERVAL_SECONDS = 0.1
        settings.SEGMIND_DISPATCHER_SECONDS = 20
        # Pacing to a rate limit is tests/jobs/engines/segmind/test_rate_limits.py's subject.
        settings.SEGMIND_RATE_LIMIT = "unlimited"
        yield server


def _submit(tenant, owner, product_jpeg, model: str, capture, **params: Any) -> Job:
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    with capture(execute=True):
        job = services.job_submit(
            tenant=tenant,
            user=owner,
            model=model,
            upload=upload,
            params={**PROMPTS[model], **params},
        )
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("model", list(PROMPTS))
def test_every_model_runs_on_segmind_from_submit_to_the_gallery(
    model, fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    job = _submit(tenant, owner, product_jpeg, model, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert job.engine == "segmind"
    output = job.assets.get(kind=AssetKind.OUTPUT)
    assert output.format == "PNG" and len(output.sha256) == 64
    size = catalog.model(model).output_size(job.params)
    if size:
        assert (output.width, output.height) == size
    assert fake.stats()["submissions"] == 1


def test_a_pasted_url_is_passed_through_and_an_upload_goes_as_base64(
    fake, tenant, owner, product_jpeg, http_server, django_capture_on_commit_callbacks
):
    url = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        services.job_submit(tenant=tenant, user=owner, model="bria-product-packshot", image_url=url)
    _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    sent = [r["params"]["image_url"] for r in fake.stats()["requests"].values()]
    assert url in sent
    assert any(not value.startswith("http") for value in sent)


def test_qwen_base64_output_is_stored_like_a_url_output(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    model = "qwen-image-edit-plus-product-photography"
    job = _submit(
        tenant, owner, product_jpeg, model, django_capture_on_commit_callbacks, base64=True
    )
    assert job.status == JobStatus.SUCCEEDED
    assert job.assets.get(kind=AssetKind.OUTPUT).width == 1024
    assert fake.stats()["output_downloads"] == 0


def test_segminds_406_makes_the_job_wait_for_the_account_to_have_credit(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.insufficient_credits(1)
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.WAITING_FOR_PROVIDER
    assert job.error_code == ""
    assert "Nothing has been charged" in job.waiting_message
    assert job.attempts == 0  # Segmind answered: no attempt lost
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()


def test_a_failed_request_fails_the_job_with_segminds_message(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.fail_jobs(1, error="NSFW content detected")
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.FAILED
    assert job.error_code == "provider_failed"
    assert "NSFW content detected" in job.error_message


def test_a_429_on_submit_is_retried_after_retry_after_and_submits_once(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.rate_limit(2, retry_after=0.2, scope="submit")
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.SUCCEEDED
    stats = fake.stats()
    assert stats["submissions"] == 1
    assert stats["submit_attempts"] == 3


def test_transient_errors_while_polling_are_retried(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.server_error(2, status=502, scope="poll")
    fake.faults.malformed_json(1, scope="poll")
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert fake.stats()["submissions"] == 1


def test_a_bad_key_fails_the_job_with_a_clear_code(
    fake, settings, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    settings.SEGMIND_API_KEY = "wrong-key"
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.FAILED
    assert job.error_code == "provider_unauthorized"
    assert "wrong-key" not in job.error_message


def _submitted_job(fake, tenant, owner, product_jpeg) -> Job:
    """A job claimed and submitted, its request id stored, not polled yet.

    That is the state a dispatcher killed right after the commit of the request id
    leaves behind.
    """
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    job = services.job_submit(
        tenant=tenant, user=owner, model="bria-product-packshot", upload=upload
    )
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    job = Job.objects.select_related("input_asset").get(pk=job.pk)
    spec = catalog.model(job.model)
    payload = provider.segmind_payload(job=job, spec=spec)

    async def submit() -> segmind.Submission:
        async with provider._client() as client:
            return await client.submit(spec.slug, spec.kind, payload)

    assert provider.request_store(job_id=job.pk, submission=asyncio.run(submit()))
    job.refresh_from_db()
    assert job.provider_request_id
    return job


def test_a_result_that_expired_fails_with_a_clear_code(fake, tenant, owner, product_jpeg):
    job = _submitted_job(fake, tenant, owner, product_jpeg)
    fake.faults.expire(job.provider_request_id)
    provider.segmind_dispatch(budget_seconds=5)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "result_expired"


def test_a_job_whose_request_id_is_stored_is_never_submitted_again(
    fake, tenant, owner, product_jpeg
):
    job = _submitted_job(fake, tenant, owner, product_jpeg)
    # A dispatcher died after storing the request id; tasks are delivered again.
    assert tasks.job_run(str(job.id)) is False
    first = provider.segmind_dispatch(budget_seconds=5)
    second = provider.segmind_dispatch(budget_seconds=5)
    assert (first["submitted"], first["finished"]) == (0, 1)
    assert (second["submitted"], second["finished"]) == (0, 0)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert fake.stats()["submissions"] == 1
    assert job.assets.filter(kind=AssetKind.OUTPUT).count() == 1


def test_the_sweeper_never_resubmits_a_job_with_a_request_id(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    job = _submitted_job(fake, tenant, owner, product_jpeg)
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.jobs_sweep()
    assert result["requeued"] == 0
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED  # the sweeper woke the dispatcher
    assert fake.stats()["submissions"] == 1


def test_a_second_dispatcher_stands_aside_while_one_holds_the_lease(
    fake, tenant, owner, product_jpeg
):
    _submitted_job(fake, tenant, owner, product_jpeg)
    Lease.objects.update_or_create(
        name=provider.LEASE,
        defaults={"holder": "other", "leased_until": "2999-01-01T00:00:00Z"},
    )
    assert provider.segmind_dispatch(budget_seconds=1)["skipped"] == 1


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_store_each_output_once(
    fake, tenant, owner, product_jpeg, no_worker
):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrency runs on PostgreSQL (CI runs the suite there too)")
    # Without a test transaction, on-commit tasks would run at once: keep the jobs
    # submitted but unpolled, for the two dispatchers below.
    jobs = [_submitted_job(fake, tenant, owner, product_jpeg) for _ in range(3)]
    fake.faults.latency = 0.2
    results: list[dict[str, int]] = []

    def run() -> None:
        from django.db import connection

        results.append(provider.segmind_dispatch(budget_seconds=5))
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED
        assert job.assets.filter(kind=AssetKind.OUTPUT).count() == 1
    assert sum(r["finished"] for r in results) == 3


# Outputs go through the same safe fetcher as product photos ------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/",  # 169.254.169.254 as one number
        "http://0xa9.0xfe.0xa9.0xfe/latest/",
        "http://[::ffff:169.254.169.254]/latest/",
        "http://10.0.0.8/out.png",
    ],
)
def test_an_output_address_outside_the_allowed_hosts_is_refused_before_connecting(
    url, fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    # The autouse network guard fails the test if a connection to it is even tried.
    fake.faults.output_url(1, url)
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.FAILED
    assert job.error_code == "output_unavailable"
    assert job.error_message.startswith("The result could not be saved:")
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()


def _gif() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("P", (20, 20)).save(buffer, format="GIF")
    return buffer.getvalue()


def _png_bomb() -> bytes:
    """A PNG header declaring 30,000 x 30,000 pixels, with almost nothing behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_gif(), "GIF images aren't supported"),
        (_png_bomb(), "too many pixels"),
        (b"<html>not an image</html>", "isn't a picture"),
    ],
    ids=["gif-named-png", "decompression-bomb", "html"],
)
def test_an_output_that_is_not_an_acceptable_image_is_refused(
    body, says, fake, http_server, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.output_url(1, http_server.route("/result.png", body, Content_Type="image/png"))
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.FAILED
    assert job.error_code == "output_unavailable"
    assert says in job.error_message
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()


def test_polls_start_soon_then_wait_for_the_models_usual_time(settings):
    settings.SEGMIND_POLL_INTERVAL_SECONDS = 1.0
    settings.SEGMIND_POLL_MAX_INTERVAL_SECONDS = 3.0
    # Nothing known of the model: every second, and every tenth of the wait later on.
    assert provider.poll_interval(1.0) == 1.0
    assert provider.poll_interval(20.0) == 2.0
    assert provider.poll_interval(600.0) == 3.0
    # Its requests lately took 16 s: nothing to ask until nine tenths of that.
    assert provider.poll_interval(1.0, expected=16.0) == pytest.approx(13.4)
    # Due now: twice as often as usual until it is done.
    assert provider.poll_interval(15.0, expected=16.0) == 0.75
    assert provider.poll_interval(4.6, expected=5.0) == 0.5


def test_what_a_dispatcher_learnt_of_a_models_time_is_kept_for_the_next(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    job = _submit(
        tenant, owner, product_jpeg, "bria-product-packshot", django_capture_on_commit_callbacks
    )
    assert job.status == JobStatus.SUCCEEDED
    lease = Lease.objects.get(name=provider.LEASE)
    # The fake reports its latency (0.3 s) as Segmind's inference time.
    assert lease.state["expected"] == {"bria-product-packshot": pytest.approx(0.3)}
    successor = provider._Dispatcher("next", 1.0)
    try:
        assert successor.expected == lease.state["expected"]
    finally:
        successor.loop.run_until_complete(successor._close())
        successor.io.shutdown()
        successor.loop.close()


def test_a_storm_of_429s_is_waited_out_and_every_job_is_submitted_once(
    fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    # 6 answers in a row are 429 "Retry-After: 1", whatever was asked: the first six of
    # the 20 submissions sent together. The key's gate closes for a second.
    fake.faults.rate_limit(6, retry_after=1)
    with django_capture_on_commit_callbacks(execute=True):
        jobs = [
            services.job_submit(
                tenant=tenant,
                user=owner,
                model="bria-product-packshot",
                upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
                params={"sku": f"storm-{i}"},
            )
            for i in range(20)
        ]
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
        assert job.assets.filter(kind=AssetKind.OUTPUT).count() == 1
    stats = fake.stats()
    assert stats["faults_served"]["429"] == 6
    assert stats["submissions"] == 20
    # Retry-After was honoured: after the last 429, nothing for a second (but what was
    # already on its way), and no job spent an attempt on a 429.
    key_stats = stats["rate_by_api_key"][KEY]
    last_429 = max(t for t, _ in key_stats["throttled"])
    assert [t for t in key_stats["requests"] if last_429 + 0.25 < t < last_429 + 1] == []
    assert all(job.attempts == 1 for job in jobs)


def test_jobs_the_dispatcher_finishes_send_their_events_to_their_own_workspace_only(
    fake, tenant, owner, outsider, product_jpeg, http_server, django_capture_on_commit_callbacks
):
    from accounts import services as account_services
    from accounts.models import Tenant, WebhookDelivery

    http_server.route("/hooks")
    account_services.webhook_endpoint_create(
        tenant=tenant, url=http_server.url("/hooks"), event_types=["job.succeeded"]
    )
    other = Tenant.objects.get(memberships__user=outsider)

    def upload() -> SimpleUploadedFile:
        return SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")

    # Submitted without running the dispatcher, which then finishes them all in one run.
    with django_capture_on_commit_callbacks(execute=False):
        ours = [
            services.job_submit(
                tenant=tenant, user=owner, model="bria-product-packshot", upload=upload()
            )
            for _ in range(3)
        ]
        services.job_submit(
            tenant=other, user=outsider, model="bria-product-packshot", upload=upload()
        )
    with django_capture_on_commit_callbacks(execute=True):
        provider.segmind_dispatch(budget_seconds=20)

    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}
    sent = WebhookDelivery.objects.filter(event_type="job.succeeded")
    assert sorted(str(d.job_id) for d in sent) == sorted(str(j.pk) for j in ours)
    assert not WebhookDelivery.objects.filter(tenant=other).exists()


def test_a_job_given_its_workspaces_endpoints_does_not_look_them_up_again(
    tenant, owner, product_jpeg, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs import images

    def running_job() -> Job:
        upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
        with django_capture_on_commit_callbacks(execute=False):
            job = services.job_submit(
                tenant=tenant, user=owner, model="bria-product-packshot", upload=upload
            )
        Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
        return job

    output = [(product_jpeg, images.inspect_image(product_jpeg))]
    given, looked_up = running_job(), running_job()
    with CaptureQueriesContext(connection) as given_queries:
        assert services.job_succeed(job=given, outputs=output, listening=[])
    with CaptureQueriesContext(connection) as looked_up_queries:
        assert services.job_succeed(job=looked_up, outputs=output)

    def endpoint_queries(captured: CaptureQueriesContext) -> list[str]:
        return [q["sql"] for q in captured.captured_queries if "webhookendpoint" in q["sql"]]

    assert endpoint_queries(given_queries) == []
    assert len(endpoint_queries(looked_up_queries)) == 1


# Results are stored on the I/O thread that fetched them, one job at a time --------------


class _StorageDown(OSError):
    pass


class _FlakyStorage:
    """The (local) storage refuses the next `failures` writes, then works again."""

    def __init__(self) -> None:
        self.failures = 0
        self.lock = threading.Lock()

    def refuse(self) -> bool:
        with self.lock:
            if self.failures <= 0:
                return False
            self.failures -= 1
            return True


@pytest.fixture
def flaky_storage(monkeypatch) -> _FlakyStorage:
    from django.core.files.storage import FileSystemStorage

    flaky = _FlakyStorage()
    save = FileSystemStorage.save

    def flaky_save(self, name, content, max_length=None):
        if flaky.refuse():
            raise _StorageDown(f"storage unreachable for {name}")
        return save(self, name, content, max_length=max_length)

    monkeypatch.setattr(FileSystemStorage, "save", flaky_save)
    return flaky


def _queued_jobs(tenant, owner, product_jpeg, count: int) -> list[Job]:
    jobs = []
    for _ in range(count):
        upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
        # Not run: the on-commit enqueue of the dispatcher is dropped with the test's
        # transaction, so the dispatcher below takes all of them at once.
        jobs.append(
            services.job_submit(
                tenant=tenant, user=owner, model="bria-product-packshot", upload=upload
            )
        )
    return jobs


def _output_files(settings) -> set[str]:
    from pathlib import Path

    root = Path(settings.MEDIA_ROOT)
    inputs = {str(a.pk) for a in Asset.objects.filter(kind=AssetKind.INPUT)}
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and path.name.split(".")[0] not in inputs
    }


def test_a_storage_failure_for_one_result_leaves_the_rest_of_the_batch_done(
    fake, tenant, owner, product_jpeg, flaky_storage, settings
):
    jobs = _queued_jobs(tenant, owner, product_jpeg, 3)
    flaky_storage.failures = 1  # the first result written, whichever job's it is

    counts = provider.segmind_dispatch(budget_seconds=10)

    assert (counts["submitted"], counts["finished"]) == (3, 2)
    for job in jobs:
        job.refresh_from_db()
        assert job.provider_request_id  # every request id saved: none is sent twice
    (unlucky,) = [job for job in jobs if job.status != JobStatus.SUCCEEDED]
    assert unlucky.status == JobStatus.RUNNING  # still in flight, to be polled again
    assert not unlucky.assets.filter(kind=AssetKind.OUTPUT).exists()
    assert len(_output_files(settings)) == 2

    again = provider.segmind_dispatch(budget_seconds=10)

    assert (again["submitted"], again["finished"]) == (0, 1)
    unlucky.refresh_from_db()
    assert unlucky.status == JobStatus.SUCCEEDED
    assert unlucky.assets.filter(kind=AssetKind.OUTPUT).count() == 1
    assert fake.stats()["submissions"] == 3
    assert len(_output_files(settings)) == 3


def test_results_stored_for_a_batch_that_rolls_back_are_deleted(
    fake, tenant, owner, product_jpeg, monkeypatch, settings
):
    from accounts import services as account_services

    jobs = _queued_jobs(tenant, owner, product_jpeg, 2)
    listening = account_services.webhook_endpoints_listening

    def fails_once_results_are_in(*, tenant_ids):
        if tenant_ids:  # only a batch with results loads the endpoints of their workspaces
            raise RuntimeError("the database went away")
        return listening(tenant_ids=tenant_ids)

    monkeypatch.setattr(account_services, "webhook_endpoints_listening", fails_once_results_are_in)

    with pytest.raises(RuntimeError, match="went away"):
        provider.segmind_dispatch(budget_seconds=10)

    assert _output_files(settings) == set()
    assert not Asset.objects.filter(kind=AssetKind.OUTPUT).exists()
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING and job.provider_request_id


def test_a_slow_storage_write_holds_up_its_own_job_only(
    fake, tenant, owner, product_jpeg, monkeypatch
):
    from django.core.files.storage import FileSystemStorage

    jobs = _queued_jobs(tenant, owner, product_jpeg, 3)
    succeeded: list[object] = []
    others_done = threading.Event()
    job_succeed = services.job_succeed

    def counting_succeed(**kwargs):
        moved = job_succeed(**kwargs)
        succeeded.append(kwargs["job"].pk)
        if len(succeeded) == 2:
            others_done.set()
        return moved

    monkeypatch.setattr(services, "job_succeed", counting_succeed)
    save = FileSystemStorage.save
    first = threading.Lock()
    waited: list[bool] = []

    def slow_first_save(self, name, content, max_length=None):
        if first.acquire(blocking=False):
            # The first result's write hangs (a slow S3) until the other two jobs are
            # recorded: only a database thread that never waits for it records them.
            waited.append(others_done.wait(timeout=30))
        return save(self, name, content, max_length=max_length)

    monkeypatch.setattr(FileSystemStorage, "save", slow_first_save)

    counts = provider.segmind_dispatch(budget_seconds=60)

    assert waited == [True]
    assert counts["finished"] == 3
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED
