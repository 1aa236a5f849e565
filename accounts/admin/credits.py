"""Credits: the ledger, packs, Stripe's sessions and events, idempotency keys."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import (
    HttpRequest,
)

from accounts.admin.base import ReadOnlyAdmin, RecordedChangeAdmin, RecordedChangeForm
from accounts.models import (
    CheckoutSession,
    CreditEntry,
    CreditPack,
    IdempotencyKey,
    OperatorActionCode,
    StripeEvent,
)


@admin.register(CreditEntry)
class CreditEntryAdmin(admin.ModelAdmin):
    """The ledger, read-only: entries are never edited or deleted; corrections are new
    entries made through the services."""

    list_display = [
        "created_at",
        "tenant",
        "kind",
        "amount",
        "balance_after",
        "held_after",
        "job",
        "created_by",
        "memo",
    ]
    list_filter = ["kind", "tenant", "created_at"]
    search_fields = ["tenant__name", "tenant__slug", "memo", "payment_ref", "job__id"]
    list_select_related = ["tenant", "created_by"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class CreditPackAdminForm(RecordedChangeForm):
    # Taking a pack on or off sale (the list's checkbox) is not a price change.
    recorded_fields = ("credits", "price_cents", "currency")

    class Meta:
        model = CreditPack
        fields = ["name", "credits", "price_cents", "currency", "active"]


@admin.register(CreditPack)
class CreditPackAdmin(RecordedChangeAdmin):
    """What shops can buy; a pack taken off sale stays on the sessions that sold it. A new
    pack, or a change of its credits, price or currency, asks why and is recorded."""

    form = CreditPackAdminForm
    recorded_action = OperatorActionCode.PRICE_CHANGE
    list_display = ["name", "credits", "price", "currency", "active", "created_at"]
    # The list's form is a plain one with only this field: nothing recorded to ask about.
    list_editable = ["active"]
    list_filter = ["active", "currency"]
    search_fields = ["name"]

    def recorded_target(self, obj: CreditPack) -> str:
        return f"credit pack {obj.pk} {obj.name}"

    @admin.display(description="Price", ordering="price_cents")
    def price(self, obj: CreditPack) -> str:
        return obj.price_display

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Sold packs are referenced by their sessions: take them off sale instead.
        if obj is not None and CheckoutSession.objects.filter(pack=obj).exists():
            return False
        return super().has_delete_permission(request, obj)


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "session_id",
        "tenant",
        "pack",
        "credits",
        "price",
        "status",
        "created_by",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "tenant", "created_at"]
    search_fields = ["session_id", "tenant__name", "tenant__slug", "created_by__email"]
    list_select_related = ["tenant", "pack", "created_by"]
    date_hierarchy = "created_at"

    @admin.display(description="Price", ordering="price_cents")
    def price(self, obj: CheckoutSession) -> str:
        return obj.price_display


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at"]
    list_filter = ["type", "received_at"]
    search_fields = ["event_id", "type"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    """What a retrying integration got back: for support, when "why wasn't my job made
    again?" is asked. Expired keys are swept hourly."""

    list_display = ["key", "tenant", "request_line", "response_status", "created_at"]
    list_filter = ["response_status", "created_at"]
    search_fields = ["key", "tenant__name", "tenant__slug", "request_line"]
    list_select_related = ["tenant"]
    exclude = ["response_body"]
    date_hierarchy = "created_at"
