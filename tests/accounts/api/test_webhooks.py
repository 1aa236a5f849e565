"""The webhooks over the API (`/api/v1/webhooks`): endpoints, test events, deliveries,
the workspace's secret for jobs' own `webhook_url`, and tenancy."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from standardwebhooks import Webhook

from accounts import services
from accounts.models import DeliveryStatus, Tenant, User, WebhookDelivery, WebhookEndpoint
from jobs.models import Job
from tests.conftest import login_client
from tests.support.api_helpers import assert_problem, key_client

pytestmark = pytest.mark.usefixtures("no_trial_credits")


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def other_tenant(outsider: User) -> Tenant:
    return Tenant.objects.get(memberships__user=outsider)


def _create(client: Client, **body: Any) -> Any:
    return client.post("/api/v1/webhooks", body, content_type="application/json")


def test_an_endpoint_is_created_with_its_secret_shown_once(api: Client, http_server: Any):
    url = http_server.url("/hooks")

    response = _create(
        api, url=url, event_types=["job.succeeded", "job.failed"], description="Orders"
    )

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["url"] == url
    assert created["event_types"] == ["job.succeeded", "job.failed"]
    assert created["description"] == "Orders"
    assert created["enabled"] is True
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 32
    shown = api.get(f"/api/v1/webhooks/{created['id']}").json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    listed = api.get("/api/v1/webhooks").json()
    assert [e["id"] for e in listed["results"]] == [created["id"]]
    assert "secret" not in listed["results"][0]
    assert listed["next"] is None


def test_no_event_types_means_all_of_them(api: Client, http_server: Any):
    response = _create(api, url=http_server.url("/hooks"))

    assert response.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == []
    assert all(endpoint.subscribes_to(t) for t in ("job.succeeded", "credits.low"))


@pytest.mark.parametrize(
    "url",
    ["http://192.168.0.10/hooks", "http://127.0.0.1:9/hooks", "ftp://example.com/x", "nope", ""],
)
def test_a_bad_or_private_url_is_a_400_naming_url(api: Client, url: str):
    body = assert_problem(_create(api, url=url), 400, "validation_error")

    assert set(body["errors"]) == {"url"}
    assert body["detail"].startswith("url: ")
    assert not WebhookEndpoint.objects.exists()


def test_a_missing_url_is_a_400_naming_url(api: Client):
    body = assert_problem(_create(api, event_types=["job.failed"]), 400, "validation_error")

    assert set(body["errors"]) == {"url"}


def test_an_unknown_event_type_is_a_400_naming_event_types(api: Client, http_server: Any):
    response = _create(api, url=http_server.url("/hooks"), event_types=["job.failed", "job.won"])

    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"event_types"}
    assert "job.won" in body["errors"]["event_types"]
    assert not WebhookEndpoint.objects.exists()


def test_the_test_event_cannot_be_subscribed_to(api: Client, http_server: Any):
    response = _create(api, url=http_server.url("/hooks"), event_types=["webhook.test"])

    assert set(assert_problem(response, 400, "validation_error")["errors"]) == {"event_types"}


def test_an_unknown_field_is_refused(api: Client, http_server: Any):
    body = assert_problem(
        _create(api, url=http_server.url("/h"), secret="mine"), 400, "validation_error"
    )

    assert body["errors"] == {"secret": "unknown field"}


def test_a_test_event_is_sent_now_and_its_delivery_returned(api: Client, http_server: Any):
    http_server.route("/hooks", b"got it")
    created = _create(api, url=http_server.url("/hooks"), event_types=["job.failed"]).json()

    response = api.post(f"/api/v1/webhooks/{created['id']}/test")

    assert response.status_code == 201, response.content
    delivery = response.json()
    assert delivery["event_type"] == "webhook.test"
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200
    assert delivery["response_excerpt"] == "got it"
    assert delivery["endpoint_id"] == created["id"]
    [got] = http_server.received
    payload = Webhook(created["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == created["id"]
    assert delivery["payload"] == payload
    assert delivery["message_id"] == got.headers["webhook-id"]


def test_a_failed_test_event_says_why_and_stays_pending_for_a_retry(api: Client, http_server: Any):
    http_server.route("/hooks", b"no", status=500)
    created = _create(api, url=http_server.url("/hooks")).json()

    delivery = api.post(f"/api/v1/webhooks/{created['id']}/test").json()

    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] == 500
    assert delivery["last_error"] == "The receiver answered 500 Internal Server Error."
    assert delivery["next_attempt_at"] is not None


def test_a_disabled_endpoint_answers_409_to_a_test(api: Client, http_server: Any):
    created = _create(api, url=http_server.url("/hooks")).json()
    WebhookEndpoint.objects.filter(pk=created["id"]).update(
        enabled=False, disabled_reason="the receiver answered 410 Gone"
    )

    body = assert_problem(
        api.post(f"/api/v1/webhooks/{created['id']}/test"), 409, "endpoint_disabled"
    )

    assert "410" in body["detail"]
    assert http_server.received == []


def test_deliveries_are_listed_newest_first_and_paginated(api: Client, http_server: Any):
    http_server.route("/hooks")
    created = _create(api, url=http_server.url("/hooks")).json()
    for _ in range(3):
        api.post(f"/api/v1/webhooks/{created['id']}/test")

    page = api.get(f"/api/v1/webhooks/{created['id']}/deliveries", {"limit": 2}).json()

    assert len(page["results"]) == 2
    assert page["next"] is not None
    rest = api.get(page["next"]).json()
    ids = [d["id"] for d in page["results"] + rest["results"]]
    newest_first = WebhookDelivery.objects.order_by("-created_at").values_list("pk", flat=True)
    assert ids == [str(pk) for pk in newest_first]


def test_deleting_an_endpoint_removes_it_and_its_pending_deliveries(
    api: Client, tenant: Tenant, http_server: Any, django_capture_on_commit_callbacks: Any
):
    http_server.route("/hooks")
    created = _create(api, url=http_server.url("/hooks")).json()
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={})

    assert api.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204

    assert api.get(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert not WebhookDelivery.objects.exists()
    assert services.webhook_delivery_send(delivery_id=delivery.pk) is False
    assert http_server.received == []


def test_the_workspace_secret_is_readable_and_stable(api: Client, tenant: Tenant, outsider: User):
    first = api.get("/api/v1/webhooks/secret")

    assert first.status_code == 200
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    assert api.get("/api/v1/webhooks/secret").json()["secret"] == secret
    other = Tenant.objects.get(memberships__user=outsider)
    assert key_client(other).get("/api/v1/webhooks/secret").json()["secret"] != secret


def test_a_job_created_with_a_webhook_url_sends_its_result_there(
    api: Client, http_server: Any, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
):
    http_server.route("/job-hook")
    secret = api.get("/api/v1/webhooks/secret").json()["secret"]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/jobs",
            {
                "model": "bria-product-packshot",
                "image": SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
                "webhook_url": http_server.url("/job-hook"),
            },
        )

    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert job.webhook_url == http_server.url("/job-hook")
    [got] = http_server.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["id"] == response.json()["id"]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


@pytest.mark.parametrize("webhook_url", ["http://10.0.0.1/hook", "gopher://example.com/"])
def test_a_job_with_a_bad_webhook_url_is_refused_and_costs_nothing(
    api: Client, tenant: Tenant, product_jpeg: bytes, webhook_url: str
):
    services.credits_grant(tenant=tenant, amount=5, user=None, memo="t")

    response = api.post(
        "/api/v1/jobs",
        {
            "model": "bria-product-packshot",
            "image": SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
            "webhook_url": webhook_url,
        },
    )

    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"webhook_url"}
    assert not Job.objects.exists()
    assert Tenant.objects.get(pk=tenant.pk).credit_balance == 5


# --- tenancy ------------------------------------------------------------------------------


@pytest.fixture
def endpoint(tenant: Tenant, http_server: Any) -> WebhookEndpoint:
    http_server.route("/hooks")
    return services.webhook_endpoint_create(tenant=tenant, url=http_server.url("/hooks")).endpoint


def _routes(endpoint: WebhookEndpoint) -> list[tuple[str, str]]:
    base = f"/api/v1/webhooks/{endpoint.pk}"
    return [
        ("get", base),
        ("post", f"{base}/test"),
        ("get", f"{base}/deliveries"),
        ("delete", base),  # last: it removes the endpoint
    ]


def test_the_workspaces_owner_reaches_its_endpoints_through_the_session(
    tenant: Tenant, endpoint: WebhookEndpoint, owner: User
):
    client = login_client(owner)
    client.get(f"/w/{tenant.slug}/")  # the workspace the session uses

    listed = client.get("/api/v1/webhooks").json()["results"]
    assert [e["id"] for e in listed] == [str(endpoint.pk)]
    for method, url in _routes(endpoint):
        assert getattr(client, method)(url).status_code in (200, 201, 204), (method, url)


def test_a_member_who_is_not_an_owner_or_admin_may_not_manage_webhooks(
    tenant: Tenant, endpoint: WebhookEndpoint, member: User, http_server: Any
):
    client = login_client(member)
    client.get(f"/w/{tenant.slug}/")

    routes = [("get", "/api/v1/webhooks"), ("get", "/api/v1/webhooks/secret"), *_routes(endpoint)]
    for method, url in routes:
        body = assert_problem(getattr(client, method)(url), 403, "forbidden")
        assert "owners and admins" in body["detail"]
    created = client.post(
        "/api/v1/webhooks", {"url": http_server.url("/x")}, content_type="application/json"
    )
    assert_problem(created, 403, "forbidden")
    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 1
    assert http_server.received == []


def test_another_workspaces_key_gets_a_404_on_every_endpoint_route(
    endpoint: WebhookEndpoint, other_tenant: Tenant, http_server: Any
):
    other = key_client(other_tenant)

    assert other.get("/api/v1/webhooks").json()["results"] == []
    for method, url in _routes(endpoint):
        assert_problem(getattr(other, method)(url), 404, "not_found")
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert http_server.received == []


def test_an_outsider_in_their_own_workspace_gets_a_404(
    endpoint: WebhookEndpoint, outsider: User, other_tenant: Tenant
):
    client = login_client(outsider)
    client.get(f"/w/{other_tenant.slug}/")

    for method, url in _routes(endpoint):
        assert getattr(client, method)(url).status_code == 404, (method, url)
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_without_a_key_or_session_the_webhooks_api_is_refused(endpoint: WebhookEndpoint):
    for url in ("/api/v1/webhooks", "/api/v1/webhooks/secret"):
        assert_problem(Client().get(url), 401, "not_authenticated")
    assert_problem(
        Client().post("/api/v1/webhooks", {}, content_type="application/json"),
        401,
        "not_authenticated",
    )
