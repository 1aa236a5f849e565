"""No database lock is held across network I/O, and SQLite never answers "database is
locked" to a client.

The main test runs the studio as production does (a threaded web server in its own process
on an SQLite file) while one shop's photo is still downloading, and shows another shop's
requests answered meanwhile. No timing is asserted: the slow photo host only finishes when
the test lets it, after the other shop's answers are in.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Tenant
from tests.conftest import login_client
from tests.support.cluster import Setup
from tests.support.web_server import SlowImageHost, png_bytes, web_server, workspace_with_key

PACKSHOT = "bria-product-packshot"


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def studio() -> Iterator[tuple[Setup, str]]:
    setup = Setup.create(
        None,
        {"FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "FETCH_TIMEOUT": "120", "DEBUG": "0"},
    )
    try:
        with web_server(setup) as base:
            yield setup, base
    finally:
        setup.drop()


@pytest.fixture
def slow_host() -> Iterator[SlowImageHost]:
    host = SlowImageHost()
    try:
        yield host
    finally:
        host.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_another_shop_is_answered_while_a_photo_downloads_under_an_idempotency_key(
    studio: tuple[Setup, str], slow_host: SlowImageHost
):
    setup, base = studio
    shop_a = workspace_with_key(setup, "Shop A")
    shop_b = workspace_with_key(setup, "Shop B")
    key = str(uuid.uuid4())
    answers: dict[str, httpx.Response] = {}

    def shop_a_posts() -> None:
        answers["a"] = httpx.post(
            base + "/api/v1/jobs",
            json={"model": PACKSHOT, "image_url": slow_host.url},
            headers={**_bearer(shop_a), "Idempotency-Key": key},
            timeout=180,
        )

    a = threading.Thread(target=shop_a_posts)
    a.start()
    _wait_for(lambda: slow_host.started == 1, "shop A's photo fetch to start")

    with httpx.Client(base_url=base, headers=_bearer(shop_b), timeout=180) as b:
        listed = b.get("/api/v1/jobs")
        b_done_while_a_runs = a.is_alive()
        # A write too: shop B's own upload, with its own Idempotency-Key.
        created = b.post(
            "/api/v1/jobs",
            data={"model": PACKSHOT},
            files={"image": ("mug.png", png_bytes(), "image/png")},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            burst = list(pool.map(lambda _: b.get("/api/v1/jobs").status_code, range(50)))
        burst_done_while_a_runs = a.is_alive()

    slow_host.release()
    a.join(timeout=180)
    retried = httpx.post(
        base + "/api/v1/jobs",
        json={"model": PACKSHOT, "image_url": slow_host.url},
        headers={**_bearer(shop_a), "Idempotency-Key": key},
        timeout=60,
    )

    assert listed.status_code == 200, listed.text
    assert created.status_code == 201, created.text
    assert b_done_while_a_runs and burst_done_while_a_runs
    assert burst == [200] * 50
    assert answers["a"].status_code == 201, answers["a"].text
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert retried.json()["id"] == answers["a"].json()["id"]
    assert slow_host.started == 1


# -- a lock that still outlasts the busy timeout is a 503, not a 500 ---------------------


def _locked(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError("database is locked")


def test_a_database_still_locked_answers_503_with_retry_after_on_the_api(
    tenant: Tenant, jobs_list_query_fails: Callable[[Exception], None]
):
    from tests.support.api_helpers import key_client

    api = key_client(tenant, raise_request_exception=False)
    jobs_list_query_fails(OperationalError("database is locked"))

    response = api.get("/api/v1/jobs")

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "temporarily_unavailable"


def test_a_database_still_locked_answers_503_on_a_page_too(
    owner: Any, tenant: Tenant, home_page_fails_with: Any
):
    client: Client = login_client(owner)
    client.raise_request_exception = False
    home_page_fails_with(OperationalError("database is locked"))

    response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "1"


def test_any_other_server_error_is_still_a_500(
    tenant: Tenant, jobs_list_query_fails: Callable[[Exception], None]
):
    from tests.support.api_helpers import key_client

    api = key_client(tenant, raise_request_exception=False)
    jobs_list_query_fails(OperationalError("no such column: jobs_job.surprise"))

    assert api.get("/api/v1/jobs").status_code == 500


# -- reads write nothing ------------------------------------------------------------------


def _writes(queries: CaptureQueriesContext) -> list[str]:
    verbs = ("INSERT", "UPDATE", "DELETE", "REPLACE")
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(verbs)]


def test_viewing_a_workspace_page_again_writes_nothing(owner: Any, tenant: Tenant):
    client = login_client(owner)
    page = reverse("dashboard", args=[tenant.slug])
    assert client.get(page).status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert client.get(page).status_code == 200

    assert _writes(queries) == []


def test_an_api_read_with_a_key_used_a_moment_ago_writes_nothing(tenant: Tenant):
    from tests.support.api_helpers import key_client

    api = key_client(tenant)
    assert api.get("/api/v1/jobs").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/jobs").status_code == 200

    assert _writes(queries) == []
