"""Workspaces (their standing, credits granted or adjusted), members, invitations and API
keys."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.admin.base import _operator, operator_reason_confirm
from accounts.forms import (
    REASON_REQUIRED,
    CreditAdjustForm,
    CreditGrantForm,
)
from accounts.models import (
    ApiKey,
    Invitation,
    Membership,
    OperatorActionCode,
    Role,
    Tenant,
    User,
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
                operator_change = (
                    services.credits_operator_grant if grant else services.credits_operator_adjust
                )
                entry = operator_change(tenant=tenant, amount=amount, actor=request.user, memo=memo)
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
            and membership.is_last_owner
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
