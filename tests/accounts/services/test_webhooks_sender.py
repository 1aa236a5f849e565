"""The webhook sender: one at a time, in the webhooks cluster, a share of its threads per
workspace, workspaces in turn; and the cap on a workspace's endpoints."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import DeliveryStatus, Lease, Tenant, User, WebhookDelivery, WebhookEndpoint
from tests.support.api_helpers import assert_problem, key_client
from tests.support.http_server import HangingServer


@pytest.fixture
def other(outsider: User) -> Tenant:
    return Tenant.objects.get(memberships__user=outsider)


@pytest.fixture
def hanging(http_server: Any) -> Iterator[HangingServer]:
    server = HangingServer().start()
    yield server
    server.stop()


class _Posts:
    """Wraps the sender's POST to count attempts in flight per URL prefix, at the moment
    they are made (exact, unlike counting a server's open sockets)."""

    def __init__(self, webhook_post_wrapped: Any) -> None:
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.started: list[str] = []

        def post(real: Any, attempt: Any) -> Any:
            where = attempt.url.rsplit("/", 1)[0]
            with self.lock:
                self.now[where] += 1
                self.most[where] = max(self.most[where], self.now[where])
                self.started.append(attempt.url.rsplit("/", 1)[1])
            try:
                return real(attempt)
            finally:
                with self.lock:
                    self.now[where] -= 1

        webhook_post_wrapped(post)


def _endpoints(tenant: Tenant, url: str, count: int) -> list[WebhookEndpoint]:
    return [services.webhook_endpoint_create(tenant=tenant, url=url).endpoint for _ in range(count)]


def _emit_unsent(tenant: Tenant, captured: Any) -> list[WebhookDelivery]:
    with captured(execute=False):
        return services.webhook_event_emit(tenant=tenant, type="credits.low", data={"n": 1})


def test_a_hanging_receiver_holds_only_its_workspace_s_share_and_others_are_sent_meanwhile(
    tenant,
    other,
    http_server,
    hanging,
    settings,
    webhook_post_wrapped,
    django_capture_on_commit_callbacks,
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_WORKSPACE_CONCURRENCY = 2
    posts = _Posts(webhook_post_wrapped)
    http_server.route("/b")
    _endpoints(tenant, hanging.url("/a"), 5)
    _endpoints(other, http_server.url("/b"), 1)
    stuck = _emit_unsent(tenant, django_capture_on_commit_callbacks)
    [theirs] = _emit_unsent(other, django_capture_on_commit_callbacks)

    counts = services.webhooks_send_due()

    assert counts["sent"] == 6
    # Never more than its share of attempts open at once for the hanging workspace...
    assert posts.most[hanging.base_url] == 2
    assert hanging.accepted == 5
    # ...and the other workspace's delivery went out with the first ones, not after.
    assert posts.started.index("b") < 3
    theirs.refresh_from_db()
    assert theirs.status == DeliveryStatus.SUCCEEDED
    for delivery in stuck:
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
        assert delivery.next_attempt_at is not None
        assert delivery.next_attempt_at > timezone.now()


def test_workspaces_take_turns_for_the_sender_s_threads(
    tenant, other, http_server, settings, webhook_post_wrapped, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_SENDER_THREADS = 1
    posts = _Posts(webhook_post_wrapped)
    http_server.route("/a")
    http_server.route("/b")
    _endpoints(tenant, http_server.url("/a"), 3)
    _endpoints(other, http_server.url("/b"), 3)
    _emit_unsent(tenant, django_capture_on_commit_callbacks)  # the older three
    _emit_unsent(other, django_capture_on_commit_callbacks)

    assert services.webhooks_send_due()["succeeded"] == 6

    assert posts.started == ["a", "b", "a", "b", "a", "b"]


def test_only_one_sender_runs_at_a_time(tenant, http_server, django_capture_on_commit_callbacks):
    http_server.route("/hooks")
    _endpoints(tenant, http_server.url("/hooks"), 1)
    [delivery] = _emit_unsent(tenant, django_capture_on_commit_callbacks)
    Lease.objects.create(
        name=services.WEBHOOK_SENDER_LEASE,
        holder="another-sender",
        leased_until=timezone.now() + timedelta(seconds=30),
    )

    assert services.webhooks_send_due()["skipped"] == 1

    assert http_server.received == []
    delivery.refresh_from_db()
    assert delivery.attempts == 0


def test_new_deliveries_wake_a_sender_in_the_webhooks_cluster_unless_one_is_running(
    tenant, http_server, monkeypatch, django_capture_on_commit_callbacks
):
    import django_q.tasks

    queued: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        django_q.tasks, "async_task", lambda func, *a, **kw: queued.append((func, kw))
    )
    http_server.route("/hooks")
    _endpoints(tenant, http_server.url("/hooks"), 1)

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(tenant=tenant, type="credits.low", data={})

    [(func, options)] = queued
    assert func == "accounts.tasks.webhooks_send_due"
    assert options["cluster"] == "webhooks"

    Lease.objects.update_or_create(
        name=services.WEBHOOK_SENDER_LEASE,
        defaults={"holder": "running", "leased_until": timezone.now() + timedelta(seconds=30)},
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(tenant=tenant, type="credits.low", data={})
    assert len(queued) == 1


def test_a_workspace_at_its_endpoint_cap_is_refused_naming_url(
    tenant, other, http_server, settings
):
    settings.WEBHOOK_MAX_ENDPOINTS = 2
    _endpoints(tenant, http_server.url("/hooks"), 2)

    with pytest.raises(services.WebhookError) as refused:
        services.webhook_endpoint_create(tenant=tenant, url=http_server.url("/hooks"))

    assert refused.value.code == "validation_error"
    assert set(refused.value.errors) == {"url"}
    assert "2" in refused.value.errors["url"]
    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 2
    # Another workspace's endpoints are its own count.
    assert services.webhook_endpoint_create(tenant=other, url=http_server.url("/hooks"))


def test_the_api_refuses_an_endpoint_over_the_cap_with_a_400_naming_url(
    tenant, http_server, settings
):
    settings.WEBHOOK_MAX_ENDPOINTS = 1
    api: Client = key_client(tenant)
    body = {"url": http_server.url("/hooks")}
    first = api.post("/api/v1/webhooks", body, content_type="application/json")
    assert first.status_code == 201

    second = api.post("/api/v1/webhooks", body, content_type="application/json")

    assert set(assert_problem(second, 400, "validation_error")["errors"]) == {"url"}
    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 1
