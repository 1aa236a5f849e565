"""An operator's grant or adjustment of a workspace's credits: the ledger entry and its
record in the operators' audit trail, made by one service each, commit together."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import CreditEntry, OperatorAction, OperatorActionCode, Tenant, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser(email="ops@studio.test", password="x")


def _balance(tenant: Tenant) -> int:
    tenant.refresh_from_db()
    return tenant.credit_balance


def test_a_grant_adds_credits_and_records_the_balance_before_and_after(
    tenant: Tenant, operator: User
) -> None:
    before = _balance(tenant)

    entry = services.credits_operator_grant(
        tenant=tenant, amount=40, actor=operator, memo="invoice 2026-031 paid"
    )

    assert _balance(tenant) == before + 40 == entry.balance_after
    action = OperatorAction.objects.get()
    assert (action.action, action.actor, action.tenant, action.target, action.reason) == (
        OperatorActionCode.CREDITS_GRANT,
        operator,
        tenant,
        f"workspace {tenant.slug}",
        "invoice 2026-031 paid",
    )
    assert action.details == {
        "amount": 40,
        "balance_before": before,
        "balance_after": before + 40,
        "credit_entry": entry.pk,
    }


def test_an_adjustment_down_records_the_negative_amount(tenant: Tenant, operator: User) -> None:
    services.credits_operator_grant(tenant=tenant, amount=10, actor=operator, memo="start")

    entry = services.credits_operator_adjust(
        tenant=tenant, amount=-3, actor=operator, memo="double grant"
    )

    action = OperatorAction.objects.get(action=OperatorActionCode.CREDITS_ADJUST)
    assert (action.details["amount"], action.details["credit_entry"]) == (-3, entry.pk)
    assert action.reason == "double grant"


def test_a_grant_without_a_why_writes_neither_the_entry_nor_the_record(
    tenant: Tenant, operator: User
) -> None:
    before = _balance(tenant)
    entries = CreditEntry.objects.count()

    with pytest.raises(services.OperatorActionError):
        services.credits_operator_grant(tenant=tenant, amount=5, actor=operator, memo="  ")

    assert _balance(tenant) == before
    assert CreditEntry.objects.count() == entries
    assert not OperatorAction.objects.exists()


def test_a_refused_adjustment_records_nothing(tenant: Tenant, operator: User) -> None:
    with pytest.raises(services.CreditError):
        services.credits_operator_adjust(
            tenant=tenant, amount=-(_balance(tenant) + 1), actor=operator, memo="too much"
        )
    assert not OperatorAction.objects.exists()
