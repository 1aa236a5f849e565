"""Operators' view of users, workspaces, members, invitations, API keys and credits:
the ledger, packs, Stripe's sessions and events, and granting or adjusting credits; of
webhooks: endpoints (re-enabled here) and their delivery log; the throttles: failed log-ins
(django-axes' attempts), reset, sign-up and API-key counters, each with "Lift lock"; and
the operators' audit trail. Every change of money, of a workspace's standing or of an
operator's (users' flags, groups and permissions; prices and packs) made here asks why and
is recorded (`operator_action_record`) in the same transaction as the change; users,
workspaces and groups are not deleted here."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet, Sum
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.forms import (
    REASON_REQUIRED,
    CreditAdjustForm,
    CreditGrantForm,
    OperatorReasonForm,
)
from accounts.models import (
    ApiKey,
    CheckoutSession,
    CreditEntry,
    CreditPack,
    IdempotencyKey,
    Invitation,
    Membership,
    OperatorAction,
    OperatorActionCode,
    PendingSignup,
    Role,
    StripeEvent,
    Tenant,
    ThrottleCounter,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)


def operator_reason_confirm(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    title: str,
    intro: str,
) -> tuple[str | None, TemplateResponse | None]:
    """The admin action pattern with a "Why": the first call shows the selected rows and a
    required reason field; the confirmed post returns the reason. Returns (reason, None)
    to go ahead, or (None, the page to show) when there is no valid reason yet."""
    form = OperatorReasonForm(request.POST if request.POST.get("post") else None)
    if form.is_valid():
        return form.cleaned_data["reason"], None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "objects": list(queryset),
        "form": form,
        "opts": model_admin.opts,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return None, TemplateResponse(request, "admin/operator_reason.html", context)


def _operator(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # admin_view lets only staff users in
    return request.user


def _plain(value: Any) -> Any:
    """A form value as the audit trail's details keep it: JSON, exact, readable."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, QuerySet | list | tuple | set):
        return sorted(str(_plain(item)) for item in value)
    return str(value)


class RecordedChangeForm(forms.ModelForm):
    """A model form whose changes to `recorded_fields` need a "Why" and are recorded
    (`RecordedChangeAdmin`). On an add form every recorded field counts as changed
    (before: None) unless `record_on_add` says the new value is unremarkable."""

    recorded_fields: tuple[str, ...] = ()

    reason = forms.CharField(
        label="Why",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"class": "vTextField", "size": 60}),
        help_text="Required when a recorded field changes: kept in the operators' audit trail.",
    )

    def record_on_add(self, name: str, value: Any) -> bool:
        return True

    def _recorded_changes(self) -> dict[str, dict[str, Any]]:
        data = self.cleaned_data
        if self.instance._state.adding:
            return {
                name: {"before": None, "after": _plain(data.get(name))}
                for name in self.recorded_fields
                if name in self.fields and self.record_on_add(name, data.get(name))
            }
        return {
            name: {"before": _plain(self.initial.get(name)), "after": _plain(data.get(name))}
            for name in self.recorded_fields
            if name in self.changed_data
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Worked out before saving: afterwards the instance is no longer being added.
        self.recorded_changes = self._recorded_changes()
        if self.recorded_changes and not (data.get("reason") or "").strip():
            self.add_error("reason", REASON_REQUIRED)
        return data


class RecordedChangeAdmin(admin.ModelAdmin):
    """Saves a `RecordedChangeForm` and its audit row together: the admin's add and
    change views run in one transaction."""

    recorded_action: str = ""

    def recorded_target(self, obj: Any) -> str:
        return str(obj)

    def recorded_tenant(self, obj: Any) -> Tenant | None:
        return None

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        changes = getattr(form, "recorded_changes", None)
        if changes:
            services.operator_action_record(
                actor=_operator(request),
                action=self.recorded_action,
                tenant=self.recorded_tenant(form.instance),
                target=self.recorded_target(form.instance),
                details=changes,
                reason=form.cleaned_data["reason"],
            )


class MembershipInline(admin.TabularInline):
    """Shown here; roles are changed and members added or removed on the Memberships
    pages, which ask why and record it."""

    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# django-otp's own device pages would show anyone's authenticator secret to any operator
# and remove devices without a reason: resets go through "Reset two-factor" on users.
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


# Fields of a user whose change alters what they may do as an operator: asked why, and
# recorded.
USER_STANDING_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")


class UserStandingChangeForm(RecordedChangeForm, UserChangeForm):
    recorded_fields = USER_STANDING_FIELDS


class UserStandingAddForm(RecordedChangeForm, AdminUserCreationForm):
    recorded_fields = ("is_staff", "is_superuser")

    def record_on_add(self, name: str, value: Any) -> bool:
        return bool(value)  # a plain new account is not an operator


@admin.register(User)
class UserAdmin(RecordedChangeAdmin, BaseUserAdmin):
    """Users. Changing whether someone is active, staff or superuser, or their groups or
    permissions, asks why and is recorded; users are never deleted here (turn
    "Active" off instead, which keeps their ledgers and memberships)."""

    form = UserStandingChangeForm
    add_form = UserStandingAddForm
    recorded_action = OperatorActionCode.USER_STANDING_CHANGE
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
            {"fields": (*USER_STANDING_FIELDS, "reason")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "password1", "password2", "is_staff", "is_superuser", "reason"),
            },
        ),
    )

    def recorded_target(self, obj: User) -> str:
        return f"user {obj.email}"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Only a superuser hands out staff, superuser, groups or permissions: an operator
        # allowed to edit users must not be able to raise anyone (themselves included).
        readonly = [*super().get_readonly_fields(request, obj)]
        if obj is not None and not request.user.is_superuser:
            readonly += ["is_staff", "is_superuser", "groups", "user_permissions"]
        return readonly

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None and not request.user.is_superuser:
            return ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
        return super().get_fieldsets(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting would take their ledger entries' author and memberships

    @admin.display(description="Two-factor", boolean=True)
    def two_factor(self, obj: User) -> bool:
        return obj.has_two_factor()

    @admin.action(description="Reset two-factor (lost phone)")
    def reset_two_factor(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> TemplateResponse | None:
        """Asks for a reason first, then removes the selected users' authenticator apps
        and recovery codes: they log in with their password and may set up again."""
        reason, page = operator_reason_confirm(
            self,
            request,
            queryset,
            title="Reset two-factor",
            intro="These people's authenticator apps and recovery codes are removed: they "
            "log in with their password alone and may set two-factor up again. Say how you "
            "checked who asked.",
        )
        if reason is None:
            return page
        for user in queryset:
            services.user_two_factor_reset(actor=_operator(request), user=user, reason=reason)
        self.message_user(
            request, f"Two-factor reset for {len(queryset)} user(s).", messages.SUCCESS
        )
        return None


class GroupStandingForm(RecordedChangeForm):
    recorded_fields = ("permissions",)

    class Meta:
        model = Group
        fields = ["name", "permissions"]

    def record_on_add(self, name: str, value: Any) -> bool:
        return bool(value)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(RecordedChangeAdmin, BaseGroupAdmin):
    """A group's permissions are every member's: changing them asks why and is recorded;
    a group is not deleted here (empty its permissions instead, recorded)."""

    form = GroupStandingForm
    recorded_action = OperatorActionCode.USER_STANDING_CHANGE

    def recorded_target(self, obj: Group) -> str:
        return f"group {obj.name}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Fields of a workspace whose change alters its standing: asked why, and recorded.
TENANT_STANDING_FIELDS = ("segmind_plan", "segmind_rate_limit")


class TenantAdminForm(forms.ModelForm):
    reason = forms.CharField(
        label="Why",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"class": "vTextField", "size": 60}),
        help_text="Required when the Segmind plan or rate limit changes: kept in the "
        "operators' audit trail.",
    )

    class Meta:
        model = Tenant
        # The rest is read-only or never shown (keys and secrets).
        fields = ["name", "slug", "low_balance_threshold", "segmind_plan", "segmind_rate_limit"]

    def standing_changes(self) -> dict[str, dict[str, Any]]:
        if self.instance.pk is None:
            return {}
        return {
            name: {"before": self.initial.get(name), "after": self.cleaned_data.get(name)}
            for name in TENANT_STANDING_FIELDS
            if name in self.changed_data
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.standing_changes() and not (data.get("reason") or "").strip():
            self.add_error("reason", REASON_REQUIRED)
        return data


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantAdminForm
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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting would destroy its ledger, jobs and memberships: remove its members
        # (recorded) instead.
        return False

    @admin.display(description="Members")
    def member_count(self, obj: Tenant) -> int:
        return obj.memberships.count()

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        # The admin's change view runs in one transaction: the change and its record
        # commit together.
        super().save_model(request, obj, form, change)
        changes = form.standing_changes() if change else {}
        if changes:
            services.operator_action_record(
                actor=_operator(request),
                action=OperatorActionCode.SEGMIND_PLAN_CHANGE,
                tenant=obj,
                target=f"workspace {obj.slug}",
                details=changes,
                reason=form.cleaned_data["reason"],
            )

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
            grant = form_class is CreditGrantForm
            try:
                # The memo is the why: in the ledger for the shop, and in the audit trail.
                with transaction.atomic():
                    if grant:
                        entry = services.credits_grant(
                            tenant=tenant, amount=amount, user=request.user, memo=memo
                        )
                    else:
                        entry = services.credits_adjust(
                            tenant=tenant, amount=amount, user=request.user, memo=memo
                        )
                    services.operator_action_record(
                        actor=request.user,
                        action=(
                            OperatorActionCode.CREDITS_GRANT
                            if grant
                            else OperatorActionCode.CREDITS_ADJUST
                        ),
                        tenant=tenant,
                        target=f"workspace {tenant.slug}",
                        details={
                            "amount": entry.amount,
                            "balance_before": entry.balance_after - entry.amount,
                            "balance_after": entry.balance_after,
                            "credit_entry": entry.pk,
                        },
                        reason=memo,
                    )
            except services.CreditError as e:
                field = "memo" if e.code == "memo_required" else "amount"
                form.add_error(field, e.message)
            except services.OperatorActionError as e:
                form.add_error("memo", e.message)
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


class MembershipAdminForm(forms.ModelForm):
    reason = forms.CharField(
        label="Why",
        max_length=1000,
        widget=forms.TextInput(attrs={"class": "vTextField", "size": 60}),
        help_text="Kept in the operators' audit trail with your name and the time.",
        error_messages={"required": REASON_REQUIRED},
    )

    class Meta:
        model = Membership
        fields = ["user", "tenant", "role"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        membership = self.instance
        # Checked here for a message on the form; the service checks again under lock.
        if (
            membership.pk is not None
            and data.get("role") != Role.OWNER
            and membership.role == Role.OWNER
            and not Membership.objects.for_tenant(membership.tenant)
            .owners()
            .exclude(pk=membership.pk)
            .exists()
        ):
            self.add_error(
                "role", "role: a workspace needs an owner; make someone else owner first."
            )
        return data


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Roles changed, members added and removed by operators: each asks why and is
    recorded in the audit trail."""

    form = MembershipAdminForm
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "tenant__name", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]
    list_select_related = ["user", "tenant"]
    actions = ["remove_members"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A membership is moved by removing it and adding another, each with its why.
        return ["user", "tenant", "created_at"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "Remove selected members…" asks why

    def has_remove_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.delete_membership")

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        reason = form.cleaned_data["reason"]
        if change:
            services.membership_operator_role_set(
                membership_id=obj.pk, role=obj.role, actor=_operator(request), reason=reason
            )
        else:
            created = services.membership_operator_add(
                tenant=obj.tenant,
                user=obj.user,
                role=obj.role,
                actor=_operator(request),
                reason=reason,
            )
            obj.pk = created.pk

    @admin.action(description="Remove selected members…", permissions=["remove"])
    def remove_members(
        self, request: HttpRequest, queryset: QuerySet[Membership]
    ) -> TemplateResponse | None:
        reason, page = operator_reason_confirm(
            self,
            request,
            queryset.select_related("user", "tenant"),
            title="Remove members",
            intro="These people lose access to the workspace at once.",
        )
        if reason is None:
            return page
        removed = 0
        for membership in queryset:
            try:
                services.membership_operator_remove(
                    membership_id=membership.pk, actor=_operator(request), reason=reason
                )
            except services.AccountError as e:
                self.message_user(request, e.message, messages.ERROR)
            else:
                removed += 1
        self.message_user(request, f"{removed} member(s) removed.")
        return None


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
    # Keys are created by the command or the portal, where the secret is shown once;
    # operators revoke them with "Revoke selected keys…", which asks why.
    readonly_fields = [
        "tenant",
        "prefix",
        "digest",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_select_related = ["tenant"]
    actions = ["revoke_keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a revoked key stays, for the record

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_apikey")

    @admin.action(description="Revoke selected keys…", permissions=["revoke"])
    def revoke_keys(
        self, request: HttpRequest, queryset: QuerySet[ApiKey]
    ) -> TemplateResponse | None:
        active = queryset.filter(revoked_at__isnull=True).select_related("tenant")
        reason, page = operator_reason_confirm(
            self,
            request,
            active,
            title="Revoke API keys",
            intro="These keys stop working at once; integrations using them get 401.",
        )
        if reason is None:
            return page
        revoked = sum(
            services.api_key_operator_revoke(key_id=key.pk, actor=_operator(request), reason=reason)
            for key in active
        )
        self.message_user(request, f"{revoked} key(s) revoked.")
        return None


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


class _Echo:
    """A file-like that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: str) -> str:
    # A cell starting like a formula would run in a spreadsheet: quote it as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


CSV_COLUMNS = [
    "at",
    "actor_email",
    "action",
    "action_label",
    "tenant_slug",
    "tenant_name",
    "target",
    "amount",
    "reason",
    "details",
]


def _csv_rows(queryset: QuerySet[OperatorAction]) -> Iterator[list[str]]:
    yield CSV_COLUMNS
    for row in queryset.iterator(chunk_size=500):
        amount = row.details.get("amount") if isinstance(row.details, dict) else None
        yield [
            row.at.isoformat(),
            _csv_cell(row.actor_email),
            row.action,
            row.get_action_display(),
            _csv_cell(row.tenant_slug),
            _csv_cell(row.tenant_name),
            _csv_cell(row.target),
            str(amount) if isinstance(amount, int) else "",
            _csv_cell(row.reason),
            _csv_cell(json.dumps(row.details, sort_keys=True)),
        ]


@admin.register(OperatorAction)
class OperatorActionAdmin(admin.ModelAdmin):
    """The operators' audit trail: read-only for everyone (superusers included), filtered
    and searched here, exported as CSV with the same filters."""

    list_display = ["at", "actor_email", "action", "tenant_name", "target", "reason"]
    # Only the operators and workspaces that appear in the trail are offered.
    list_filter = [
        "action",
        ("tenant", admin.RelatedOnlyFieldListFilter),
        ("actor", admin.RelatedOnlyFieldListFilter),
        "at",
    ]
    search_fields = ["actor_email", "tenant_name", "tenant_slug", "target", "reason"]
    date_hierarchy = "at"
    list_select_related = ["tenant", "actor"]
    change_list_template = "admin/accounts/operatoraction/change_list.html"
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_view),
            name="accounts_operatoraction_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The changelist's rows, with its filters and search, as a streamed CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter in the query string.")
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in _csv_rows(changelist.queryset)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="operator-actions.csv"'
        return response
