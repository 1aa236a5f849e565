"""The credit ledger: append-only entries, totals kept with them, a job held, captured
or released exactly once, and never a negative balance, even under concurrency."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Sum

from accounts import services
from accounts.models import CreditEntry, CreditKind, Tenant
from jobs.models import Job

# Every credit below is the test's own: the ledgers start empty.
pytestmark = pytest.mark.usefixtures("no_trial_credits")


def _job(tenant: Tenant) -> Job:
    return Job.objects.create(tenant=tenant, model="bria-product-packshot")


def _ledger_matches(tenant: Tenant) -> None:
    tenant.refresh_from_db()
    entries = CreditEntry.objects.for_tenant(tenant)
    assert (entries.aggregate(s=Sum("amount"))["s"] or 0) == tenant.credit_balance
    newest = entries.first()
    if newest is not None:
        assert (newest.balance_after, newest.held_after) == (
            tenant.credit_balance,
            tenant.credit_held,
        )


def test_a_grant_raises_the_balance_and_records_who_and_why(tenant, owner):
    entry = services.credits_grant(tenant=tenant, amount=20, user=owner, memo="welcome")
    assert (entry.kind, entry.amount, entry.balance_after) == (CreditKind.GRANT, 20, 20)
    assert (entry.created_by, entry.memo) == (owner, "welcome")
    _ledger_matches(tenant)


@pytest.mark.parametrize("amount", [0, -5])
def test_a_grant_must_be_positive(tenant, owner, amount):
    with pytest.raises(services.CreditError) as raised:
        services.credits_grant(tenant=tenant, amount=amount, user=owner, memo="x")
    assert raised.value.code == "invalid_amount"
    assert not CreditEntry.objects.exists()


def test_a_hold_takes_the_price_and_a_capture_spends_it(tenant, owner):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="")
    job = _job(tenant)
    services.credits_hold(tenant=tenant, job=job, amount=3)
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (7, 3)
    capture = services.credits_capture(job=job)
    assert capture is not None and capture.amount == 0
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (7, 0)
    _ledger_matches(tenant)


def test_a_release_gives_the_held_price_back(tenant, owner):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="")
    job = _job(tenant)
    services.credits_hold(tenant=tenant, job=job, amount=4)
    services.credits_release(job=job)
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (10, 0)
    _ledger_matches(tenant)


def test_a_hold_beyond_the_balance_is_refused_and_leaves_nothing(tenant, owner):
    services.credits_grant(tenant=tenant, amount=2, user=owner, memo="")
    with pytest.raises(services.CreditError) as raised:
        services.credits_hold(tenant=tenant, job=_job(tenant), amount=3)
    assert raised.value.code == "insufficient_credits"
    assert CreditEntry.objects.filter(kind=CreditKind.HOLD).count() == 0
    _ledger_matches(tenant)


def test_holding_capturing_and_releasing_twice_counts_once(tenant, owner):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="")
    job = _job(tenant)
    first = services.credits_hold(tenant=tenant, job=job, amount=2)
    assert services.credits_hold(tenant=tenant, job=job, amount=2).pk == first.pk
    services.credits_capture(job=job)
    services.credits_capture(job=job)
    # Captured: a late release (a duplicate failure task) changes nothing.
    assert services.credits_release(job=job) is None
    assert CreditEntry.objects.filter(job=job).count() == 2
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (8, 0)
    _ledger_matches(tenant)


def test_settling_a_job_that_holds_nothing_does_nothing(tenant):
    assert services.credits_capture(job=_job(tenant)) is None
    assert not CreditEntry.objects.exists()


def test_an_adjustment_below_zero_is_refused_with_a_message(tenant, owner):
    services.credits_grant(tenant=tenant, amount=5, user=owner, memo="")
    with pytest.raises(services.CreditError) as raised:
        services.credits_adjust(tenant=tenant, amount=-6, user=owner, memo="typo")
    assert raised.value.code == "insufficient_credits"
    entry = services.credits_adjust(tenant=tenant, amount=-5, user=owner, memo="typo")
    assert entry.balance_after == 0
    _ledger_matches(tenant)


def test_an_adjustment_needs_a_memo(tenant, owner):
    with pytest.raises(services.CreditError) as raised:
        services.credits_adjust(tenant=tenant, amount=5, user=owner, memo="  ")
    assert raised.value.code == "memo_required"


def test_entries_are_never_edited_or_deleted(tenant, owner):
    entry = services.credits_grant(tenant=tenant, amount=5, user=owner, memo="")
    entry.amount = 500
    with pytest.raises(ValueError, match="never edited"):
        entry.save()
    with pytest.raises(ValueError, match="never deleted"):
        entry.delete()
    assert CreditEntry.objects.get().amount == 5


def test_the_database_refuses_a_negative_balance_and_a_second_hold(tenant):
    job = _job(tenant)
    with pytest.raises(IntegrityError), transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(credit_balance=-1)
    row = {"tenant": tenant, "amount": 0, "balance_after": 0, "held_after": 0, "job": job}
    CreditEntry.objects.create(kind=CreditKind.HOLD, **row)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditEntry.objects.create(kind=CreditKind.HOLD, **row)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditEntry.objects.create(kind=CreditKind.GRANT, **{**row, "balance_after": -1})


@pytest.mark.django_db(transaction=True)
def test_two_hundred_concurrent_holds_on_credit_for_fifty_give_exactly_fifty(tenant, owner):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises every writer")
    services.credits_grant(tenant=tenant, amount=50, user=owner, memo="")
    jobs = [_job(tenant) for _ in range(200)]
    held: list[int] = []
    refused: list[int] = []
    start = threading.Barrier(20)

    def worker(chunk: list[Job]) -> None:
        start.wait()
        try:
            for job in chunk:
                try:
                    services.credits_hold(tenant=tenant, job=job, amount=1)
                    held.append(1)
                except services.CreditError:
                    refused.append(1)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(jobs[i::20],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(held), len(refused)) == (50, 150)
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (0, 50)
    assert CreditEntry.objects.filter(kind=CreditKind.HOLD).count() == 50
    assert not CreditEntry.objects.filter(balance_after__lt=0).exists()
    _ledger_matches(tenant)


def _charged_job(tenant: Tenant, owner, price: int = 4) -> Job:
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="to spend")
    job = _job(tenant)
    services.credits_hold(tenant=tenant, job=job, amount=price)
    services.credits_capture(job=job)
    return job


def test_an_operator_refund_gives_a_charged_job_its_credits_back_once(tenant, owner):
    job = _charged_job(tenant, owner)

    entry = services.credits_refund(job=job, user=owner, memo="blurry result")

    assert (entry.kind, entry.amount, entry.job, entry.memo) == (
        CreditKind.REFUND,
        4,
        job,
        "blurry result",
    )
    _ledger_matches(tenant)
    assert tenant.credit_balance == 10
    with pytest.raises(services.CreditError) as again:
        services.credits_refund(job=job, user=owner, memo="again")
    assert again.value.code == "already_refunded"
    tenant.refresh_from_db()
    assert tenant.credit_balance == 10


def test_only_a_charged_job_can_be_refunded_and_a_refund_needs_a_memo(tenant, owner):
    job = _charged_job(tenant, owner)
    with pytest.raises(services.CreditError) as no_memo:
        services.credits_refund(job=job, user=owner, memo=" ")
    assert no_memo.value.code == "memo_required"

    released = _job(tenant)
    services.credits_hold(tenant=tenant, job=released, amount=2)
    services.credits_release(job=released)
    with pytest.raises(services.CreditError) as not_charged:
        services.credits_refund(job=released, user=owner, memo="why not")
    assert not_charged.value.code == "not_refundable"
    assert not CreditEntry.objects.filter(kind=CreditKind.REFUND).exists()
