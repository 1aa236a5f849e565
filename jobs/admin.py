"""Operators' view of jobs and the gallery's assets."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from jobs import catalog, services
from jobs.models import Asset, Job, JobPrice, Preset


class AssetInline(admin.TabularInline):
    model = Asset
    extra = 0
    fields = ("kind", "file", "width", "height", "format", "byte_size", "sha256", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "model",
        "engine",
        "status",
        "error_code",
        "created_by",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "model", "engine", "tenant", "created_at"]
    search_fields = ["id", "tenant__name", "tenant__slug", "created_by__email", "error_code"]
    list_select_related = ["tenant", "created_by"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "tenant",
        "created_by",
        "input_asset",
        "backdrop",
        "attempts",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
    ]
    inlines = [AssetInline]
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel selected queued jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        canceled = sum(services.job_cancel(job=job) for job in queryset)
        self.message_user(request, f"{canceled} job(s) canceled.")


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["id", "preview", "tenant", "kind", "job", "width", "height", "format"]
    list_filter = ["kind", "format", "tenant", "created_at"]
    search_fields = ["id", "sha256", "tenant__name", "job__id", "original_name"]
    list_select_related = ["tenant", "job"]
    readonly_fields = [
        "id",
        "tenant",
        "job",
        "kind",
        "file",
        "width",
        "height",
        "format",
        "byte_size",
        "sha256",
        "created_at",
    ]

    @admin.display(description="Preview")
    def preview(self, obj: Asset) -> str:
        return format_html(
            '<img src="{}" style="height:48px" alt="">',
            reverse("staff_asset_file", args=[obj.pk]),
        )


class PresetAdminForm(forms.ModelForm):
    class Meta:
        model = Preset
        fields = ["tenant", "model", "slug", "name", "description", "params", "backdrop"]

    def clean(self) -> dict[str, Any]:
        # Operators go through the same validator as the portal and the API.
        data = super().clean() or {}
        spec = catalog.get_model(data.get("model") or "")
        if spec is None:
            self.add_error("model", "Unknown model.")
            return data
        try:
            data["params"] = services.preset_params_validate(
                spec=spec, params=data.get("params") or {}
            )
        except services.PresetError as e:
            for field, rule in e.errors.items():
                self.add_error("params", f"{field}: {rule}")
        return data


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    form = PresetAdminForm
    list_display = ["name", "model", "tenant", "slug", "backdrop", "updated_at"]
    list_filter = ["model", ("tenant", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["name", "slug", "description", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = ["created_by", "created_at", "updated_at"]


@admin.register(JobPrice)
class JobPriceAdmin(admin.ModelAdmin):
    """What each model costs in credits, per engine; a model with no row is free."""

    list_display = ["model", "engine", "credits", "credits_per_megapixel", "updated_at"]
    list_editable = ["credits", "credits_per_megapixel"]
    list_filter = ["engine"]
    search_fields = ["model"]
