"""`manage.py create_tenant`, for scripts and CI, and API keys."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import ApiKey, Membership, Role, Tenant, User


def _run(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_tenant", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_it_creates_a_workspace_and_its_owner(db):
    _run("--name", "Acme Mugs", "--owner", "Boss@acme.test", "--password", "s3cret-pass-99")
    user = User.objects.get()
    assert user.email == "boss@acme.test"
    assert user.check_password("s3cret-pass-99")
    assert Membership.objects.get(user=user, tenant=Tenant.objects.get()).role == Role.OWNER


def test_it_prints_the_api_key_alone_on_the_last_line_and_stores_only_a_hash(db):
    lines = _run("--name", "Acme", "--owner", "boss@acme.test", "--api-key", "--credits", "50")
    key = lines[-1]
    assert key.startswith("ps_") and " " not in key
    stored = ApiKey.objects.get()
    assert key not in (stored.prefix, stored.digest)
    assert stored.matches(key.split("_", 2)[2])
    response = Client().get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_revoked_or_wrong_key_is_refused(db):
    key = _run("--name", "Acme", "--owner", "boss@acme.test", "--api-key")[-1]
    assert Client().get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Bearer {key}x").status_code == 401
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert Client().get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


def test_an_existing_owner_gets_a_second_workspace(owner):
    _run("--name", "Second", "--owner", owner.email)
    assert Tenant.objects.filter(memberships__user=owner).count() == 2


def test_a_negative_credit_grant_is_refused(db):
    with pytest.raises(CommandError, match="--credits"):
        _run("--name", "Acme", "--owner", "boss@acme.test", "--credits", "-5")
    assert not Tenant.objects.exists()


def test_credits_are_granted_besides_the_trial_credits(db, settings):
    settings.TRIAL_CREDITS = 20
    _run("--name", "Acme", "--owner", "boss@acme.test", "--credits", "50")
    tenant = Tenant.objects.get()
    assert tenant.credit_balance == 70
    assert sorted(tenant.credit_entries.values_list("amount", flat=True)) == [20, 50]


def test_with_an_api_key_standard_output_is_the_key_alone(db):
    out, err = StringIO(), StringIO()
    call_command(
        "create_tenant", "--name", "Acme", "--owner", "boss@acme.test", "--api-key",
        stdout=out, stderr=err,
    )  # fmt: skip

    assert out.getvalue().strip().startswith("ps_")
    assert len(out.getvalue().strip().splitlines()) == 1  # KEY=$(manage.py create_tenant ...)
    assert "Created workspace Acme (acme)" in err.getvalue()
