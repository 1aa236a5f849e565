"""Webhooks: the shops' endpoints and the deliveries made to them (and to jobs' own
`webhook_url`s)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts.models.users import User
from accounts.models.workspaces import Tenant


class WebhookEventType(models.TextChoices):
    JOB_SUCCEEDED = "job.succeeded", "A job succeeded"
    JOB_FAILED = "job.failed", "A job failed"
    BATCH_COMPLETED = "batch.completed", "A batch completed"
    CREDITS_LOW = "credits.low", "Credits are running low"
    WEBHOOK_TEST = "webhook.test", "A test event"


# What an endpoint may subscribe to; a test event goes only to the endpoint it tests.
SUBSCRIBABLE_EVENT_TYPES = (
    WebhookEventType.JOB_SUCCEEDED,
    WebhookEventType.JOB_FAILED,
    WebhookEventType.BATCH_COMPLETED,
    WebhookEventType.CREDITS_LOW,
)
# The events a job's own `webhook_url` receives.
JOB_EVENT_TYPES = (WebhookEventType.JOB_SUCCEEDED, WebhookEventType.JOB_FAILED)


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    def for_tenant(self, tenant: Tenant) -> WebhookEndpointQuerySet:
        return self.filter(tenant=tenant)

    def enabled(self) -> WebhookEndpointQuerySet:
        return self.filter(enabled=True)


class WebhookEndpoint(models.Model):
    """A URL of the shop's that receives the workspace's events, signed with its own
    secret (Standard Webhooks)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Empty: every event type, today's and those added later.
    event_types = models.JSONField(default=list, blank=True)
    # `whsec_` + base64 of 32 random bytes, encrypted (Fernet); shown once, at creation.
    secret_encrypted = models.TextField()
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDeliveryQuerySet(models.QuerySet["WebhookDelivery"]):
    def for_tenant(self, tenant: Tenant) -> WebhookDeliveryQuerySet:
        return self.filter(tenant=tenant)

    def pending(self) -> WebhookDeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PENDING)

    def due(self, now: datetime) -> WebhookDeliveryQuerySet:
        """Pending deliveries whose next attempt is due (a claimed one is not due until
        its claim runs out)."""
        return self.pending().filter(next_attempt_at__lte=now)

    def in_turn(self, *, per_workspace: int) -> WebhookDeliveryQuerySet:
        """The first `per_workspace` deliveries of each workspace, annotated with
        `tenant_rank`, their place in their workspace's line (the longest due first), and
        ordered so each workspace's first comes before anyone's second: workspaces take
        turns."""
        return (
            self.annotate(
                tenant_rank=models.Window(
                    RowNumber(),
                    partition_by=[models.F("tenant_id")],
                    order_by=[models.F("next_attempt_at").asc(), models.F("created_at").asc()],
                )
            )
            .filter(tenant_rank__lte=per_workspace)
            .order_by("tenant_rank", "next_attempt_at", "created_at")
        )


class WebhookDelivery(models.Model):
    """One message to one URL (an endpoint, or a job's own `webhook_url`), with its
    attempts so far. The body is kept as sent: every attempt signs the same bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="webhook_deliveries")
    # None: the job's own `webhook_url`, signed with the workspace's secret.
    endpoint = models.ForeignKey(
        WebhookEndpoint, models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    job = models.ForeignKey("jobs.Job", models.SET_NULL, null=True, blank=True, related_name="+")
    url = models.CharField(max_length=2000)
    # `webhook-id`: the same for every endpoint of one event and every retry.
    message_id = models.CharField(max_length=40, db_index=True)
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    # Counted when an attempt is claimed, so an attempt whose worker died counts too.
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; while an attempt runs, when its claim runs out.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    response_excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "message_id"],
                condition=models.Q(endpoint__isnull=False),
                name="one_delivery_per_endpoint_and_message",
            ),
            models.UniqueConstraint(
                fields=["message_id"],
                condition=models.Q(endpoint__isnull=True),
                name="one_job_url_delivery_per_message",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} to {self.url}"

    @property
    def payload(self) -> Any:
        return json.loads(self.body)
