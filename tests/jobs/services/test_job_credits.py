"""Jobs and credits: a job's price is held when it is submitted, captured when it
succeeds, released when it fails or is canceled; exactly once, even in a race."""

from __future__ import annotations

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import close_old_connections, connection

from accounts import services as account_services
from accounts.models import CreditEntry, CreditKind, Tenant
from jobs import services, tasks
from jobs.models import Asset, Job, JobPrice, JobStatus
from tests.support.photos import backdrop_only_png

# Every credit below is the test's own: the ledgers start empty.
pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"


@pytest.fixture
def priced(db) -> JobPrice:
    return JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)


def _submit(tenant, owner, data: bytes) -> Job:
    upload = SimpleUploadedFile("mug.jpg", data, content_type="image/jpeg")
    return services.job_submit(tenant=tenant, user=owner, model=PACKSHOT, upload=upload)


def _totals(tenant: Tenant) -> tuple[int, int]:
    tenant.refresh_from_db()
    return tenant.credit_balance, tenant.credit_held


def test_a_free_job_needs_no_credit_and_writes_no_entry(tenant, owner, product_jpeg):
    job = _submit(tenant, owner, product_jpeg)
    tasks.job_run(str(job.id))
    assert not CreditEntry.objects.exists()


def test_a_job_price_can_grow_with_megapixels(db):
    price = JobPrice(model="ai-product-photography", credits=2, credits_per_megapixel=3)
    assert price.for_params({"megapixel": "1.0"}) == 5
    assert price.for_params({"megapixel": "1.5"}) == 8
    assert JobPrice(model=PACKSHOT, credits=4, credits_per_megapixel=3).for_params({}) == 4


def test_submitting_holds_the_price_and_success_captures_it(tenant, owner, product_jpeg, priced):
    account_services.credits_grant(tenant=tenant, amount=5, user=owner, memo="")
    job = _submit(tenant, owner, product_jpeg)
    assert job.price == 2
    assert _totals(tenant) == (3, 2)
    tasks.job_run(str(job.id))
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert _totals(tenant) == (3, 0)
    assert list(job.credit_entries.order_by("id").values_list("kind", flat=True)) == [
        CreditKind.HOLD,
        CreditKind.CAPTURE,
    ]


def test_a_failed_job_gives_its_credits_back(tenant, owner, priced):
    account_services.credits_grant(tenant=tenant, amount=5, user=owner, memo="")
    job = _submit(tenant, owner, backdrop_only_png())
    tasks.job_run(str(job.id))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert _totals(tenant) == (5, 0)


def test_a_canceled_job_gives_its_credits_back(tenant, owner, product_jpeg, priced):
    account_services.credits_grant(tenant=tenant, amount=5, user=owner, memo="")
    job = _submit(tenant, owner, product_jpeg)
    assert services.job_cancel(job=job) is True
    assert services.job_cancel(job=job) is False
    assert _totals(tenant) == (5, 0)
    assert job.credit_entries.filter(kind=CreditKind.RELEASE).count() == 1


def test_a_job_beyond_the_balance_is_refused_and_leaves_nothing(
    tenant, owner, product_jpeg, priced
):
    account_services.credits_grant(tenant=tenant, amount=1, user=owner, memo="")
    with pytest.raises(services.JobError) as raised:
        _submit(tenant, owner, product_jpeg)
    assert raised.value.code == "insufficient_credits"
    assert not Job.objects.exists() and not Asset.objects.exists()
    assert _totals(tenant) == (1, 0)


def test_a_refusal_stays_a_refusal_when_the_storage_cannot_delete_the_photo(
    tenant, owner, product_jpeg, priced, monkeypatch, settings
):
    from pathlib import Path

    from django.core.files.storage import FileSystemStorage

    tried: list[str] = []
    delete = FileSystemStorage.delete

    def unreachable_for_the_photo(self, name):
        tried.append(name)
        if not name.endswith((".thumb.jpg", ".thumb.webp")):
            raise OSError("storage unreachable")
        delete(self, name)

    monkeypatch.setattr(FileSystemStorage, "delete", unreachable_for_the_photo)
    account_services.credits_grant(tenant=tenant, amount=1, user=owner, memo="")
    with pytest.raises(services.JobError) as raised:
        _submit(tenant, owner, product_jpeg)
    assert raised.value.code == "insufficient_credits"
    # The photo's delete failed (logged, left for an operator); its thumbnail's went on.
    assert len(tried) == 2
    left = [p.name for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert left == [Path(tried[0]).name]


def test_a_task_delivered_twice_captures_once(tenant, owner, product_jpeg, priced):
    account_services.credits_grant(tenant=tenant, amount=5, user=owner, memo="")
    job = _submit(tenant, owner, product_jpeg)
    tasks.job_run(str(job.id))
    tasks.job_run(str(job.id))
    assert job.credit_entries.filter(kind=CreditKind.CAPTURE).count() == 1
    assert _totals(tenant) == (3, 0)


@pytest.mark.django_db(transaction=True)
def test_two_hundred_concurrent_submits_on_credit_for_fifty_make_fifty_jobs(
    tenant, owner, product_jpeg
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises every writer")
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=1)
    account_services.credits_grant(tenant=tenant, amount=50, user=owner, memo="")
    made: list[Job] = []
    refused: list[str] = []
    start = threading.Barrier(20)

    def worker() -> None:
        start.wait()
        try:
            for _ in range(10):
                try:
                    made.append(_submit(tenant, owner, product_jpeg))
                except services.JobError as e:
                    refused.append(e.code)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(made), Job.objects.count()) == (50, 50)
    assert refused == ["insufficient_credits"] * 150
    balance, held = _totals(tenant)
    entries = CreditEntry.objects.for_tenant(tenant)
    # The tasks run inline here: the jobs that finished have captured their hold.
    captured = entries.filter(kind=CreditKind.CAPTURE).count()
    assert (balance, held + captured) == (0, 50)
    assert entries.filter(kind=CreditKind.HOLD).count() == 50
    assert sum(entries.values_list("amount", flat=True)) == 0
    assert not entries.filter(balance_after__lt=0).exists()
