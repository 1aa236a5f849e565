"""Users (their standing: flags, groups, permissions; two factors reset) and groups."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
)
from django.template.response import TemplateResponse

from accounts import services
from accounts.admin.base import (
    RecordedChangeAdmin,
    RecordedChangeForm,
    _operator,
    operator_reason_confirm,
)
from accounts.models import (
    OperatorActionCode,
    User,
)

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
