"""The throttles: failed log-ins (django-axes' attempts) and counters, each with "Lift
lock"; pending sign-ups."""

from __future__ import annotations

from datetime import timedelta

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet, Sum
from django.http import (
    HttpRequest,
)
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts import services
from accounts.admin.base import ReadOnlyAdmin, _operator, operator_reason_confirm
from accounts.models import (
    PendingSignup,
    ThrottleCounter,
)


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

    @admin.action(description="Lift lock (reset the attempts of these accounts and addresses)…")
    def lift_lock(
        self, request: HttpRequest, queryset: QuerySet[AccessAttempt]
    ) -> TemplateResponse | None:
        reason, page = operator_reason_confirm(
            self,
            request,
            queryset,
            title="Lift log-in locks",
            intro="These accounts and addresses may try to log in again at once.",
        )
        if reason is None:
            return page
        removed = services.login_lock_lift(
            actor=_operator(request),
            attempt_ids=list(queryset.values_list("pk", flat=True)),
            reason=reason,
        )
        self.message_user(request, f"Lock lifted: {removed} attempt record(s) removed.")
        return None


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

    @admin.action(description="Lift lock (start these counters afresh)…")
    def lift_lock(
        self, request: HttpRequest, queryset: QuerySet[ThrottleCounter]
    ) -> TemplateResponse | None:
        reason, page = operator_reason_confirm(
            self,
            request,
            queryset,
            title="Lift locks",
            intro="These addresses and emails may send password resets, sign-ups or API "
            "requests again at once.",
        )
        if reason is None:
            return page
        removed = services.throttle_lock_lift(
            actor=_operator(request),
            counter_ids=list(queryset.values_list("pk", flat=True)),
            reason=reason,
        )
        self.message_user(request, f"Lock lifted: {removed} counter(s) removed.")
        return None


@admin.register(PendingSignup)
class PendingSignupAdmin(ReadOnlyAdmin):
    """Sign-ups waiting for their email link (the account is created when it is opened)."""

    list_display = ["email", "workspace_name", "created_at", "completed_at"]
    search_fields = ["email", "workspace_name"]
    exclude = ["password_hash", "token_digest"]
