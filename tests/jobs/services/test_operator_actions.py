"""What operators do from the admin, each a service that makes the change and records it
in the operators' audit trail together: refunding a job, clearing a Segmind pause."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import services as account_services
from accounts.models import (
    CreditEntry,
    CreditKind,
    OperatorAction,
    OperatorActionCode,
    Tenant,
    User,
)
from jobs import services
from jobs.models import Job, JobPrice, JobStatus, ProviderPause

pytestmark = pytest.mark.django_db

PACKSHOT = "bria-product-packshot"
KEY = "platform-key-0001"


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser(email="ops@studio.test", password="x")


def _job(tenant: Tenant, owner: User, product_jpeg: bytes) -> Job:
    return services.job_submit(
        tenant=tenant,
        user=owner,
        model=PACKSHOT,
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )


def _charged_job(tenant: Tenant, owner: User, product_jpeg: bytes) -> Job:
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    job = _job(tenant, owner, product_jpeg)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    return job


def test_a_refund_gives_the_credits_back_and_records_the_operators_why(
    tenant: Tenant, owner: User, operator: User, product_jpeg: bytes
) -> None:
    job = _charged_job(tenant, owner, product_jpeg)

    entry = services.job_operator_refund(job=job, actor=operator, memo="the shop could not use it")

    assert (entry.kind, entry.amount, entry.memo) == (
        CreditKind.REFUND,
        3,
        "the shop could not use it",
    )
    action = OperatorAction.objects.get()
    assert (action.action, action.actor, action.tenant, action.target, action.reason) == (
        OperatorActionCode.CREDITS_REFUND,
        operator,
        tenant,
        f"job {job.pk}",
        "the shop could not use it",
    )
    assert action.details["credit_entry"] == entry.pk
    assert action.details["balance_after"] == entry.balance_after


def test_a_refused_refund_records_nothing(
    tenant: Tenant, owner: User, operator: User, product_jpeg: bytes
) -> None:
    job = _charged_job(tenant, owner, product_jpeg)
    services.job_operator_refund(job=job, actor=operator, memo="unusable")

    with pytest.raises(account_services.CreditError) as raised:
        services.job_operator_refund(job=job, actor=operator, memo="again")

    assert raised.value.code == "already_refunded"
    assert OperatorAction.objects.count() == 1
    assert CreditEntry.objects.filter(kind=CreditKind.REFUND).count() == 1


def _pause(tenant: Tenant, owner: User, product_jpeg: bytes) -> ProviderPause:
    key = services.SegmindKey(key=KEY, key_id=services.segmind_key_id(KEY), tenant_id=None)
    for _ in range(2):
        job = _job(tenant, owner, product_jpeg)
        Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
        services.provider_pause_open(job_id=job.pk, key=key, provider_message="Insufficient")
    return ProviderPause.objects.get()


def test_clearing_a_pause_resumes_its_jobs_and_records_the_operators_why(
    tenant: Tenant, owner: User, operator: User, product_jpeg: bytes
) -> None:
    pause = _pause(tenant, owner, product_jpeg)

    resumed = services.provider_pause_operator_clear(
        pause=pause, actor=operator, reason="topped up Segmind"
    )

    assert resumed == 2
    assert not Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER).exists()
    pause.refresh_from_db()
    assert (pause.cleared_by, pause.cleared_reason) == (operator, "topped up Segmind")
    action = OperatorAction.objects.get()
    assert (action.action, action.actor, action.reason) == (
        OperatorActionCode.PAUSE_CLEAR,
        operator,
        "topped up Segmind",
    )
    assert action.details == {"resumed_jobs": 2, "occurrences": pause.occurrences}


def test_clearing_a_cleared_pause_records_nothing(
    tenant: Tenant, owner: User, operator: User, product_jpeg: bytes
) -> None:
    pause = _pause(tenant, owner, product_jpeg)
    services.provider_pause_operator_clear(pause=pause, actor=operator, reason="first")

    again = services.provider_pause_operator_clear(pause=pause, actor=operator, reason="twice")

    assert again is None
    assert OperatorAction.objects.count() == 1


def test_a_blank_reason_clears_nothing(
    tenant: Tenant, owner: User, operator: User, product_jpeg: bytes
) -> None:
    pause = _pause(tenant, owner, product_jpeg)

    with pytest.raises(account_services.OperatorActionError):
        services.provider_pause_operator_clear(pause=pause, actor=operator, reason=" ")

    pause.refresh_from_db()
    assert pause.is_open
    assert Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER).count() == 2
