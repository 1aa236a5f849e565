"""The API fuzzed against its own OpenAPI schema (Schemathesis, in-process over WSGI).

The schema is loaded from the app (`/api/schema/`) when this module is collected; every
operation in it becomes one test, run with generated requests, valid and invalid, sent
with the API key of a workspace that has a finished job (with its output asset) and a
preset, so that a valid path parameter names a real object. Every answer must pass
`CHECKS`: no server error, a status, content type, headers and body the operation
documents, invalid requests refused, and no answer without the key.

Deterministic (a fixed seed, derandomized Hypothesis, no example database) and bounded:
`MAX_EXAMPLES` generated requests per operation, plus Schemathesis's coverage cases (each
parameter's boundaries, unexpected methods and content types). `API_FUZZ_EXAMPLES` and
`API_FUZZ_SEED` in the environment run it deeper or differently, by hand.

Nothing leaves the process: the requests go to the WSGI application, and the fetcher
can neither resolve a name nor count any address as public (`no_fetching`), so a
generated `image_url` is refused before a socket opens.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import close_old_connections
from django.test import Client
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs import services as job_services
from jobs.models import AssetKind
from productstudio.lib import fetcher
from productstudio.wsgi import application

PACKSHOT = "bria-product-packshot"
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("API_FUZZ_SEED", "20250107"))
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    # Invalid input gets a 4xx, never a quiet default.
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    # Every operation refuses a request without the key.
    "ignored_auth",
]


@pytest.fixture
def no_fetching(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """The fetcher refuses every URL before a packet leaves: no name resolves and no
    address is public. Without this, a generated URL would reach the network guard,
    whose error the app would answer with a 500."""

    def refuse(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "name resolution is off in the fuzz tests")

    settings.FETCH_ALLOW_PRIVATE_HOSTS = []
    # Schemathesis sends many wrong API keys from one address on purpose; the lock they
    # would earn (tests/accounts/services/test_throttling.py) is not what these tests check.
    settings.API_KEY_FAILURE_LIMIT = 1_000_000
    monkeypatch.setattr(fetcher, "resolve_host", refuse)
    monkeypatch.setattr(fetcher, "is_public_address", lambda address: False)


@pytest.fixture
def in_process_requests() -> Iterator[None]:
    """Requests through the WSGI handler keep the test's database connection, as Django's
    test client does: the end-of-request hook would close it mid-transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    """A workspace's API key and its objects, by the name of the path parameter that
    names them."""
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_submit(
            tenant=tenant,
            user=owner,
            model=PACKSHOT,
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
    preset = job_services.preset_create(
        tenant=tenant, user=owner, model=PACKSHOT, name="House white", params={}
    )
    return {
        "key": account_services.api_key_create(tenant=tenant, name="fuzz").secret,
        "job_id": str(job.pk),
        "asset_id": str(job.assets.get(kind=AssetKind.OUTPUT).pk),
        "preset_id": str(preset.pk),
        "slug": PACKSHOT,
    }


# Loaded once, when the module is collected: the schema view needs no database.
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json",
    application,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    ),
)


@schema.parametrize()
# One workspace per operation, shared by its examples: what they add stays, as in real use.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@pytest.mark.usefixtures("no_fetching", "in_process_requests")
def test_the_api_keeps_to_its_schema(case: Any, seeded: dict[str, Any]) -> None:
    # Valid path parameters name the workspace's own objects, as Schemathesis's
    # `parameters` setting would (their ids exist only once the fixture made them);
    # invalid ones stay as generated, to be refused.
    if case.meta is not None and not case.meta.is_negative_at(ParameterLocation.PATH):
        for name in case.path_parameters:
            if name in seeded:
                case.path_parameters[name] = seeded[name]
    case.call_and_validate(headers={"Authorization": f"Bearer {seeded['key']}"})


def test_every_operation_of_the_schema_is_fuzzed() -> None:
    results = list(schema.get_all_operations())
    labels = {result.ok().label for result in results if isinstance(result, Ok)}

    assert len(labels) == len(results), "every operation of the schema loads"
    assert labels >= {
        "GET /api/v1/jobs",
        "POST /api/v1/jobs",
        "GET /api/v1/jobs/{job_id}",
        "POST /api/v1/jobs/{job_id}/cancel",
        "GET /api/v1/models",
    }


@pytest.mark.usefixtures("no_fetching")
@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://shop.example/mug.jpg", "dns_failed"),
        ("http://93.184.215.14/mug.jpg", "host_not_allowed"),
        ("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/mug.jpg", "host_not_allowed"),
        ("http://localhost/mug.jpg", "host_not_allowed"),
    ],
)
def test_the_fuzzers_fetcher_refuses_every_url_before_the_network_guard(
    url: str, code: str, seeded: dict[str, Any]
) -> None:
    # The autouse network guard would fail the test (as an error inside the app) if the
    # fetcher tried to resolve the name or connect to the address.
    api = Client(HTTP_AUTHORIZATION=f"Bearer {seeded['key']}")

    response = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image_url": url}, content_type="application/json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
