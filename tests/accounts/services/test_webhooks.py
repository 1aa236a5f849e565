"""Webhooks: Standard Webhooks signatures (the spec's test vector), delivery to a real
server on 127.0.0.1, retries with backoff and jitter, 410, redirects, private
addresses, running a delivery twice, and the events jobs and credits emit."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from accounts import services, tasks
from accounts.models import (
    DeliveryStatus,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from jobs import services as job_services
from jobs.models import Job, JobStatus

# The Standard Webhooks test vector, published with the spec's libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# The libraries' own "invalid signature" case: the vector with its last byte changed.
VECTOR_WRONG_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="

PACKSHOT = "bria-product-packshot"


def _vector_headers(signature: str = VECTOR_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": signature,
    }


# --- signatures ---------------------------------------------------------------------------


def test_it_signs_the_standard_webhooks_test_vector():
    signature = services.webhook_sign(
        secret=VECTOR_SECRET, message_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY
    )

    assert signature == VECTOR_SIGNATURE


def test_the_vector_is_the_hmac_of_id_timestamp_and_body_keyed_with_the_decoded_secret():
    import hashlib
    import hmac

    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    signed = f"{VECTOR_ID}.{VECTOR_TIMESTAMP}.{VECTOR_BODY}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()

    assert "v1," + base64.b64encode(digest).decode() == VECTOR_SIGNATURE


def test_a_secret_without_its_prefix_signs_the_same():
    bare = VECTOR_SECRET.removeprefix("whsec_")

    signature = services.webhook_sign(
        secret=bare, message_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY
    )

    assert signature == VECTOR_SIGNATURE


def test_the_verifier_accepts_the_vector_at_its_own_time():
    payload = services.webhook_verify(
        secret=VECTOR_SECRET, body=VECTOR_BODY, headers=_vector_headers(), now=VECTOR_TIMESTAMP
    )

    assert payload == {"test": 2432232314}


def test_the_verifier_rejects_a_wrong_signature():
    with pytest.raises(services.WebhookError) as caught:
        services.webhook_verify(
            secret=VECTOR_SECRET,
            body=VECTOR_BODY,
            headers=_vector_headers(VECTOR_WRONG_SIGNATURE),
            now=VECTOR_TIMESTAMP,
        )

    assert caught.value.code == "invalid_signature"


def test_the_verifier_rejects_a_changed_body():
    with pytest.raises(services.WebhookError) as caught:
        services.webhook_verify(
            secret=VECTOR_SECRET,
            body='{"test": 2432232315}',
            headers=_vector_headers(),
            now=VECTOR_TIMESTAMP,
        )

    assert caught.value.code == "invalid_signature"


@pytest.mark.parametrize("offset", [-301, 301], ids=["too_old", "too_new"])
def test_the_verifier_rejects_a_timestamp_outside_the_tolerance(offset):
    with pytest.raises(services.WebhookError) as caught:
        services.webhook_verify(
            secret=VECTOR_SECRET,
            body=VECTOR_BODY,
            headers=_vector_headers(),
            now=VECTOR_TIMESTAMP - offset,
        )

    assert caught.value.code == "invalid_timestamp"


def test_the_verifier_accepts_a_list_with_one_matching_signature():
    # Rotating secrets: several signatures, space-separated, other versions skipped.
    listed = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            VECTOR_SIGNATURE,
        ]
    )

    payload = services.webhook_verify(
        secret=VECTOR_SECRET,
        body=VECTOR_BODY,
        headers=_vector_headers(listed),
        now=VECTOR_TIMESTAMP,
    )

    assert payload == {"test": 2432232314}


def test_the_spec_library_verifies_what_we_sign_and_refuses_another_secret():
    now = int(time.time())
    headers = services.webhook_headers(
        secret=VECTOR_SECRET, message_id="msg_x", timestamp=now, body=VECTOR_BODY
    )

    assert Webhook(VECTOR_SECRET).verify(VECTOR_BODY, headers) == {"test": 2432232314}
    with pytest.raises(WebhookVerificationError):
        Webhook(services.webhook_secret_new()).verify(VECTOR_BODY, headers)


def test_a_new_secret_is_whsec_and_32_random_bytes():
    first, second = services.webhook_secret_new(), services.webhook_secret_new()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


# --- creating endpoints ----------------------------------------------------------------------


def _endpoint(tenant: Tenant, url: str, *types: str) -> tuple[WebhookEndpoint, str]:
    created = services.webhook_endpoint_create(tenant=tenant, url=url, event_types=types)
    return created.endpoint, created.secret


def test_an_endpoints_secret_is_stored_encrypted(tenant, http_server):
    endpoint, secret = _endpoint(tenant, http_server.url("/hooks"))

    endpoint.refresh_from_db()
    assert secret not in endpoint.secret_encrypted
    assert services.webhook_endpoint_secret(endpoint=endpoint) == secret


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.7/hooks",
        "http://192.168.1.20/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://localhost/hooks",
        "http://0x7f.1/hooks",
    ],
)
def test_a_private_address_is_refused_at_creation_before_any_connection(tenant, url, monkeypatch):
    def no_connection(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("nothing may be sent when the URL is refused")

    monkeypatch.setattr("productstudio.lib.fetcher._exchange", no_connection)

    with pytest.raises(services.WebhookError) as caught:
        services.webhook_endpoint_create(tenant=tenant, url=url)

    assert caught.value.code == "validation_error"
    assert set(caught.value.errors) == {"url"}
    assert "private network" in caught.value.message
    assert not WebhookEndpoint.objects.exists()


def test_loopback_is_refused_unless_the_settings_allow_it(tenant, http_server, settings):
    settings.FETCH_ALLOW_PRIVATE_HOSTS = []

    with pytest.raises(services.WebhookError):
        services.webhook_endpoint_create(tenant=tenant, url=http_server.url("/hooks"))

    assert http_server.received == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/hooks", "must start with http:// or https://"),
        ("http:///hooks", "doesn't look like a web address"),
        ("https://user:pw@example.com/hooks", "user name or password"),
        ("", "give the URL"),
    ],
)
def test_a_url_that_is_not_http_is_refused_naming_url(tenant, url, says):
    with pytest.raises(services.WebhookError) as caught:
        services.webhook_endpoint_create(tenant=tenant, url=url)

    assert caught.value.message.startswith("url: ")
    assert says in caught.value.message


def test_an_unknown_event_type_is_refused_naming_event_types(tenant, http_server):
    with pytest.raises(services.WebhookError) as caught:
        services.webhook_endpoint_create(
            tenant=tenant, url=http_server.url("/hooks"), event_types=["job.done"]
        )

    assert set(caught.value.errors) == {"event_types"}
    assert "job.done" in caught.value.message
    assert not WebhookEndpoint.objects.exists()


# --- delivery ---------------------------------------------------------------------------------


def _emit(tenant: Tenant, captured: Any, type: str = "credits.low", **data: Any) -> list:
    with captured(execute=True):
        return services.webhook_event_emit(tenant=tenant, type=type, data=data or {"n": 1})


def test_a_delivery_reaches_a_real_server_signed_as_the_spec_says(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/hooks", b"thanks")
    endpoint, secret = _endpoint(tenant, http_server.url("/hooks"))
    before = int(time.time())

    [delivery] = _emit(tenant, django_capture_on_commit_callbacks, balance=3)

    [got] = http_server.received
    assert got.path == "/hooks"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == delivery.message_id
    assert got.headers["webhook-id"].startswith("msg_")
    assert before <= int(got.headers["webhook-timestamp"]) <= int(time.time())
    # What a receiver does with the spec's own library, and with ours.
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload == services.webhook_verify(secret=secret, body=got.body, headers=got.headers)
    assert payload["type"] == "credits.low"
    assert payload["data"] == {"balance": 3}
    assert payload["timestamp"].endswith("Z")
    assert got.body.decode() == delivery.body
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 200
    assert delivery.response_excerpt == "thanks"
    assert delivery.completed_at is not None and delivery.next_attempt_at is None
    assert delivery.endpoint == endpoint


def test_every_endpoint_gets_the_same_message_id_and_only_what_it_subscribes_to(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/a")
    http_server.route("/b")
    http_server.route("/c")
    _endpoint(tenant, http_server.url("/a"))
    _endpoint(tenant, http_server.url("/b"), "credits.low", "job.failed")
    _endpoint(tenant, http_server.url("/c"), "job.succeeded")

    _emit(tenant, django_capture_on_commit_callbacks)

    assert sorted(r.path for r in http_server.received) == ["/a", "/b"]
    assert len({r.headers["webhook-id"] for r in http_server.received}) == 1


def test_nothing_is_recorded_when_nobody_listens(tenant, django_capture_on_commit_callbacks):
    made: list[int] = []

    def data() -> dict[str, int]:
        made.append(1)
        return {}

    with django_capture_on_commit_callbacks(execute=True):
        assert services.webhook_event_emit(tenant=tenant, type="credits.low", data=data) == []

    assert made == []
    assert not WebhookDelivery.objects.exists()


def test_another_workspaces_endpoint_gets_nothing(
    tenant, outsider, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/theirs")
    other = Tenant.objects.get(memberships__user=outsider)
    _endpoint(other, http_server.url("/theirs"))

    assert _emit(tenant, django_capture_on_commit_callbacks) == []
    assert http_server.received == []


def test_an_unknown_event_type_cannot_be_emitted(tenant):
    with pytest.raises(ValueError):
        services.webhook_event_emit(tenant=tenant, type="job.exploded", data={})


def test_running_the_delivery_task_twice_sends_once(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"))
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={})

    assert tasks.webhook_deliver(str(delivery.pk)) is True
    assert tasks.webhook_deliver(str(delivery.pk)) is False

    assert len(http_server.received) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


@pytest.mark.skipif(connection.vendor == "sqlite", reason="needs PostgreSQL's row locking")
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_a_delivery_send_it_once(http_server):
    owner = User.objects.create_user(email="race@shop.test", password="x")
    tenant = services.tenant_create(name="Race", owner=owner)
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"))
    [delivery] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={}, send=False)
    start = threading.Barrier(4)
    results: list[bool] = []

    def worker() -> None:
        from django.db import connection as thread_connection

        try:
            start.wait()
            results.append(services.webhook_delivery_send(delivery_id=delivery.pk))
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, False, False, True]
    assert len(http_server.received) == 1


def _due_now(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_failures_are_retried_with_backoff_and_full_jitter_within_each_steps_cap(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/hooks", b"down", status=503)
    _endpoint(tenant, http_server.url("/hooks"))
    [delivery] = _emit(tenant, django_capture_on_commit_callbacks)
    caps = services.WEBHOOK_RETRY_CAPS_SECONDS

    waits = []
    for attempt in range(1, len(caps) + 1):
        if attempt > 1:
            _due_now(delivery)
            assert services.webhook_delivery_send(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.last_status_code == 503
        assert delivery.response_excerpt == "down"
        wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
        waits.append(wait)
        assert caps[0] <= wait <= caps[attempt - 1] + 1
    assert len(http_server.received) == len(caps)


def test_the_retry_delay_is_a_random_draw_up_to_the_cap_and_never_below_the_first_step():
    rng = random.Random(7)
    caps = services.WEBHOOK_RETRY_CAPS_SECONDS

    for attempt, cap in enumerate(caps, start=1):
        draws = [services.webhook_retry_delay(attempt=attempt, rng=rng) for _ in range(200)]
        assert all(caps[0] <= d <= cap for d in draws)
        if cap > caps[0]:
            # Full jitter: spread over the whole range, not bunched at the cap.
            assert min(draws) < cap * 0.2 and max(draws) > cap * 0.8
    # Past the schedule the cap stays at its last step.
    later = [services.webhook_retry_delay(attempt=30, rng=rng) for _ in range(50)]
    assert max(later) <= caps[-1]
    assert sum(caps) <= 24 * 3600


def test_a_delivery_is_given_up_once_its_next_attempt_would_come_after_a_day(
    tenant, http_server, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_MAX_AGE_HOURS = 24
    http_server.route("/hooks", status=500)
    _endpoint(tenant, http_server.url("/hooks"))
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
    # The event happened a day ago, less a second: no retry fits any more.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=24) + timedelta(seconds=1)
    )

    services.webhook_delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.next_attempt_at is None and delivery.completed_at is not None
    assert delivery.last_error.startswith("Given up after 1 attempts")
    _due_now(delivery)
    assert services.webhook_delivery_send(delivery_id=delivery.pk) is False


def test_a_delivery_younger_than_a_day_is_retried(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/hooks", status=500)
    _endpoint(tenant, http_server.url("/hooks"))
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=20)
    )

    services.webhook_delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


def test_a_delivery_is_given_up_after_the_most_attempts(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/hooks", status=500)
    _endpoint(tenant, http_server.url("/hooks"))
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=services.WEBHOOK_MAX_ATTEMPTS - 1
    )

    services.webhook_delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.attempts == services.WEBHOOK_MAX_ATTEMPTS
    assert delivery.status == DeliveryStatus.FAILED


def test_410_gone_disables_the_endpoint_and_stops_its_pending_deliveries(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/gone", status=410)
    http_server.route("/kept")
    gone, _ = _endpoint(tenant, http_server.url("/gone"))
    _endpoint(tenant, http_server.url("/kept"))
    with django_capture_on_commit_callbacks(execute=False):
        services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
        services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
    first, waiting = WebhookDelivery.objects.filter(endpoint=gone).order_by("created_at")
    kept = WebhookDelivery.objects.exclude(endpoint=gone).first()
    assert kept is not None

    services.webhook_delivery_send(delivery_id=first.pk)

    gone.refresh_from_db()
    assert gone.enabled is False
    assert gone.disabled_at is not None and "410" in gone.disabled_reason
    first.refresh_from_db()
    assert (first.status, first.last_status_code) == (DeliveryStatus.FAILED, 410)
    waiting.refresh_from_db()
    assert waiting.status == DeliveryStatus.FAILED
    assert "disabled" in waiting.last_error
    assert services.webhook_delivery_send(delivery_id=waiting.pk) is False
    kept.refresh_from_db()
    assert kept.status == DeliveryStatus.PENDING
    # Later events skip it (the sender also sends the kept endpoint's two due deliveries).
    assert len(_emit(tenant, django_capture_on_commit_callbacks)) == 1
    assert [r.path for r in http_server.received] == ["/gone", "/kept", "/kept", "/kept"]


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/moved", status=301, Location="/new-home")
    http_server.route("/new-home")
    _endpoint(tenant, http_server.url("/moved"))

    [delivery] = _emit(tenant, django_capture_on_commit_callbacks)

    assert "/new-home" not in http_server.requests
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == 301
    assert "not followed" in delivery.last_error


def test_a_slow_receiver_is_a_failed_attempt(
    tenant, http_server, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3

    def slow(handler: Any) -> None:
        time.sleep(1.0)
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    http_server.routes["/slow"] = slow
    _endpoint(tenant, http_server.url("/slow"))

    [delivery] = _emit(tenant, django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("timeout:")


def test_the_url_is_checked_again_at_each_delivery(
    tenant, http_server, django_capture_on_commit_callbacks, settings
):
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"))
    # Allowed when it was added; not any more (as if its DNS now pointed inside).
    settings.FETCH_ALLOW_PRIVATE_HOSTS = []

    [delivery] = _emit(tenant, django_capture_on_commit_callbacks)

    assert http_server.received == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error.startswith("host_not_allowed:")


def test_the_sweep_sends_what_is_due_and_leaves_the_rest(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"))
    with django_capture_on_commit_callbacks(execute=False):  # as if the task were lost
        [lost] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
        [later] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
    WebhookDelivery.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    counts = tasks.webhooks_send_due()

    assert counts["sent"] == 1 and counts["succeeded"] == 1
    assert [r.headers["webhook-id"] for r in http_server.received] == [lost.message_id]
    later.refresh_from_db()
    assert later.status == DeliveryStatus.PENDING and later.attempts == 0


def test_the_sweep_runs_every_minute(db):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="webhooks-send")
    assert schedule.func == "accounts.tasks.webhooks_send_due"
    # In the webhooks cluster: a hanging receiver never holds a worker that runs jobs.
    assert schedule.cluster == "webhooks"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)


# --- the events -------------------------------------------------------------------------------


def _packshot_job(tenant: Tenant, owner: User, product_jpeg: bytes, **options: Any) -> Job:
    return job_services.job_submit(
        tenant=tenant,
        user=owner,
        model=PACKSHOT,
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        **options,
    )


def test_a_succeeded_job_sends_job_succeeded_with_the_job_as_the_api_shows_it(
    tenant,
    owner,
    owner_client,
    http_server,
    product_jpeg,
    django_capture_on_commit_callbacks,
    settings,
):
    settings.SITE_URL = "http://testserver"  # what the API answers the test client
    http_server.route("/hooks")
    _, secret = _endpoint(tenant, http_server.url("/hooks"), "job.succeeded")

    with django_capture_on_commit_callbacks(execute=True):
        job = _packshot_job(tenant, owner, product_jpeg)

    [got] = http_server.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "job.succeeded"
    owner_client.get(f"/w/{tenant.slug}/")  # the workspace the session uses
    shown = owner_client.get(f"/api/v1/jobs/{job.pk}").json()
    assert shown["status"] == "succeeded" and shown["outputs"]
    # Download links are signed when they are made, each with its own expiry.
    sent_outputs = payload["data"].pop("outputs")
    shown_outputs = shown.pop("outputs")
    assert payload["data"] == shown
    assert payload["data"]["urls"]["self"] == f"http://testserver/api/v1/jobs/{job.pk}"
    for sent, seen in zip(sent_outputs, shown_outputs, strict=True):
        signed = {"url", "expires_at"}
        assert {k: v for k, v in sent.items() if k not in signed} == {
            k: v for k, v in seen.items() if k not in signed
        }
        assert sent["url"].startswith(f"http://testserver/api/v1/assets/{seen['id']}/download?")
        assert Client().get(sent["url"]).status_code == 200


def test_job_urls_in_events_are_absolute_from_the_site_url(
    tenant, owner, http_server, product_jpeg, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://studio.example.com"
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"))

    with django_capture_on_commit_callbacks(execute=True):
        job = _packshot_job(tenant, owner, product_jpeg)

    data = json.loads(http_server.received[0].body)["data"]
    assert data["urls"]["self"] == f"https://studio.example.com/api/v1/jobs/{job.pk}"


def test_a_failed_job_sends_job_failed_with_its_error(
    tenant, owner, http_server, product_jpeg, django_capture_on_commit_callbacks
):
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"), "job.failed")
    with django_capture_on_commit_callbacks(execute=False):
        job = _packshot_job(tenant, owner, product_jpeg)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        assert job_services.job_fail(job_id=job.pk, code="engine_error", message="It broke.")

    [got] = http_server.received
    payload = json.loads(got.body)
    assert payload["type"] == "job.failed"
    assert payload["data"]["id"] == str(job.pk)
    assert payload["data"]["status"] == "failed"
    assert payload["data"]["error"] == {"code": "engine_error", "message": "It broke."}
    delivery = WebhookDelivery.objects.get()
    assert delivery.job_id == job.pk


def test_a_canceled_job_sends_nothing(
    tenant, owner, http_server, product_jpeg, django_capture_on_commit_callbacks
):
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"))
    with django_capture_on_commit_callbacks(execute=False):
        job = _packshot_job(tenant, owner, product_jpeg)

    with django_capture_on_commit_callbacks(execute=True):
        assert job_services.job_cancel(job=job)

    assert http_server.received == []
    assert not WebhookDelivery.objects.exists()


def test_a_jobs_own_webhook_url_gets_its_events_signed_with_the_workspace_secret(
    tenant, owner, http_server, product_jpeg, django_capture_on_commit_callbacks
):
    http_server.route("/job-hook")

    with django_capture_on_commit_callbacks(execute=True):
        job = _packshot_job(tenant, owner, product_jpeg, webhook_url=http_server.url("/job-hook"))

    [got] = http_server.received
    assert got.path == "/job-hook"
    secret = services.webhook_workspace_secret(tenant=tenant)
    payload = Webhook(secret).verify(got.body, got.headers)
    assert (payload["type"], payload["data"]["id"]) == ("job.succeeded", str(job.pk))
    delivery = WebhookDelivery.objects.get()
    assert delivery.endpoint is None and delivery.status == DeliveryStatus.SUCCEEDED


def test_a_private_webhook_url_refuses_the_job_and_holds_nothing(
    tenant, owner, product_jpeg, settings
):
    before = Tenant.objects.get(pk=tenant.pk).credit_balance

    with pytest.raises(job_services.JobError) as caught:
        _packshot_job(tenant, owner, product_jpeg, webhook_url="http://10.1.2.3/hook")

    assert caught.value.errors.keys() == {"webhook_url"}
    assert not Job.objects.exists()
    assert Tenant.objects.get(pk=tenant.pk).credit_balance == before


def test_the_workspace_secret_is_made_once_and_kept_encrypted(tenant, outsider):
    first = services.webhook_workspace_secret(tenant=tenant)

    assert first.startswith("whsec_")
    assert services.webhook_workspace_secret(tenant=Tenant.objects.get(pk=tenant.pk)) == first
    assert first not in Tenant.objects.get(pk=tenant.pk).webhook_secret_encrypted
    other = Tenant.objects.get(memberships__user=outsider)
    assert services.webhook_workspace_secret(tenant=other) != first


def test_credits_low_is_sent_with_the_low_balance_email(
    tenant, http_server, django_capture_on_commit_callbacks, mailoutbox, settings
):
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"), "credits.low")
    Tenant.objects.filter(pk=tenant.pk).update(credit_balance=3, low_balance_threshold=10)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.credits_low_check(tenant_id=tenant.pk) is True
        assert services.credits_low_check(tenant_id=tenant.pk) is False

    assert len(mailoutbox) == 1
    [got] = http_server.received
    payload = json.loads(got.body)
    assert payload["type"] == "credits.low"
    assert payload["data"] == {
        "workspace": tenant.slug,
        "balance": 3,
        "held": 0,
        "threshold": 10,
        "buy_url": f"{settings.SITE_URL}/w/{tenant.slug}/credits/",
    }


def test_batch_completed_is_an_event_endpoints_can_subscribe_to(
    tenant, http_server, django_capture_on_commit_callbacks
):
    http_server.route("/hooks")
    _endpoint(tenant, http_server.url("/hooks"), "batch.completed")

    _emit(tenant, django_capture_on_commit_callbacks, type="batch.completed", batch="b1")

    assert json.loads(http_server.received[0].body)["type"] == "batch.completed"


# --- who may manage webhooks: the rule lives in the services ---------------------------------


def test_a_member_or_an_outsider_cannot_add_delete_test_or_read_the_secret_through_the_services(
    tenant, owner, member, outsider, http_server
):
    url = http_server.url("/hooks")
    endpoint = services.webhook_endpoint_create(tenant=tenant, url=url, created_by=owner).endpoint
    refused = [
        lambda by: services.webhook_endpoint_create(tenant=tenant, url=url, created_by=by),
        lambda by: services.webhook_endpoint_delete(
            tenant=tenant, endpoint_id=str(endpoint.pk), by=by
        ),
        lambda by: services.webhook_test_send(tenant=tenant, endpoint_id=str(endpoint.pk), by=by),
        lambda by: services.webhook_workspace_secret(tenant=tenant, by=by),
    ]
    for call in refused:
        for by in (member, outsider):
            with pytest.raises(services.WebhookError) as refusal:
                call(by)
            assert refusal.value.code == "forbidden"
    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 1
    assert http_server.received == []


def test_an_owner_and_an_api_key_may_manage_webhooks(tenant, owner, http_server):
    url = http_server.url("/hooks")
    by_owner = services.webhook_endpoint_create(tenant=tenant, url=url, created_by=owner)
    by_key = services.webhook_endpoint_create(tenant=tenant, url=url, created_by=None)
    assert services.webhook_workspace_secret(tenant=tenant, by=owner).startswith("whsec_")
    assert services.webhook_endpoint_delete(
        tenant=tenant, endpoint_id=str(by_owner.endpoint.pk), by=owner
    )
    assert services.webhook_endpoint_delete(
        tenant=tenant, endpoint_id=str(by_key.endpoint.pk), by=None
    )
