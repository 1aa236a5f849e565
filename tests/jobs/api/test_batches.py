"""Batches over the API (`/api/v1/batches`): all of the jobs or none, their progress, and
`completed_at` set exactly once when the last of them finishes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts.models import CreditEntry, Tenant, User
from jobs import services
from jobs.models import Asset, Batch, Job, JobPrice, JobStatus
from tests.conftest import login_client
from tests.support.api_helpers import assert_problem, key_client

# Every credit below is the test's own: the ledgers start empty. On the local disk and on
# S3 (moto): the photos are stored before the batch's transaction, and removed if refused.
pytestmark = pytest.mark.usefixtures("no_trial_credits", "media_storage")

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def photos(http_server: Any, product_jpeg: bytes) -> dict[str, str]:
    return {
        name: http_server.route(f"/{name}.jpg", product_jpeg, Content_Type="image/jpeg")
        for name in ("red", "blue", "green")
    }


def _post(api: Client, payload: dict[str, Any]) -> Any:
    return api.post("/api/v1/batches", payload, content_type="application/json")


def _stored_files(settings: Any) -> list[str]:
    """Every file of the media storage: the local disk's or the bucket's."""

    def walk(path: str) -> list[str]:
        dirs, files = default_storage.listdir(path)
        found = [f"{path}/{name}".lstrip("/") for name in files]
        return found + [f for d in dirs for f in walk(f"{path}/{d}".lstrip("/"))]

    return walk("")


def _nothing_made(tenant: Tenant, settings: Any) -> None:
    assert not Batch.objects.exists()
    assert not Job.objects.exists()
    assert not Asset.objects.exists()
    assert not CreditEntry.objects.filter(kind="hold").exists()
    assert _stored_files(settings) == []
    tenant.refresh_from_db()
    assert tenant.credit_held == 0


def test_a_batch_makes_one_job_per_item_in_order_each_holding_its_price(
    api: Client, tenant: Tenant, owner: User, photos: dict[str, str], http_server: Any
):
    JobPrice.objects.create(model=SCENE, engine="local", credits=2)
    account_services.credits_grant(tenant=tenant, amount=10, user=None, memo="test")

    response = _post(
        api,
        {
            "model": SCENE,
            "name": "Summer mugs",
            "params": {"prompt": "on a kitchen table", "seed": 7},
            "items": [
                {"image_url": photos["red"]},
                {"image_url": photos["blue"], "params": {"prompt": "on a beach towel"}},
                {"image_url": photos["red"], "params": {"seed": -1}},
            ],
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    batch = Batch.objects.get(pk=body["id"])
    assert (batch.tenant, batch.name, batch.completed_at) == (tenant, "Summer mugs", None)
    jobs = [Job.objects.get(pk=pk) for pk in body["jobs"]]
    assert [job.source_url for job in jobs] == [photos["red"], photos["blue"], photos["red"]]
    assert [job.params["prompt"] for job in jobs] == [
        "on a kitchen table",
        "on a beach towel",
        "on a kitchen table",
    ]
    assert [job.params["seed"] for job in jobs[:2]] == [7, 7]
    assert [job.seed_drawn for job in jobs] == [False, False, True]
    assert {job.batch_id for job in jobs} == {batch.pk}
    assert {(job.status, job.price) for job in jobs} == {(JobStatus.QUEUED, 2)}
    # One fetch and one stored photo per distinct URL.
    assert sorted(http_server.requests) == ["/blue.jpg", "/red.jpg"]
    assert jobs[0].input_asset_id == jobs[2].input_asset_id != jobs[1].input_asset_id
    assert Asset.objects.get(job=jobs[0]).pk == jobs[0].input_asset_id
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (4, 6)
    assert CreditEntry.objects.filter(kind="hold", job__batch=batch).count() == 3
    assert body["progress"] == {
        "total": 3,
        "queued": 3,
        "running": 0,
        "waiting_for_provider": 0,
        "succeeded": 0,
        "failed": 0,
        "canceled": 0,
        "done": 0,
        "percent": 0,
    }
    assert body["urls"]["self"] == f"http://testserver/api/v1/batches/{batch.pk}"
    assert body["urls"]["jobs"] == f"http://testserver/api/v1/jobs?batch={batch.pk}"
    listed = api.get(body["urls"]["jobs"]).json()["results"]
    assert {job["id"] for job in listed} == set(body["jobs"])
    assert {job["batch"] for job in listed} == {str(batch.pk)}


def test_a_batch_runs_and_completes_when_its_last_job_finishes(
    api: Client, tenant: Tenant, photos: dict[str, str], django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(
            api,
            {
                "model": PACKSHOT,
                "items": [{"image_url": photos["red"]}, {"image_url": photos["blue"]}],
            },
        )

    assert response.status_code == 201, response.content
    # The tasks ran inline (tests run django-q2 synchronously), the check after them.
    batch = api.get(response.json()["urls"]["self"]).json()
    assert batch["completed_at"] is not None
    assert batch["progress"]["succeeded"] == 2
    assert (batch["progress"]["done"], batch["progress"]["percent"]) == (2, 100)


def test_the_last_job_canceled_completes_the_batch(
    api: Client, tenant: Tenant, photos: dict[str, str], django_capture_on_commit_callbacks
):
    body = _post(
        api,
        {"model": PACKSHOT, "items": [{"image_url": photos["red"]}, {"image_url": photos["blue"]}]},
    ).json()
    first, second = body["jobs"]
    Job.objects.filter(pk=first).update(status=JobStatus.SUCCEEDED)

    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/jobs/{second}/cancel").status_code == 200

    batch = api.get(body["urls"]["self"]).json()
    assert batch["completed_at"] is not None
    assert (batch["progress"]["succeeded"], batch["progress"]["canceled"]) == (1, 1)


def test_the_last_job_failing_completes_the_batch_and_a_job_left_does_not(
    api: Client, photos: dict[str, str], django_capture_on_commit_callbacks
):
    body = _post(
        api,
        {"model": PACKSHOT, "items": [{"image_url": photos["red"]}, {"image_url": photos["blue"]}]},
    ).json()
    first, second = body["jobs"]
    Job.objects.filter(pk__in=[first, second]).update(status=JobStatus.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        services.job_fail(job_id=first, code="boom", message="It broke.")
    assert Batch.objects.get(pk=body["id"]).completed_at is None

    with django_capture_on_commit_callbacks(execute=True):
        services.job_fail(job_id=second, code="boom", message="It broke.")
    assert Batch.objects.get(pk=body["id"]).completed_at is not None


def test_the_completion_check_completes_a_batch_once(api: Client, photos: dict[str, str]):
    body = _post(api, {"model": PACKSHOT, "items": [{"image_url": photos["red"]}]}).json()

    assert services.batch_complete_check(batch_id=body["id"]) is False  # still queued
    Job.objects.filter(batch_id=body["id"]).update(status=JobStatus.FAILED)
    assert services.batch_complete_check(batch_id=body["id"]) is True
    completed_at = Batch.objects.get(pk=body["id"]).completed_at
    assert services.batch_complete_check(batch_id=body["id"]) is False
    assert Batch.objects.get(pk=body["id"]).completed_at == completed_at


def test_the_sweeper_completes_a_batch_whose_check_was_lost(api: Client, photos: dict[str, str]):
    body = _post(api, {"model": PACKSHOT, "items": [{"image_url": photos["red"]}]}).json()
    # Finished without the check (a process stopped between the commit and the check).
    Job.objects.filter(batch_id=body["id"]).update(status=JobStatus.SUCCEEDED)

    assert services.jobs_sweep()["batches_completed"] == 1
    assert Batch.objects.get(pk=body["id"]).completed_at is not None
    assert services.jobs_sweep()["batches_completed"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": PACKSHOT}, "items"),
        ({"model": PACKSHOT, "items": []}, "items"),
        ({"model": PACKSHOT, "items": "red"}, "items"),
        ({"items": [{"image_url": "RED"}]}, "model"),
        ({"model": "no-such-model", "items": [{"image_url": "RED"}]}, "model"),
        (
            {"model": PACKSHOT, "preset": "no-such-preset", "items": [{"image_url": "RED"}]},
            "preset",
        ),
        ({"model": PACKSHOT, "items": [{"image_url": "RED"}, {}]}, "items.1.image_url"),
        (
            {"model": PACKSHOT, "items": [{"image_url": "RED"}, {"image_url": "nope"}]},
            "items.1.image_url",
        ),
        ({"model": PACKSHOT, "items": [{"image_url": "RED"}, "BLUE"]}, "items.1"),
        (
            {"model": PACKSHOT, "items": [{"image_url": "RED"}, {"image_url": "BLUE", "x": 1}]},
            "items.1.x",
        ),
        (
            {"model": PACKSHOT, "items": [{"image_url": "RED", "params": {"colour": "red"}}]},
            "items.0.params.colour",
        ),
        (
            {
                "model": PACKSHOT,
                "items": [
                    {"image_url": "RED"},
                    {"image_url": "BLUE", "params": {"background_color": "blue-ish"}},
                ],
            },
            "items.1.params.background_color",
        ),
        (
            {"model": PACKSHOT, "params": {"colour": "red"}, "items": [{"image_url": "RED"}]},
            "params.colour",
        ),
        ({"model": PACKSHOT, "params": [1], "items": [{"image_url": "RED"}]}, "params"),
        ({"model": SCENE, "items": [{"image_url": "RED"}]}, "items.0.params.prompt"),
        ({"model": PACKSHOT, "colour": "red", "items": [{"image_url": "RED"}]}, "colour"),
    ],
)
def test_a_bad_batch_is_refused_naming_the_item_and_nothing_is_made(
    api: Client,
    tenant: Tenant,
    photos: dict[str, str],
    http_server: Any,
    settings: Any,
    payload: dict[str, Any],
    field: str,
):
    # RED and BLUE stand for good photos' URLs.
    wanted = {"RED": photos["red"], "BLUE": photos["blue"]}
    for item in payload.get("items", []) if isinstance(payload.get("items"), list) else []:
        if isinstance(item, dict) and item.get("image_url") in wanted:
            item["image_url"] = wanted[item["image_url"]]

    body = assert_problem(_post(api, payload), 400, "validation_error")

    assert field in body["errors"], body
    _nothing_made(tenant, settings)
    assert http_server.requests == []  # refused before any photo was fetched


def test_more_items_than_allowed_are_refused(
    api: Client, tenant: Tenant, photos: dict[str, str], settings: Any
):
    settings.BATCH_MAX_ITEMS = 2

    response = _post(api, {"model": PACKSHOT, "items": [{"image_url": photos["red"]}] * 3})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"items": "send 1 to 2 items, not 3"}
    _nothing_made(tenant, settings)


def test_one_photo_that_cannot_be_fetched_refuses_the_whole_batch_and_keeps_no_file(
    api: Client, tenant: Tenant, photos: dict[str, str], http_server: Any, settings: Any
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=1)
    account_services.credits_grant(tenant=tenant, amount=10, user=None, memo="test")
    http_server.route("/text.jpg", b"not an image", Content_Type="image/jpeg")

    response = _post(
        api,
        {
            "model": PACKSHOT,
            "items": [
                {"image_url": photos["red"]},
                {"image_url": http_server.url("/gone.jpg")},
                {"image_url": photos["blue"]},
                {"image_url": http_server.url("/text.jpg")},
            ],
        },
    )

    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"items.1.image_url", "items.3.image_url"}
    assert "404" in body["errors"]["items.1.image_url"]
    _nothing_made(tenant, settings)
    tenant.refresh_from_db()
    assert tenant.credit_balance == 10


def test_a_batch_the_workspace_cannot_pay_for_in_full_is_refused_before_fetching(
    api: Client, tenant: Tenant, photos: dict[str, str], http_server: Any, settings: Any
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=5, user=None, memo="test")

    response = _post(
        api,
        {"model": PACKSHOT, "items": [{"image_url": photos["red"]}, {"image_url": photos["blue"]}]},
    )

    body = assert_problem(response, 402, "insufficient_credits")
    assert body["detail"] == "This batch of 2 jobs needs 6 credits and the workspace has 5."
    assert body["buy_url"] == f"http://testserver/w/{tenant.slug}/credits/"
    assert http_server.requests == []
    _nothing_made(tenant, settings)
    tenant.refresh_from_db()
    assert tenant.credit_balance == 5


def test_credit_spent_while_the_photos_were_fetched_refuses_the_whole_batch(
    api: Client,
    tenant: Tenant,
    photos: dict[str, str],
    settings: Any,
    batch_fetch_then: Callable[[Callable[[], None]], None],
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=6, user=None, memo="test")

    def another_job_spends() -> None:
        account_services.credits_adjust(
            tenant=tenant, amount=-4, user=User.objects.get(), memo="spent meanwhile"
        )

    batch_fetch_then(another_job_spends)

    response = _post(
        api,
        {"model": PACKSHOT, "items": [{"image_url": photos["red"]}, {"image_url": photos["blue"]}]},
    )

    body = assert_problem(response, 402, "insufficient_credits")
    assert body["detail"] == "This batch of 2 jobs needs 6 credits and the workspace has 2."
    _nothing_made(tenant, settings)
    tenant.refresh_from_db()
    assert tenant.credit_balance == 2


def test_batches_are_listed_newest_first_with_their_progress(
    api: Client, photos: dict[str, str], django_assert_max_num_queries
):
    made = [
        _post(api, {"model": PACKSHOT, "name": f"b{n}", "items": [{"image_url": photos["red"]}]})
        for n in range(3)
    ]
    Job.objects.filter(batch_id=made[0].json()["id"]).update(status=JobStatus.SUCCEEDED)

    with django_assert_max_num_queries(4):  # the key, its tenant, one page of batches
        page = api.get("/api/v1/batches?limit=2").json()

    assert [b["name"] for b in page["results"]] == ["b2", "b1"]
    rest = api.get(page["next"]).json()["results"]
    assert [b["name"] for b in rest] == ["b0"]
    assert rest[0]["progress"]["succeeded"] == 1 and rest[0]["progress"]["percent"] == 100
    assert "jobs" not in rest[0]


def test_a_signed_in_member_submits_a_batch_as_themselves(
    member: User, tenant: Tenant, photos: dict[str, str]
):
    client = login_client(member)
    client.get(f"/w/{tenant.slug}/")

    response = _post(client, {"model": PACKSHOT, "items": [{"image_url": photos["red"]}]})

    assert response.status_code == 201, response.content
    batch = Batch.objects.get(pk=response.json()["id"])
    assert batch.created_by == member
    assert {job.created_by for job in batch.jobs.all()} == {member}


def test_another_workspaces_batch_is_404_and_not_listed(
    api: Client, outsider: User, photos: dict[str, str]
):
    body = _post(api, {"model": PACKSHOT, "items": [{"image_url": photos["red"]}]}).json()
    other = key_client(Tenant.objects.get(memberships__user=outsider))

    assert_problem(other.get(f"/api/v1/batches/{body['id']}"), 404, "not_found")
    assert other.get("/api/v1/batches").json()["results"] == []
    refused = assert_problem(other.get(f"/api/v1/jobs?batch={body['id']}"), 400, "validation_error")
    assert set(refused["errors"]) == {"batch"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_last_jobs_finishing_at_once_complete_the_batch_exactly_once(
    tenant: Tenant,
    photos: dict[str, str],
    no_worker: list[Any],
    batch_check_scheduled_after: Callable[[Callable[[Any], object]], None],
    webhook_events_recorded: list[dict[str, Any]],
):
    batch = services.batch_submit(
        tenant=tenant,
        user=None,
        model=PACKSHOT,
        items=[services.BatchItem(image_url=photos[name]) for name in ("red", "blue", "green")],
    )
    first, *last_two = batch.jobs.order_by("created_at")
    services.job_cancel(job=first)
    assert Batch.objects.get(pk=batch.pk).completed_at is None
    # Each transaction has moved its job and waits until the other has too, before it
    # commits: inside its transaction, each sees the other job unfinished. (Free jobs:
    # no hold to release, so no lock on the workspace's row puts them in a line.)
    both_moved = threading.Barrier(2, timeout=10)
    batch_check_scheduled_after(lambda batch_id: both_moved.wait())

    def announced() -> list[str]:
        events = webhook_events_recorded
        return [e["data"]["id"] for e in events if e["type"] == "batch.completed"]

    results: list[bool] = []
    errors: list[BaseException] = []

    def cancel(job: Job) -> None:
        try:
            results.append(services.job_cancel(job=job))
        except BaseException as e:
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=cancel, args=(job,)) for job in last_two]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert errors == [] and results == [True, True]
    batch.refresh_from_db()
    assert batch.completed_at is not None
    assert announced() == [str(batch.pk)]
    assert services.batch_complete_check(batch_id=batch.pk) is False
    assert announced() == [str(batch.pk)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_completion_checks_racing_complete_the_batch_once(
    tenant: Tenant, photos: dict[str, str], no_worker: list[Any]
):
    batch = services.batch_submit(
        tenant=tenant,
        user=None,
        model=PACKSHOT,
        items=[services.BatchItem(image_url=photos["red"])],
    )
    Job.objects.filter(batch=batch).update(status=JobStatus.SUCCEEDED, completed_at=timezone.now())
    start = threading.Barrier(6, timeout=10)
    results: list[bool] = []

    def check() -> None:
        try:
            start.wait()
            results.append(services.batch_complete_check(batch_id=batch.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(results) == [False] * 5 + [True]


def test_a_completed_batch_sends_batch_completed_with_the_batch_as_the_api_shows_it(
    tenant: Tenant,
    photos: dict[str, str],
    no_worker: list[Any],
    webhook_events_recorded: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
):
    events = webhook_events_recorded
    batch = services.batch_submit(
        tenant=tenant,
        user=None,
        model=PACKSHOT,
        items=[services.BatchItem(image_url=photos[name]) for name in ("red", "blue")],
    )
    first, last = batch.jobs.order_by("created_at")

    with django_capture_on_commit_callbacks(execute=True):
        services.job_cancel(job=first)
    assert [e for e in events if e["type"] == "batch.completed"] == []
    with django_capture_on_commit_callbacks(execute=True):
        services.job_cancel(job=last)

    completed = [e["data"] for e in events if e["type"] == "batch.completed"]
    assert len(completed) == 1
    assert completed[0]["id"] == str(batch.pk)
    assert completed[0]["progress"]["canceled"] == 2
    assert completed[0]["completed_at"] is not None
    assert completed[0]["urls"]["self"].startswith("http")
    assert completed[0]["jobs"] == [str(first.pk), str(last.pk)]
