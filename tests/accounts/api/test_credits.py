"""The workspace's credits over the API: `GET /api/v1/credits` and its ledger,
`GET /api/v1/credits/ledger`."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs.models import Job
from tests.conftest import login_client
from tests.support.api_helpers import key_client

pytestmark = pytest.mark.usefixtures("no_trial_credits")


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def ledger(tenant: Tenant, owner: User) -> Job:
    """A grant of 50, then a job of 3 held: 47 available, 3 held. Returns the job."""
    account_services.credits_grant(tenant=tenant, amount=50, user=owner, memo="welcome")
    job = Job.objects.create(tenant=tenant, model="bria-product-packshot", price=3)
    account_services.credits_hold(tenant=tenant, job=job, amount=3)
    return job


def test_the_credits_say_what_the_workspace_has_holds_and_can_use(
    api: Client, tenant: Tenant, ledger: Job
):
    body = api.get("/api/v1/credits").json()

    assert body == {
        "balance": 50,
        "held": 3,
        "available": 47,
        "low_balance_threshold": tenant.low_balance_threshold,
        "buy_url": f"http://testserver/w/{tenant.slug}/credits/",
    }


def test_the_ledger_lists_the_entries_newest_first(api: Client, owner: User, ledger: Job):
    entries = api.get("/api/v1/credits/ledger").json()["results"]

    assert [(e["kind"], e["amount"], e["balance_after"], e["held_after"]) for e in entries] == [
        ("hold", -3, 47, 3),
        ("grant", 50, 50, 0),
    ]
    assert entries[0]["job"] == str(ledger.pk)
    assert (entries[1]["job"], entries[1]["memo"]) == (None, "welcome")
    assert (entries[0]["created_by"], entries[1]["created_by"]) == (None, owner.email)


def test_the_ledger_pages_with_a_cursor_and_filters_by_kind(
    api: Client, tenant: Tenant, ledger: Job
):
    for n in range(3):
        account_services.credits_grant(tenant=tenant, amount=1, user=None, memo=f"g{n}")

    first = api.get("/api/v1/credits/ledger?kind=grant&limit=2").json()
    second = api.get(first["next"]).json()

    memos = [e["memo"] for e in first["results"] + second["results"]]
    assert memos == ["g2", "g1", "g0", "welcome"]
    assert second["next"] is None
    holds = api.get("/api/v1/credits/ledger?kind=hold").json()["results"]
    assert [e["kind"] for e in holds] == ["hold"]


def test_a_bad_kind_is_refused_naming_the_parameter(api: Client, ledger: Job):
    response = api.get("/api/v1/credits/ledger?kind=gift")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {"kind"}


def test_a_member_signed_in_reads_the_workspaces_credits(member: User, tenant: Tenant, ledger: Job):
    client = login_client(member)
    client.get(f"/w/{tenant.slug}/")

    assert client.get("/api/v1/credits").json()["available"] == 47
    assert len(client.get("/api/v1/credits/ledger").json()["results"]) == 2


def test_another_workspace_sees_only_its_own_credits(ledger: Job, outsider: User):
    other_tenant = Tenant.objects.get(memberships__user=outsider)
    other = key_client(other_tenant)
    outsider_session = login_client(outsider)
    outsider_session.get(f"/w/{other_tenant.slug}/")

    for client in (other, outsider_session):
        assert client.get("/api/v1/credits").json()["balance"] == 0
        assert client.get("/api/v1/credits/ledger").json()["results"] == []


def test_credits_need_a_key_or_a_session(db):
    response = Client().get("/api/v1/credits")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert Client().get("/api/v1/credits/ledger").status_code == 401
