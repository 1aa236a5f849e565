"""Filtering the jobs list over the API: `?status=`, `?model=`, `?batch=`,
`?created_after=`, `?created_before=`; a bad value is refused naming its parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from accounts.models import Tenant, User
from jobs.models import Batch, Job, JobStatus
from tests.support.api_helpers import key_client

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"
NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def jobs(tenant: Tenant) -> dict[str, Job]:
    batch = Batch.objects.create(tenant=tenant, name="b")
    made = {
        "morning": Job(
            model=PACKSHOT, status=JobStatus.SUCCEEDED, created_at=NOON - timedelta(hours=3)
        ),
        "noon": Job(model=SCENE, status=JobStatus.FAILED, created_at=NOON, batch=batch),
        "evening": Job(model=SCENE, status=JobStatus.QUEUED, created_at=NOON + timedelta(hours=6)),
        "next_day": Job(
            model=PACKSHOT,
            status=JobStatus.QUEUED,
            created_at=NOON + timedelta(days=1),
            batch=batch,
        ),
    }
    for job in made.values():
        job.tenant = tenant
        job.save()
    return made


def _names(api: Client, jobs: dict[str, Job], **query: str) -> set[str]:
    response = api.get("/api/v1/jobs?" + urlencode({**query, "limit": 100}))
    assert response.status_code == 200, response.content
    ids = {job["id"] for job in response.json()["results"]}
    return {name for name, job in jobs.items() if str(job.pk) in ids}


def test_jobs_are_filtered_by_status_model_and_batch(api: Client, jobs: dict[str, Job]):
    batch = jobs["noon"].batch
    assert batch is not None

    assert _names(api, jobs, status="queued") == {"evening", "next_day"}
    assert _names(api, jobs, status="succeeded,failed") == {"morning", "noon"}
    assert _names(api, jobs, model=SCENE) == {"noon", "evening"}
    assert _names(api, jobs, batch=str(batch.pk)) == {"noon", "next_day"}
    assert _names(api, jobs, batch=str(batch.pk), status="queued", model=PACKSHOT) == {"next_day"}


def test_jobs_are_filtered_by_creation_time(api: Client, jobs: dict[str, Job]):
    assert _names(api, jobs, created_after="2025-06-01T12:00:00Z") == {"evening", "next_day"}
    assert _names(api, jobs, created_before="2025-06-01T12:00:00+00:00") == {"morning"}
    assert _names(api, jobs, created_after="2025-06-01T13:00:00+02:00") == {
        "noon",
        "evening",
        "next_day",
    }
    assert _names(api, jobs, created_after="2025-06-02") == {"next_day"}
    assert _names(
        api, jobs, created_after="2025-06-01T10:00:00Z", created_before="2025-06-01T20:00:00Z"
    ) == {"noon", "evening"}
    # An offset's `+` sent unencoded arrives as a space.
    response = api.get("/api/v1/jobs?created_after=2025-06-01T13:00:00+02:00")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_a_filtered_list_keeps_its_filter_on_the_next_page(api: Client, jobs: dict[str, Job]):
    first = api.get("/api/v1/jobs?status=queued&limit=1").json()
    second = api.get(first["next"]).json()

    assert "status=queued" in first["next"]
    ids = {job["id"] for job in first["results"] + second["results"]}
    assert ids == {str(jobs["evening"].pk), str(jobs["next_day"].pk)}
    assert second["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"status": "queued,later"}, "status"),
        ({"status": ","}, "status"),
        ({"model": "no-such-model"}, "model"),
        ({"batch": "not-a-uuid"}, "batch"),
        ({"batch": "3f1c2a9e-5b7d-4c8e-9a10-2b3c4d5e6f70"}, "batch"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2025-13-01"}, "created_before"),
        ({"created_before": "2025-06-01T25:00:00Z"}, "created_before"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_parameter(
    api: Client, jobs: dict[str, Job], query: dict[str, str], field: str
):
    response = api.get("/api/v1/jobs?" + urlencode(query))

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {field}
    assert body["detail"].startswith(f"{field}: ")


def test_every_bad_filter_is_named_at_once(api: Client):
    response = api.get("/api/v1/jobs?status=later&model=nope&created_after=soon")

    assert set(response.json()["errors"]) == {"status", "model", "created_after"}


def test_another_workspaces_batch_is_not_a_filter(
    api: Client, jobs: dict[str, Job], outsider: User
):
    theirs = Batch.objects.create(tenant=Tenant.objects.get(memberships__user=outsider))

    response = api.get(f"/api/v1/jobs?batch={theirs.pk}")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"batch"}
