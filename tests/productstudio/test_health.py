"""/healthz and /readyz: what a load balancer probes. Ready is 200, unready 503 naming the
failing check; a stale dispatcher and open Segmind pauses only warn; no login, no tenant
data, an answer within the checks' timeout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from accounts.models import Lease, Tenant
from jobs.models import DISPATCHER_LEASE, Job, JobStatus, ProviderPause
from productstudio import health


@pytest.fixture(autouse=True)
def _fresh_checks() -> Iterator[None]:
    # A result cached by the test before (a second) must not answer this one's probes.
    health.forget_results()
    yield
    health.forget_results()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _segmind_job(tenant: Tenant, *, touched_ago: float) -> Job:
    job = Job.objects.create(
        tenant=tenant, model="bria-product-packshot", engine="segmind", status=JobStatus.QUEUED
    )
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=touched_ago))
    return job


def test_healthz_says_alive_without_a_database_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert response["Cache-Control"] == "no-store"


def test_readyz_is_ready_when_the_database_the_broker_and_the_storage_answer(client, db):
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["failing"] == body["warnings"] == []
    assert set(body["checks"]) == {
        "database",
        "broker",
        "storage",
        "dispatcher",
        "segmind_pauses",
    }
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_503_naming_the_database_when_it_cannot_be_reached(client, db):
    def unreachable(*args: Any) -> None:
        raise OperationalError("connection to server at 10.9.9.9 failed: timeout")

    original = connection.ensure_connection
    connection.ensure_connection = unreachable  # type: ignore[method-assign]
    try:
        response = client.get("/readyz")
    finally:
        connection.ensure_connection = original  # type: ignore[method-assign]

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unready"
    assert "database" in body["failing"]
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "OperationalError",
        "ms": body["checks"]["database"]["ms"],
    }
    # The error's message (a host name) is logged, not shown to whoever probes.
    assert "10.9.9.9" not in response.content.decode()


def test_readyz_is_503_naming_the_broker_when_redis_does_not_answer(client, db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["storage"]["ok"] is True


def test_readyz_pings_a_real_redis_broker(client, db, settings):
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs with TEST_REDIS_URL (.ci/run starts redis-server)")
        pytest.skip("no TEST_REDIS_URL: no Redis server to ping")
    settings.REDIS_URL = url

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"]["detail"] == "redis answers"


def test_readyz_is_503_naming_the_storage_when_it_raises(client, db, monkeypatch):
    def broken(storage: Any, name: str) -> bool:
        raise PermissionError("Access Denied for bucket media-prod")

    monkeypatch.setattr(type(storages["default"]), "exists", broken)

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["storage"]
    assert body["checks"]["storage"]["detail"] == "PermissionError"
    assert "media-prod" not in response.content.decode()


def test_a_failing_storage_shared_by_several_probes_is_logged_once_with_its_message(
    client, db, monkeypatch, caplog
):
    def broken(storage: Any, name: str) -> bool:
        raise PermissionError("Access Denied for bucket media-prod")

    monkeypatch.setattr(type(storages["default"]), "exists", broken)
    # However slow the machine, the three probes fall within one result's life.
    monkeypatch.setattr(health, "READYZ_CACHE_SECONDS", 60.0)

    with caplog.at_level("WARNING", logger="productstudio.health"):
        statuses = [client.get("/readyz").status_code for _ in range(3)]

    assert statuses == [503, 503, 503]
    logged = [r.getMessage() for r in caplog.records if r.name == "productstudio.health"]
    assert len(logged) == 1
    assert "media-prod" in logged[0]


def test_readyz_gives_up_on_a_storage_that_hangs_within_its_timeout(
    client, db, settings, monkeypatch
):
    settings.READYZ_TIMEOUT_SECONDS = 0.5
    released = threading.Event()

    def hanging(storage: Any, name: str) -> bool:
        released.wait(30)
        return False

    monkeypatch.setattr(type(storages["default"]), "exists", hanging)
    storage = health._flight("storage")
    started_before = storage.started
    began = time.monotonic()
    try:
        response = client.get("/readyz")
        took = time.monotonic() - began
        # The next probe waits for the same hung check instead of starting a second one.
        again = client.get("/readyz")
        started = storage.started - started_before
    finally:
        released.set()

    assert took < 10
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["storage"]
    assert body["checks"]["storage"]["detail"] == "no answer within 0.5 s"
    assert again.status_code == 503
    assert again.json()["checks"]["storage"]["detail"] == "no answer within 0.5 s"
    assert started == 1


def _only_the_storage_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """/readyz with the storage check alone: the probes below run in threads of their own,
    which the test database's connections are not for."""
    monkeypatch.setattr(health, "CHECKS", [("storage", health.check_storage, True, False)])


def test_two_overlapping_probes_of_a_slow_storage_share_one_check_and_both_are_ready(
    settings, monkeypatch
):
    settings.READYZ_TIMEOUT_SECONDS = 10
    _only_the_storage_check(monkeypatch)
    entered, released = threading.Event(), threading.Event()

    def slow(storage: Any, name: str) -> bool:
        entered.set()
        released.wait(30)
        return False

    monkeypatch.setattr(type(storages["default"]), "exists", slow)
    joined = threading.Semaphore(0)
    real_result = health._Flight.result

    def counted(self: health._Flight, check: Any) -> Any:
        future = real_result(self, check)
        joined.release()
        return future

    monkeypatch.setattr(health._Flight, "result", counted)
    storage = health._flight("storage")
    started_before = storage.started
    responses: list[Any] = []

    def probe() -> None:
        responses.append(Client().get("/readyz"))

    first = threading.Thread(target=probe)
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=probe)
    second.start()
    # Both probes hold the running check before it answers.
    assert joined.acquire(timeout=10) and joined.acquire(timeout=10)
    released.set()
    first.join(20)
    second.join(20)

    assert [r.status_code for r in responses] == [200, 200], [r.json() for r in responses]
    assert all(r.json()["checks"]["storage"]["ok"] for r in responses)
    assert storage.started - started_before == 1


def test_a_burst_of_fifty_probes_never_runs_two_storage_checks_at_once(settings, monkeypatch):
    settings.READYZ_TIMEOUT_SECONDS = 10
    _only_the_storage_check(monkeypatch)
    lock = threading.Lock()
    running = [0]
    most = [0]

    def slowish(storage: Any, name: str) -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.02)  # a storage's round trip, so the probes overlap
        finally:
            with lock:
                running[0] -= 1
        return False

    monkeypatch.setattr(type(storages["default"]), "exists", slowish)
    storage = health._flight("storage")
    started_before = storage.started
    go = threading.Event()
    statuses: list[int] = []

    def probe() -> None:
        go.wait(10)
        statuses.append(Client().get("/readyz").status_code)

    threads = [threading.Thread(target=probe) for _ in range(50)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(30)

    assert statuses == [200] * 50
    assert most[0] == 1
    # One run answers every probe of the burst while its result is fresh.
    assert 1 <= storage.started - started_before <= 50


def test_a_fresh_result_is_reused_and_an_old_one_is_not(settings, monkeypatch):
    _only_the_storage_check(monkeypatch)
    calls = [0]

    def counted(storage: Any, name: str) -> bool:
        calls[0] += 1
        return False

    monkeypatch.setattr(type(storages["default"]), "exists", counted)
    client = Client()
    monkeypatch.setattr(health, "READYZ_CACHE_SECONDS", 60.0)  # fresh, however slow the machine

    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert calls[0] == 1
    monkeypatch.setattr(health, "READYZ_CACHE_SECONDS", 0.0)
    assert client.get("/readyz").status_code == 200
    assert calls[0] == 2


def test_a_stale_dispatcher_lease_while_segmind_work_waits_is_a_warning_not_unready(
    client, tenant, settings
):
    settings.SEGMIND_API_KEY = "platform-key"
    settings.DISPATCHER_STALE_SECONDS = 60
    _segmind_job(tenant, touched_ago=600)
    Lease.objects.create(
        name=DISPATCHER_LEASE,
        holder="worker-that-died",
        leased_until=timezone.now() - timedelta(seconds=500),
    )

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["warnings"] == ["dispatcher"]
    assert body["checks"]["dispatcher"]["warning"] is True
    assert "qcluster" in body["checks"]["dispatcher"]["detail"]


def test_a_held_dispatcher_lease_is_fresh_however_old_the_work(client, tenant, settings):
    settings.SEGMIND_API_KEY = "platform-key"
    _segmind_job(tenant, touched_ago=600)
    Lease.objects.create(
        name=DISPATCHER_LEASE,
        holder="live-worker",
        leased_until=timezone.now() + timedelta(seconds=10),
    )

    body = client.get("/readyz").json()

    assert body["status"] == "ready"
    assert body["checks"]["dispatcher"]["detail"] == "lease held"


def test_an_open_segmind_pause_is_a_warning_that_names_no_workspace(client, tenant):
    ProviderPause.objects.create(
        key_id="platform", tenant=None, paused_until=timezone.now() + timedelta(minutes=5)
    )
    ProviderPause.objects.create(
        key_id="own", tenant=tenant, paused_until=timezone.now() + timedelta(minutes=5)
    )

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["warnings"] == ["segmind_pauses"]
    detail = body["checks"]["segmind_pauses"]["detail"]
    assert "the platform's key" in detail and "1 workspace key" in detail
    text = response.content.decode()
    assert tenant.name not in text and tenant.slug not in text


def test_probes_skip_the_https_redirect_and_the_host_check(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["studio.example.com"]
    # A load balancer probes each machine over plain HTTP at its own address.
    probe = Client(HTTP_HOST="10.0.3.17:8000")

    assert probe.get("/healthz").status_code == 200
    assert probe.get("/readyz").status_code == 200
    assert probe.get("/login/").status_code == 400  # everything else keeps both


def test_probes_answer_only_get_and_head(client, db):
    assert client.head("/healthz").status_code == 200
    response = client.post("/readyz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_every_answer_echoes_a_sane_request_id_or_makes_one(client, db):
    given = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c-0001")
    hostile = client.get("/healthz", HTTP_X_REQUEST_ID="x\r\nSet-Cookie: a=b" + "y" * 300)
    page = client.get("/login/")

    assert given["X-Request-ID"] == "lb-7f3a9c-0001"
    assert len(hostile["X-Request-ID"]) == 32 and "Set-Cookie" not in hostile["X-Request-ID"]
    assert len(page["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("2s", "READYZ_TIMEOUT_SECONDS must be a number, not '2s'."),
        ("0", "READYZ_TIMEOUT_SECONDS must be more than 0, not '0'."),
        ("-1", "READYZ_TIMEOUT_SECONDS must be more than 0, not '-1'."),
        ("nan", "READYZ_TIMEOUT_SECONDS must be more than 0, not 'nan'."),
    ],
)
def test_a_readyz_timeout_that_is_not_a_positive_number_stops_start_up_naming_it(value, error):
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "DATABASE_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env={
            **clean,
            "ENV_FILE": "",
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "productstudio.settings",
            "READYZ_TIMEOUT_SECONDS": value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {error}" in result.stderr


def test_a_readyz_timeout_in_fractions_of_a_second_is_taken(monkeypatch):
    from productstudio.settings import env_positive_float

    monkeypatch.setenv("READYZ_TIMEOUT_SECONDS", " 0.5 ")
    assert env_positive_float("READYZ_TIMEOUT_SECONDS", 2.0) == 0.5
    monkeypatch.setenv("READYZ_TIMEOUT_SECONDS", "")
    assert env_positive_float("READYZ_TIMEOUT_SECONDS", 2.0) == 2.0
