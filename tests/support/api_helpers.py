"""What the API's tests share: a client holding a workspace's API key, and the check that
an answer is a problem (`application/problem+json`) with the status and code expected."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts import services as account_services
from accounts.models import Tenant


def key_client(tenant: Tenant, **extra: Any) -> Client:
    """A client that sends a new API key of `tenant` with every request."""
    key = account_services.api_key_create(tenant=tenant, name="test").secret
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}", **extra)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The answer's problem body, after checking it has every member of the one shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(f"#error-{code}")
    assert body["title"] and body["detail"]
    return body
