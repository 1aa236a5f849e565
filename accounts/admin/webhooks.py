"""Webhooks: endpoints (re-enabled here) and their delivery log."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
)

from accounts import services
from accounts.admin.base import ReadOnlyAdmin
from accounts.models import (
    WebhookDelivery,
    WebhookEndpoint,
)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Shops' webhook endpoints. They are added over the API, where the secret is shown
    once; operators re-enable one that a receiver disabled with 410 Gone."""

    list_display = ["url", "tenant", "enabled", "event_types", "created_at", "disabled_reason"]
    list_filter = ["enabled", "tenant", "created_at"]
    search_fields = ["url", "description", "tenant__name", "tenant__slug"]
    list_select_related = ["tenant"]
    exclude = ["secret_encrypted"]
    # The URL was checked against the fetch rules when it was added: not edited here.
    readonly_fields = [
        "url",
        "enabled",
        "disabled_at",
        "disabled_reason",
        "created_by",
        "created_at",
    ]
    actions = ["reenable"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Re-enable selected endpoints")
    def reenable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        endpoints = list(queryset.filter(enabled=False))
        for endpoint in endpoints:
            services.webhook_endpoint_enable(endpoint=endpoint)
        self.message_user(request, f"{len(endpoints)} endpoint(s) re-enabled.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log, written only by the sender."""

    list_display = [
        "created_at",
        "event_type",
        "tenant",
        "url",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
    ]
    list_filter = ["status", "event_type", "tenant", "created_at"]
    search_fields = ["message_id", "url", "tenant__name", "tenant__slug", "job__id"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
