"""Operators' view of webhooks: endpoints (re-enabled after a 410) and a read-only
delivery log, filterable by workspace, status and event."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import DeliveryStatus, Tenant, User, WebhookDelivery, WebhookEndpoint
from tests.support.two_factor import staff_login


@pytest.fixture
def operator_client(db: None) -> Client:
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    return staff_login(Client(), operator)


@pytest.fixture
def endpoint(tenant: Tenant, http_server: Any) -> WebhookEndpoint:
    return services.webhook_endpoint_create(tenant=tenant, url=http_server.url("/hooks")).endpoint


@pytest.fixture
def delivery(tenant: Tenant, endpoint: WebhookEndpoint) -> WebhookDelivery:
    [made] = services.webhook_event_emit(tenant=tenant, type="credits.low", data={}, send=False)
    return made


def test_an_operator_re_enables_an_endpoint_a_receiver_disabled(
    operator_client: Client, endpoint: WebhookEndpoint
):
    services.webhook_endpoint_disable(
        endpoint_id=endpoint.pk, reason="the receiver answered 410 Gone"
    )

    response = operator_client.post(
        reverse("admin:accounts_webhookendpoint_changelist"),
        {"action": "reenable", "_selected_action": [str(endpoint.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 endpoint(s) re-enabled." in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_at is None and endpoint.disabled_reason == ""


def test_the_endpoint_page_never_shows_the_secret(
    operator_client: Client, endpoint: WebhookEndpoint
):
    secret = services.webhook_endpoint_secret(endpoint=endpoint)

    page = operator_client.get(reverse("admin:accounts_webhookendpoint_change", args=[endpoint.pk]))

    assert page.status_code == 200
    assert secret not in page.content.decode()
    assert endpoint.secret_encrypted not in page.content.decode()


def test_deliveries_are_read_only_and_filterable(
    operator_client: Client, delivery: WebhookDelivery, tenant: Tenant
):
    changelist = reverse("admin:accounts_webhookdelivery_changelist")
    change = reverse("admin:accounts_webhookdelivery_change", args=[delivery.pk])

    for filters in (
        {"tenant__id__exact": tenant.pk},
        {"status__exact": DeliveryStatus.PENDING},
        {"event_type__exact": "credits.low"},
        {"q": delivery.message_id},
    ):
        page = operator_client.get(changelist, filters)
        assert page.status_code == 200
        assert change in page.content.decode(), filters
    for filters in (
        {"status__exact": DeliveryStatus.SUCCEEDED},
        {"event_type__exact": "job.failed"},
    ):
        assert change not in operator_client.get(changelist, filters).content.decode()
    page = operator_client.get(change)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert operator_client.post(change, {"status": "succeeded"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
