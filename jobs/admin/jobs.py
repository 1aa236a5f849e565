"""Operators' view of jobs, batches, the gallery's assets and presets; a succeeded job's
refund."""

from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts import services as account_services
from accounts.models import User
from jobs import catalog, services
from jobs.models import Asset, Batch, Job, JobQuerySet, JobStatus, Preset


class AssetInline(admin.TabularInline):
    model = Asset
    extra = 0
    fields = ("kind", "file", "width", "height", "format", "byte_size", "sha256", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


class RefundForm(forms.Form):
    memo = forms.CharField(
        max_length=300,
        widget=forms.TextInput(attrs={"class": "vTextField", "size": 60}),
        help_text="Why: shown in the ledger to the shop and to operators.",
        error_messages={"required": "memo: say why the job is refunded."},
    )


# The changelist counts the jobs resubmitted after a crash over this many days.
CRASH_RESUBMITS_DAYS = 7


class ResubmittedAfterCrashFilter(admin.SimpleListFilter):
    """Jobs whose Segmind submission a crash cut off: Segmind may have billed it as well
    as the submission that was kept (see the README's "What a crash costs")."""

    title = "resubmitted after a crash"
    parameter_name = "resubmitted_after_crash"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("recent", f"In the last {CRASH_RESUBMITS_DAYS} days"),
            ("yes", "Yes"),
            ("no", "No"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        if self.value() == "recent":
            since = timezone.now() - timedelta(days=CRASH_RESUBMITS_DAYS)
            return cast(JobQuerySet, queryset).resubmitted_after_crash(since=since)
        if self.value() == "yes":
            return queryset.filter(crash_resubmits__gt=0)
        if self.value() == "no":
            return queryset.filter(crash_resubmits=0)
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "model",
        "engine",
        "status",
        "error_code",
        "crash_resubmitted",
        "created_by",
        "created_at",
        "completed_at",
    ]
    list_filter = [
        "status",
        ResubmittedAfterCrashFilter,
        "model",
        "engine",
        "tenant",
        "created_at",
    ]
    search_fields = ["id", "tenant__name", "tenant__slug", "created_by__email", "error_code"]
    list_select_related = ["tenant", "created_by"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "tenant",
        "created_by",
        "credits",
        # What was held is what the ledger settles: an edit here would not move it.
        "price",
        "own_key",
        "waiting_since",
        "input_asset",
        "batch",
        "seed_drawn",
        "backdrop",
        "attempts",
        "crash_resubmits",
        "resubmitted_after_crash_at",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
    ]
    inlines = [AssetInline]
    actions = ["cancel_jobs"]

    @admin.display(description="Resubmitted after a crash", ordering="-crash_resubmits")
    def crash_resubmitted(self, obj: Job) -> str:
        if not obj.crash_resubmits:
            return "-"
        when = timezone.localtime(obj.resubmitted_after_crash_at or obj.created_at)
        times = "once" if obj.crash_resubmits == 1 else f"{obj.crash_resubmits} times"
        return f"{times}, last {when:%Y-%m-%d %H:%M}"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        since = timezone.now() - timedelta(days=CRASH_RESUBMITS_DAYS)
        context = {
            "crash_resubmits_recent": Job.objects.resubmitted_after_crash(since=since).count(),
            "crash_resubmits_days": CRASH_RESUBMITS_DAYS,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    @admin.display(description="Credits")
    def credits(self, obj: Job) -> str:
        note = obj.price_note
        refunded = obj.refund_entry()
        if refunded is not None:
            return f"{note}; refunded {refunded.created_at:%Y-%m-%d %H:%M}: {refunded.memo}"
        if obj.status == JobStatus.SUCCEEDED and obj.price:
            url = reverse("admin:jobs_job_refund", args=[obj.pk])
            return format_html('{} · <a href="{}">Refund…</a>', note, url)
        return note

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="jobs_job_refund",
            )
        ]
        return own + super().get_urls()

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Give a succeeded job's credits back, with a memo (a result the shop could not use)."""
        job = get_object_or_404(Job.objects.select_related("tenant"), pk=object_id)
        if not self.has_change_permission(request, job):
            raise PermissionDenied
        assert isinstance(request.user, User)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            memo = form.cleaned_data["memo"]
            try:
                entry = services.job_operator_refund(job=job, actor=request.user, memo=memo)
            except account_services.CreditError as e:
                form.add_error("memo" if e.code == "memo_required" else None, e.message)
            else:
                self.log_change(request, job, f"Refunded {entry.amount} credits: {entry.memo}")
                self.message_user(
                    request,
                    f"Refunded {entry.amount} credits to {job.tenant.name}, "
                    f"which now has {entry.balance_after}.",
                    messages.SUCCESS,
                )
                return redirect("admin:jobs_job_change", job.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund job {job.pk}",
            "opts": self.model._meta,
            "original": job,
            "form": form,
            "action_label": "Refund",
            "submit_label": f"Refund {job.price} credit{'s' if job.price != 1 else ''}",
            "change_url": reverse("admin:jobs_job_change", args=[job.pk]),
        }
        return TemplateResponse(request, "admin/jobs/job/refund_form.html", context)

    @admin.action(description="Cancel selected queued or waiting jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        canceled = sum(services.job_cancel(job=job) for job in queryset)
        self.message_user(request, f"{canceled} job(s) canceled.")


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "tenant",
        "progress_label",
        "created_by",
        "created_at",
        "completed_at",
    ]
    list_filter = ["tenant", "created_at", "completed_at"]
    search_fields = ["id", "name", "tenant__name", "tenant__slug", "created_by__email"]
    list_select_related = ["tenant", "created_by"]
    readonly_fields = [
        "id",
        "tenant",
        "name",
        "created_by",
        "created_at",
        "completed_at",
        "progress_label",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Batch]:
        return Batch.objects.with_progress().select_related("tenant", "created_by")

    @admin.display(description="Progress")
    def progress_label(self, obj: Batch) -> str:
        progress = obj.progress()
        return (
            f"{progress['done']} of {progress['total']} done ({progress['percent']} %): "
            f"{progress['succeeded']} succeeded, {progress['failed']} failed, "
            f"{progress['canceled']} canceled"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Batches are submitted through the API, which checks and holds everything.
        return False


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
