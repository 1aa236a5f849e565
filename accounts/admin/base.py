"""What every accounts admin shares: the operator's reason page, changes recorded with
why (`RecordedChangeForm`, `RecordedChangeAdmin`), and read-only records."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
)
from django.template.response import TemplateResponse

from accounts import services
from accounts.forms import (
    REASON_REQUIRED,
    OperatorReasonForm,
)
from accounts.models import (
    Tenant,
    User,
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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the services (Stripe's webhook): shown, never edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
