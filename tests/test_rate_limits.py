"""Rate limits per API key: reads and writes counted apart, 429 in the problem shape with
`Retry-After`, and one key's traffic never slows another's."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Tenant, User
from tests.support.api_helpers import key_client


def test_a_key_past_its_read_limit_gets_429_with_retry_after(tenant: Tenant, settings: Any):
    settings.API_RATE_LIMIT_READ = "3/min"
    api = key_client(tenant)

    answers = [api.get("/api/v1/jobs") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited["Content-Type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_each_key_has_its_own_budget(tenant: Tenant, outsider: User, settings: Any):
    settings.API_RATE_LIMIT_READ = "1/min"
    busy, calm = key_client(tenant), key_client(tenant)
    theirs = key_client(Tenant.objects.get(memberships__user=outsider))

    assert busy.get("/api/v1/jobs").status_code == 200
    assert busy.get("/api/v1/jobs").status_code == 429
    assert calm.get("/api/v1/jobs").status_code == 200
    assert theirs.get("/api/v1/jobs").status_code == 200


def test_writes_have_their_own_limit(tenant: Tenant, settings: Any):
    settings.API_RATE_LIMIT_READ = "100/min"
    settings.API_RATE_LIMIT_WRITE = "1/min"
    api = key_client(tenant)

    first = api.post("/api/v1/jobs", {}, content_type="application/json")
    second = api.post("/api/v1/jobs", {}, content_type="application/json")

    assert first.status_code == 400  # counted, and refused for what it is
    assert second.status_code == 429
    assert api.get("/api/v1/jobs").status_code == 200


@pytest.mark.parametrize("rate", ["2/min", "2/hour"])
def test_the_limits_come_from_the_settings(tenant: Tenant, settings: Any, rate: str):
    settings.API_RATE_LIMIT_READ = rate
    api = key_client(tenant)

    statuses = [api.get("/api/v1/models").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert int(api.get("/api/v1/models")["Retry-After"]) > (60 if "hour" in rate else 0)
