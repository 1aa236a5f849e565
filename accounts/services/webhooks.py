"""Webhooks (Standard Webhooks): endpoints, secrets, signing and verifying."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import (
    SUBSCRIBABLE_EVENT_TYPES,
    DeliveryStatus,
    Membership,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from accounts.services.fernet import _fernet
from productstudio.lib.errors import CodedError

# -- webhooks (Standard Webhooks) --------------------------------------------------------


class WebhookError(CodedError):
    """A refused webhook operation (``validation_error``, ``endpoint_disabled``), or a
    delivery that does not verify (``invalid_signature``, ``invalid_timestamp``)."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(code, message)
        self.errors: dict[str, str] = {field: message.removeprefix(f"{field}: ")} if field else {}


WEBHOOK_SECRET_PREFIX = "whsec_"
# The spec asks for 24 to 64 random bytes.
WEBHOOK_SECRET_BYTES = 32
# Each retry waits a random time (full jitter) up to its step's cap, and at least the
# first step: no receiver is asked again within seconds. Past the last step the cap
# stays there; a message is given up once its next attempt would come later than
# WEBHOOK_MAX_AGE_HOURS after its event, or after WEBHOOK_MAX_ATTEMPTS attempts.
WEBHOOK_RETRY_CAPS_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)
WEBHOOK_MAX_ATTEMPTS = 12
# What is kept of a receiver's answer, for the delivery log.
WEBHOOK_EXCERPT_BYTES = 1024
# What a verifying receiver accepts by default (the spec's libraries use 5 minutes).
WEBHOOK_TOLERANCE_SECONDS = 300


def webhook_secret_new() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return (
        WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()
    )


def _secret_seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _secret_open(sealed: str) -> str:
    return _fernet().decrypt(sealed.encode()).decode()


def webhook_sign(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` of one attempt: ``v1,`` and the base64 HMAC-SHA256 of
    ``{id}.{timestamp}.{body}``, keyed with the secret's decoded bytes."""
    from standardwebhooks import Webhook

    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(secret).sign(msg_id=message_id, timestamp=when, data=body)


def webhook_headers(*, secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt, as the spec names them."""
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_sign(
            secret=secret, message_id=message_id, timestamp=timestamp, body=body
        ),
    }


def webhook_verify(
    *,
    secret: str,
    body: str | bytes,
    headers: Mapping[str, str],
    tolerance_seconds: int = WEBHOOK_TOLERANCE_SECONDS,
    now: float | None = None,
) -> Any:
    """What a receiver does: check a delivery's signature and timestamp, and return its
    parsed payload. Raises ``invalid_timestamp`` for a timestamp further than
    ``tolerance_seconds`` from ``now`` (a replay), ``invalid_signature`` when no
    ``v1`` signature of the header list matches (compared in constant time)."""
    text = body.decode() if isinstance(body, bytes) else body
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (message_id and stamp and signatures):
        raise WebhookError("invalid_signature", "The webhook-* headers are missing.")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookError("invalid_timestamp", "webhook-timestamp is not a number.") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookError(
            "invalid_timestamp",
            f"webhook-timestamp is more than {tolerance_seconds} seconds from now.",
        )
    expected = webhook_sign(secret=secret, message_id=message_id, timestamp=timestamp, body=text)
    expected_digest = base64.b64decode(expected.partition(",")[2])
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            digest = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(digest, expected_digest):
            return json.loads(text)
    raise WebhookError("invalid_signature", "No signature matches the body.")


def webhook_url_check(*, url: str, field: str = "url") -> str:
    """A target URL checked with the fetcher's rules (http/https, no credentials, no
    private address once resolved, unless FETCH_ALLOW_PRIVATE_HOSTS allows it); the
    normalised URL, or a ``validation_error`` naming `field`."""
    from productstudio.lib import fetcher

    if not isinstance(url, str) or not url.strip():
        raise WebhookError(
            "validation_error", f"{field}: give the URL to send events to.", field=field
        )
    try:
        return fetcher.check_url_from_settings(url.strip())
    except fetcher.FetchError as e:
        message = (
            "must start with http:// or https://." if e.code == "unsupported_scheme" else e.message
        )
        raise WebhookError("validation_error", f"{field}: {message}", field=field) from e


def _event_types_check(event_types: Sequence[str]) -> list[str]:
    allowed = [str(t) for t in SUBSCRIBABLE_EVENT_TYPES]
    unknown = [t for t in event_types if t not in allowed]
    if unknown:
        raise WebhookError(
            "validation_error",
            f"event_types: unknown event type '{unknown[0]}'; choose from {', '.join(allowed)}.",
            field="event_types",
        )
    return list(dict.fromkeys(event_types))


@dataclass(frozen=True)
class NewWebhookEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once, at creation


WEBHOOK_MANAGERS_ONLY = (
    "Only the workspace's owners and admins manage its webhooks; ask one of them."
)


def webhook_manager_check(*, tenant: Tenant, by: User | None) -> None:
    """Refuse (``forbidden``) unless `by` may manage `tenant`'s webhooks. None is an API
    key, which acts for the whole workspace; a person must be one of its owners or
    admins, as for API keys (an endpoint receives the workspace's events, and the secret
    signs them)."""
    if by is None:
        return
    membership = Membership.objects.for_tenant(tenant).filter(user=by).first()
    if membership is None or not membership.can_manage_team:
        raise WebhookError("forbidden", WEBHOOK_MANAGERS_ONLY)


def webhook_endpoint_create(
    *,
    tenant: Tenant,
    url: str,
    event_types: Sequence[str] = (),
    description: str = "",
    created_by: User | None = None,
) -> NewWebhookEndpoint:
    """Add an endpoint for `tenant`'s events (all of them when `event_types` is empty),
    with a new signing secret. The URL is checked now and again at each delivery.
    `created_by` must manage the workspace's webhooks (None: an API key or a command)."""
    webhook_manager_check(tenant=tenant, by=created_by)
    # Refused before the URL is resolved when the workspace is already at its cap.
    _webhook_endpoints_cap_check(tenant=tenant)
    checked = webhook_url_check(url=url)
    types = _event_types_check(event_types)
    secret = webhook_secret_new()
    with transaction.atomic():
        # The workspace's row is locked so two requests at once cannot pass the cap.
        list(Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk"))
        _webhook_endpoints_cap_check(tenant=tenant)
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant,
            url=checked,
            description=description.strip()[:200],
            event_types=types,
            secret_encrypted=_secret_seal(secret),
            created_by=created_by,
        )
    return NewWebhookEndpoint(endpoint=endpoint, secret=secret)


def _webhook_endpoints_cap_check(*, tenant: Tenant) -> None:
    cap = int(settings.WEBHOOK_MAX_ENDPOINTS)
    if WebhookEndpoint.objects.for_tenant(tenant).count() >= cap:
        raise WebhookError(
            "validation_error",
            f"url: this workspace already has {cap} webhook endpoints, the most allowed "
            "(WEBHOOK_MAX_ENDPOINTS). Delete one, or send several event types to one endpoint.",
            field="url",
        )


def webhook_endpoint_secret(*, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret in clear."""
    return _secret_open(endpoint.secret_encrypted)


def webhook_endpoint_delete(*, tenant: Tenant, endpoint_id: str, by: User | None = None) -> bool:
    """Delete one of `tenant`'s endpoints with its delivery log; pending deliveries
    go with it. `by` must manage the workspace's webhooks (None: an API key)."""
    webhook_manager_check(tenant=tenant, by=by)
    deleted, _ = WebhookEndpoint.objects.for_tenant(tenant).filter(pk=endpoint_id).delete()
    return bool(deleted)


def webhook_endpoint_disable(*, endpoint_id: uuid.UUID, reason: str) -> bool:
    """Stop sending to an endpoint (its receiver answered 410 Gone): its pending
    deliveries fail now. False when it was disabled already."""
    now = timezone.now()
    with transaction.atomic():
        disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
            enabled=False, disabled_at=now, disabled_reason=reason[:300]
        )
        WebhookDelivery.objects.pending().filter(endpoint_id=endpoint_id).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            completed_at=now,
            last_error=f"Not sent: the endpoint was disabled ({reason})"[:300],
        )
    return bool(disabled)


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    """Send to a disabled endpoint again (an operator's call): events from now on; the
    deliveries failed meanwhile stay failed."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_at=None, disabled_reason=""
    )
    endpoint.refresh_from_db(fields=["enabled", "disabled_at", "disabled_reason"])


def webhook_workspace_secret(*, tenant: Tenant, by: User | None = None) -> str:
    """The workspace's secret for jobs' own `webhook_url`s, made on first use (the
    conditional update keeps the first of two concurrent callers' secret). `by` must
    manage the workspace's webhooks (None: an API key, or the sender signing)."""
    webhook_manager_check(tenant=tenant, by=by)
    sealed = (
        Tenant.objects.filter(pk=tenant.pk).values_list("webhook_secret_encrypted", flat=True).get()
    )
    if not sealed:
        Tenant.objects.filter(pk=tenant.pk, webhook_secret_encrypted="").update(
            webhook_secret_encrypted=_secret_seal(webhook_secret_new())
        )
        sealed = (
            Tenant.objects.filter(pk=tenant.pk)
            .values_list("webhook_secret_encrypted", flat=True)
            .get()
        )
    tenant.webhook_secret_encrypted = sealed
    return _secret_open(sealed)
