"""Operators' view of users, workspaces, members, invitations, API keys and credits:
the ledger, packs, Stripe's sessions and events, and granting or adjusting credits; and
of webhooks: endpoints (re-enabled here) and their delivery log; and the throttles: failed
log-ins (django-axes' attempts), reset, sign-up and API-key counters, each with "Lift lock"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.forms import CreditAdjustForm, CreditGrantForm, TwoFactorResetForm
from accounts.models import (
    ApiKey,
    CheckoutSession,
    CreditEntry,
    CreditPack,
    IdempotencyKey,
    Invitation,
    Membership,
    PendingSignup,
    StripeEvent,
    Tenant,
    ThrottleCounter,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


# django-otp's own device pages would show anyone's authenticator secret to any operator
# and remove devices without a reason: resets go through "Reset two-factor" on users.
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = [
        "email",
        "name",
        "is_staff",
        "is_active",
        "two_factor",
        "date_joined",
        "last_login",
    ]
    actions = ["reset_two_factor"]
    list_filter = ["is_staff", "is_superuser", "is_active", "memberships__tenant"]
    search_fields = ["email", "name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    @admin.display(description="Two-factor", boolean=True)
    def two_factor(self, obj: User) -> bool:
        return obj.has_two_factor()

    @admin.action(description="Reset two-factor (lost phone)")
    def reset_two_factor(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> TemplateResponse | None:
        """Asks for a reason first, then removes the selected users' authenticator apps
        and recovery codes: they log in with their password and may set up again."""
        assert isinstance(request.user, User)  # admin actions run for staff only
        form = TwoFactorResetForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for user in queryset:
                services.user_two_factor_reset(
                    actor=request.user, user=user, reason=form.cleaned_data["reason"]
                )
                self.log_change(request, user, f"Two-factor reset: {form.cleaned_data['reason']}")
            self.message_user(
                request, f"Two-factor reset for {len(queryset)} user(s).", messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reset two-factor",
            "opts": self.model._meta,
            "users": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/accounts/user/reset_two_factor.html", context)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "member_count",
        "credit_balance",
        "credit_held",
        "low_balance_threshold",
        "created_at",
    ]
    search_fields = ["name", "slug", "memberships__user__email"]
    list_filter = ["created_at"]
    # The totals move only with ledger entries: "Grant credits" and "Adjust balance"
    # on the change page write them.
    readonly_fields = [
        "created_at",
        "credit_balance",
        "credit_held",
        "low_balance_notified_at",
        "own_segmind_key",
    ]
    # The shop's own key is set (and checked with Segmind) on its settings page; the
    # admin shows whether there is one, never the key.
    exclude = ["segmind_key_encrypted", "segmind_key_last4", "segmind_key_set_at"]
    inlines = [MembershipInline]
    change_form_template = "admin/accounts/tenant/change_form.html"

    @admin.display(description="Members")
    def member_count(self, obj: Tenant) -> int:
        return obj.memberships.count()

    @admin.display(description="Own Segmind key")
    def own_segmind_key(self, obj: Tenant) -> str:
        if not obj.has_own_segmind_key:
            return "None: jobs use the platform's key and prices"
        when = f"{obj.segmind_key_set_at:%Y-%m-%d %H:%M}" if obj.segmind_key_set_at else ""
        return f"ending {obj.segmind_key_last4}, set {when}"

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/credits/grant/",
                self.admin_site.admin_view(self.credits_grant_view),
                name="accounts_tenant_credits_grant",
            ),
            path(
                "<path:object_id>/credits/adjust/",
                self.admin_site.admin_view(self.credits_adjust_view),
                name="accounts_tenant_credits_adjust",
            ),
        ]
        return own + super().get_urls()

    def credits_grant_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._credits_form_view(request, object_id, CreditGrantForm, "Grant credits")

    def credits_adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._credits_form_view(request, object_id, CreditAdjustForm, "Adjust balance")

    def _credits_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_class: type[CreditGrantForm] | type[CreditAdjustForm],
        title: str,
    ) -> HttpResponse:
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            raise Http404(f"No workspace with id {object_id!r}.")
        if not self.has_change_permission(request, tenant):
            raise PermissionDenied
        assert isinstance(request.user, User)  # admin_view lets only staff users in
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            amount, memo = form.cleaned_data["amount"], form.cleaned_data["memo"]
            try:
                if form_class is CreditGrantForm:
                    entry = services.credits_grant(
                        tenant=tenant, amount=amount, user=request.user, memo=memo
                    )
                else:
                    entry = services.credits_adjust(
                        tenant=tenant, amount=amount, user=request.user, memo=memo
                    )
            except services.CreditError as e:
                field = "memo" if e.code == "memo_required" else "amount"
                form.add_error(field, e.message)
            else:
                done = f"{entry.get_kind_display()} of {entry.amount:+d} credits: {memo}"
                self.log_change(request, tenant, done)
                self.message_user(
                    request,
                    f"{done}. {tenant.name} now has {entry.balance_after} credits.",
                    messages.SUCCESS,
                )
                return redirect("admin:accounts_tenant_change", tenant.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {tenant.name}",
            "opts": self.model._meta,
            "original": tenant,
            "form": form,
            "action_label": title,
            "change_url": reverse("admin:accounts_tenant_change", args=[tenant.pk]),
        }
        return TemplateResponse(request, "admin/accounts/tenant/credits_form.html", context)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "tenant__name", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]
    list_select_related = ["user", "tenant"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "tenant", "role", "invited_by", "created_at", "sent_at", "accepted_at"]
    list_filter = ["role", "tenant", ("accepted_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "tenant__name"]
    readonly_fields = ["token_digest", "created_at", "sent_at", "accepted_at"]
    list_select_related = ["tenant", "invited_by"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "tenant__name"]
    # Keys are created by the command or the portal, where the secret is shown once.
    readonly_fields = ["prefix", "digest", "created_by", "created_at", "last_used_at"]
    list_select_related = ["tenant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


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


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    """What shops can buy; a pack taken off sale stays on the sessions that sold it."""

    list_display = ["name", "credits", "price", "currency", "active", "created_at"]
    list_editable = ["active"]
    list_filter = ["active", "currency"]
    search_fields = ["name"]

    @admin.display(description="Price", ordering="price_cents")
    def price(self, obj: CreditPack) -> str:
        return obj.price_display

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Sold packs are referenced by their sessions: take them off sale instead.
        if obj is not None and CheckoutSession.objects.filter(pack=obj).exists():
            return False
        return super().has_delete_permission(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the services (Stripe's webhook): shown, never edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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


def _recent_failures(**match: str) -> int:
    since = timezone.now() - timedelta(minutes=settings.LOGIN_COOL_OFF_MINUTES)
    total = AccessAttempt.objects.filter(attempt_time__gte=since, **match).aggregate(
        total=Sum("failures_since_start")
    )["total"]
    return int(total or 0)


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    """django-axes' failed log-ins, with whether the account or the address is locked now,
    and "Lift lock"."""

    list_display = [*AxesAccessAttemptAdmin.list_display, "lock"]
    actions = ["lift_lock", *AxesAccessAttemptAdmin.actions]

    @admin.display(description="Locked now")
    def lock(self, obj: AccessAttempt) -> str:
        locks = []
        if obj.username and _recent_failures(username=obj.username) >= settings.LOGIN_FAILURE_LIMIT:
            locks.append("account")
        if (
            obj.ip_address
            and _recent_failures(ip_address=obj.ip_address) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT
        ):
            locks.append("address")
        return " and ".join(locks) or "no"

    @admin.action(description="Lift lock (reset the attempts of these accounts and addresses)")
    def lift_lock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        assert isinstance(request.user, User)
        removed = services.login_lock_lift(
            actor=request.user,
            attempt_ids=list(queryset.values_list("pk", flat=True)),
            reason="Lift lock, in the admin",
        )
        self.message_user(request, f"Lock lifted: {removed} attempt record(s) removed.")


@admin.register(ThrottleCounter)
class ThrottleCounterAdmin(admin.ModelAdmin):
    """Password-reset, sign-up and API-key counters (a row ends its lock by itself when
    `locked_until` passes); "Lift lock" removes them."""

    list_display = ["scope", "key", "count", "window_started_at", "locked_until", "locked_now"]
    list_filter = ["scope"]
    search_fields = ["key"]
    readonly_fields = ["scope", "key", "count", "window_started_at", "locked_until"]
    actions = ["lift_lock"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(boolean=True, description="Locked now")
    def locked_now(self, obj: ThrottleCounter) -> bool:
        return bool(obj.lock_seconds_left())

    @admin.action(description="Lift lock (start these counters afresh)")
    def lift_lock(self, request: HttpRequest, queryset: QuerySet[ThrottleCounter]) -> None:
        assert isinstance(request.user, User)
        removed = services.throttle_lock_lift(
            actor=request.user,
            counter_ids=list(queryset.values_list("pk", flat=True)),
            reason="Lift lock, in the admin",
        )
        self.message_user(request, f"Lock lifted: {removed} counter(s) removed.")


@admin.register(PendingSignup)
class PendingSignupAdmin(ReadOnlyAdmin):
    """Sign-ups waiting for their email link (the account is created when it is opened)."""

    list_display = ["email", "workspace_name", "created_at", "completed_at"]
    search_fields = ["email", "workspace_name"]
    exclude = ["password_hash", "token_digest"]
