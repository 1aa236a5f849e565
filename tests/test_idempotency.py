"""`Idempotency-Key` on the API's POSTs, with Stripe's semantics: a retry replays the
first answer, a different request with the same key is refused, one in progress answers
409, and whatever the retries there is one job and one credit hold per key."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts.models import CreditEntry, CreditKind, IdempotencyKey, Tenant, User
from jobs.models import Job, JobPrice
from tests.support.api_helpers import key_client

pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"


@pytest.fixture
def api(no_trial_credits: None, tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def photo_url(http_server: Any, product_jpeg: bytes) -> str:
    return http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")


@pytest.fixture
def priced(no_trial_credits: None, tenant: Tenant, owner: User) -> None:
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=30, user=owner, memo="to spend")


def _post(client: Client, body: Any, key: str | None, path: str = "/api/v1/jobs") -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


def _holds(tenant: Tenant) -> int:
    return CreditEntry.objects.for_tenant(tenant).filter(kind=CreditKind.HOLD).count()


@pytest.mark.usefixtures("priced")
def test_a_retry_with_the_same_key_replays_the_first_answer_and_holds_once(
    api: Client, tenant: Tenant, photo_url: str
):
    body = {"model": PACKSHOT, "image_url": photo_url, "params": {"background_color": "#FFFFFF"}}

    first = _post(api, body, "order-1042-packshot")
    # The same ask with its keys in another order is the same request.
    again = _post(api, dict(reversed(body.items())), "order-1042-packshot")

    assert first.status_code == 201, first.content
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Job.objects.for_tenant(tenant).count() == 1
    assert _holds(tenant) == 1
    tenant.refresh_from_db()
    assert tenant.credit_balance == 27


def test_a_multipart_upload_retried_with_the_same_key_makes_one_job(
    api: Client, tenant: Tenant, product_jpeg: bytes
):
    def send() -> Any:
        photo = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
        return api.post(
            "/api/v1/jobs", {"model": PACKSHOT, "image": photo}, HTTP_IDEMPOTENCY_KEY="upload-1"
        )

    first, again = send(), send()

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert Job.objects.for_tenant(tenant).count() == 1


def test_the_same_key_with_another_body_or_route_answers_422(
    api: Client, tenant: Tenant, photo_url: str
):
    first = _post(api, {"model": PACKSHOT, "image_url": photo_url}, "k-1")
    job_id = first.json()["id"]

    other_body = _post(api, {"model": PACKSHOT, "image_url": photo_url + "?v=2"}, "k-1")
    other_route = _post(api, {}, "k-1", path=f"/api/v1/jobs/{job_id}/cancel")

    for response in (other_body, other_route):
        assert response.status_code == 422
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "idempotency_mismatch"
    assert Job.objects.for_tenant(tenant).count() == 1
    assert Job.objects.get(pk=job_id).status != "canceled"


def test_a_key_still_in_progress_answers_409_and_runs_nothing(
    api: Client, tenant: Tenant, photo_url: str
):
    body = {"model": PACKSHOT, "image_url": photo_url}
    first = _post(api, body, "busy-1")
    IdempotencyKey.objects.filter(key="busy-1").update(
        response_status=None, locked_at=timezone.now()
    )

    response = _post(api, body, "busy-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert str(Job.objects.for_tenant(tenant).get().pk) == first.json()["id"]


def test_a_key_whose_first_request_died_long_ago_runs_again(
    api: Client, tenant: Tenant, photo_url: str, settings: Any
):
    body = {"model": PACKSHOT, "image_url": photo_url}
    first = _post(api, body, "died-1")
    # What a request killed during its photo's fetch leaves: its claim, and nothing else.
    Job.objects.all().delete()
    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS + 1)
    IdempotencyKey.objects.filter(key="died-1").update(response_status=None, locked_at=stale)

    response = _post(api, body, "died-1")

    assert response.status_code == 201, response.content
    assert response.json()["id"] != first.json()["id"]
    assert Job.objects.for_tenant(tenant).count() == 1


def test_a_refused_request_keeps_no_answer_so_the_key_can_be_sent_again(
    api: Client, tenant: Tenant, photo_url: str
):
    refused = _post(api, {"model": PACKSHOT}, "fix-and-retry")
    fixed = _post(api, {"model": PACKSHOT, "image_url": photo_url}, "fix-and-retry")

    assert refused.status_code == 400
    assert fixed.status_code == 201, fixed.content
    assert not fixed.has_header("Idempotent-Replayed")


def test_a_payment_refusal_is_kept_and_replayed_like_stripe_does(
    api: Client, tenant: Tenant, owner: User, photo_url: str
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    body = {"model": PACKSHOT, "image_url": photo_url}
    refused = _post(api, body, "pay-1")
    account_services.credits_grant(tenant=tenant, amount=10, user=owner, memo="bought")

    replayed = _post(api, body, "pay-1")
    new_key = _post(api, body, "pay-2")

    assert (refused.status_code, replayed.status_code) == (402, 402)
    assert replayed["Content-Type"] == "application/problem+json"
    assert replayed["Idempotent-Replayed"] == "true"
    assert new_key.status_code == 201
    assert Job.objects.for_tenant(tenant).count() == 1


def test_keys_are_per_workspace(api: Client, tenant: Tenant, outsider: User, photo_url: str):
    theirs = Tenant.objects.get(memberships__user=outsider)
    body = {"model": PACKSHOT, "image_url": photo_url}

    mine = _post(api, body, "shared-name")
    other = _post(key_client(theirs), body, "shared-name")

    assert (mine.status_code, other.status_code) == (201, 201)
    assert not other.has_header("Idempotent-Replayed")
    assert Job.objects.for_tenant(tenant).count() == 1
    assert Job.objects.for_tenant(theirs).count() == 1


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_empty_or_too_long_key_is_refused_naming_the_header(
    api: Client, tenant: Tenant, photo_url: str, key: str
):
    response = _post(api, {"model": PACKSHOT, "image_url": photo_url}, key)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["errors"]) == {"Idempotency-Key"}
    assert not Job.objects.exists()


def test_a_key_is_forgotten_after_a_day(api: Client, tenant: Tenant, photo_url: str, settings: Any):
    body = {"model": PACKSHOT, "image_url": photo_url}
    _post(api, body, "daily")
    a_day_ago = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS, seconds=1)
    IdempotencyKey.objects.update(created_at=a_day_ago)

    again = _post(api, body, "daily")

    assert again.status_code == 201 and not again.has_header("Idempotent-Replayed")
    assert Job.objects.for_tenant(tenant).count() == 2


def test_the_hourly_sweep_deletes_keys_older_than_a_day(api: Client, photo_url: str, settings: Any):
    _post(api, {"model": PACKSHOT, "image_url": photo_url}, "old")
    _post(api, {"model": PACKSHOT, "image_url": photo_url}, "new")
    a_day_ago = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS, seconds=1)
    IdempotencyKey.objects.filter(key="old").update(created_at=a_day_ago)

    assert account_services.idempotency_keys_expire() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_a_server_error_rolls_back_its_work_and_frees_the_key(
    tenant: Tenant, photo_url: str, job_submit_broken_inside: Callable[[], Any]
):
    api = key_client(tenant, raise_request_exception=False)
    body = {"model": PACKSHOT, "image_url": photo_url}

    with job_submit_broken_inside():
        crashed = _post(api, body, "crash-1")
    retried = _post(api, body, "crash-1")

    assert crashed.status_code == 500
    assert retried.status_code == 201, retried.content
    assert Job.objects.for_tenant(tenant).count() == 1


def test_without_a_key_each_post_is_its_own_request(api: Client, tenant: Tenant, photo_url: str):
    body = {"model": PACKSHOT, "image_url": photo_url}

    _post(api, body, None)
    _post(api, body, None)

    assert Job.objects.for_tenant(tenant).count() == 2
    assert not IdempotencyKey.objects.exists()


def test_a_cancel_retried_with_its_key_replays_the_first_answer(
    api: Client, tenant: Tenant, photo_url: str
):
    job_id = _post(api, {"model": PACKSHOT, "image_url": photo_url}, None).json()["id"]
    Job.objects.filter(pk=job_id).update(status="queued")

    first = _post(api, {}, "cancel-1", path=f"/api/v1/jobs/{job_id}/cancel")
    again = _post(api, {}, "cancel-1", path=f"/api/v1/jobs/{job_id}/cancel")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["status"] == "canceled"


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_retries_of_one_key_make_one_job_and_one_hold(
    tenant: Tenant, owner: User, photo_url: str
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are a PostgreSQL matter; SQLite serialises them")
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=30, user=owner, memo="to spend")
    secret = account_services.api_key_create(tenant=tenant, name="race").secret
    body = {"model": PACKSHOT, "image_url": photo_url}
    answers: list[tuple[int, str]] = []
    start = threading.Barrier(20)

    def retry() -> None:
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        start.wait()
        try:
            response = _post(client, body, "race-1")
            answers.append((response.status_code, response.json().get("id", "")))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 20, answers
    assert {status for status, _ in answers} <= {201, 409}
    made = {job_id for status, job_id in answers if status == 201}
    assert len(made) == 1
    assert Job.objects.for_tenant(tenant).count() == 1
    assert _holds(tenant) == 1
    tenant.refresh_from_db()
    assert tenant.credit_balance == 27
    final = _post(Client(HTTP_AUTHORIZATION=f"Bearer {secret}"), body, "race-1")
    assert final.status_code == 201 and final.json()["id"] in made
