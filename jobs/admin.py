"""Operators' view of jobs and the gallery's assets."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts import services as account_services
from accounts.admin import RecordedChangeAdmin, RecordedChangeForm, operator_reason_confirm
from accounts.forms import REASON_REQUIRED
from accounts.models import CreditKind, OperatorActionCode, User
from jobs import catalog, services
from jobs.models import (
    Asset,
    Batch,
    Job,
    JobPrice,
    JobStatus,
    Preset,
    ProviderIncident,
    ProviderPause,
    SegmindKeyBudget,
)


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
            return queryset.filter(crash_resubmits__gt=0, resubmitted_after_crash_at__gte=since)
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
        refunded = obj.credit_entries.filter(kind=CreditKind.REFUND).first()
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
                # The memo is the why: in the ledger and in the operators' audit trail.
                with transaction.atomic():
                    entry = account_services.credits_refund(job=job, user=request.user, memo=memo)
                    account_services.operator_action_record(
                        actor=request.user,
                        action=OperatorActionCode.CREDITS_REFUND,
                        tenant=job.tenant,
                        target=f"job {job.pk}",
                        details={
                            "amount": entry.amount,
                            "balance_before": entry.balance_after - entry.amount,
                            "balance_after": entry.balance_after,
                            "credit_entry": entry.pk,
                        },
                        reason=memo,
                    )
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


class JobPriceAdminForm(RecordedChangeForm):
    recorded_fields = ("model", "engine", "credits", "credits_per_megapixel")

    class Meta:
        model = JobPrice
        fields = ["model", "engine", "credits", "credits_per_megapixel"]


@admin.register(JobPrice)
class JobPriceAdmin(RecordedChangeAdmin):
    """What each model costs in credits, per engine; a model with no row is free. Every
    add or change asks why and is recorded, so prices are edited on each row's form (not
    in the list) and never deleted (set them to 0 instead)."""

    form = JobPriceAdminForm
    recorded_action = OperatorActionCode.PRICE_CHANGE
    list_display = ["model", "engine", "credits", "credits_per_megapixel", "updated_at"]
    list_filter = ["engine"]
    search_fields = ["model"]

    def recorded_target(self, obj: JobPrice) -> str:
        return f"price of {obj.model} on {obj.engine}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # no row means free: a deletion would change the price unrecorded


@admin.register(ProviderPause)
class ProviderPauseAdmin(admin.ModelAdmin):
    """Segmind's 406 circuit breaker, one row per pause on a key. Read-only: operators
    only clear a pause (the action, or the button on its page), which resumes its jobs."""

    list_display = [
        "owner",
        "is_open",
        "opened_at",
        "paused_until",
        "occurrences",
        "waiting_jobs",
        "probe_job",
        "cleared_at",
        "cleared_by",
        "cleared_reason",
    ]
    list_filter = [("cleared_at", admin.EmptyFieldListFilter), "tenant", "opened_at"]
    search_fields = ["key_id", "tenant__name", "tenant__slug", "cleared_reason"]
    list_select_related = ["tenant", "cleared_by"]
    date_hierarchy = "opened_at"
    actions = ["clear_and_resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_clear_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("jobs.change_providerpause")

    @admin.display(description="Open", boolean=True)
    def is_open(self, obj: ProviderPause) -> bool:
        return obj.is_open

    @admin.display(description="Waiting jobs")
    def waiting_jobs(self, obj: ProviderPause) -> int:
        return Job.objects.waiting_for(obj).count() if obj.is_open else 0

    def _clear(self, request: HttpRequest, pause: ProviderPause, reason: str) -> int | None:
        assert isinstance(request.user, User)  # admin_view lets only staff users in
        with transaction.atomic():
            resumed = services.provider_pause_clear(
                pause_id=pause.pk, by=request.user, reason=reason
            )
            if resumed is not None:
                account_services.operator_action_record(
                    actor=request.user,
                    action=OperatorActionCode.PAUSE_CLEAR,
                    tenant=pause.tenant,
                    target=f"Segmind pause {pause.pk} on {pause.owner}",
                    details={"resumed_jobs": resumed, "occurrences": pause.occurrences},
                    reason=reason,
                )
        return resumed

    @admin.action(description="Clear pause and resume…", permissions=["clear"])
    def clear_and_resume(
        self, request: HttpRequest, queryset: QuerySet[ProviderPause]
    ) -> TemplateResponse | None:
        open_pauses = queryset.filter(cleared_at__isnull=True).select_related("tenant")
        reason, page = operator_reason_confirm(
            self,
            request,
            open_pauses,
            title="Clear pause and resume",
            intro="Clearing a pause sends the jobs waiting for it back to the queue at once.",
        )
        if reason is None:
            return page
        cleared = resumed = 0
        for pause in open_pauses:
            count = self._clear(request, pause, reason)
            if count is not None:
                cleared += 1
                resumed += count
        self.message_user(request, f"{cleared} pause(s) cleared; {resumed} waiting job(s) resumed.")
        return None

    def get_urls(self) -> list[URLPattern]:
        clear = path(
            "<int:pause_id>/clear/",
            self.admin_site.admin_view(self.clear_view),
            name="jobs_providerpause_clear",
        )
        return [clear, *super().get_urls()]

    def clear_view(self, request: HttpRequest, pause_id: int) -> HttpResponse:
        """Confirm, with a reason kept on the pause, then clear it and resume its jobs."""
        if not self.has_clear_permission(request):
            raise PermissionDenied
        pause = get_object_or_404(ProviderPause.objects.select_related("tenant"), pk=pause_id)
        error = ""
        reason = request.POST.get("reason", "").strip()
        if request.method == "POST" and not reason:
            error = REASON_REQUIRED
        elif request.method == "POST":
            resumed = self._clear(request, pause, reason)
            if resumed is None:
                messages.warning(request, "This pause was already cleared.")
            else:
                messages.success(request, f"Pause cleared; {resumed} waiting job(s) resumed.")
            return redirect("admin:jobs_providerpause_changelist")
        context = {
            "error": error,
            "reason": reason,
            **self.admin_site.each_context(request),
            "title": "Clear pause and resume",
            "pause": pause,
            "waiting": Job.objects.waiting_for(pause).count(),
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/jobs/providerpause/clear.html", context)


class KeyOwnerFilter(admin.SimpleListFilter):
    title = "whose key"
    parameter_name = "owner"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("platform", "The platform's key"), ("own", "Workspaces' own keys")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "platform":
            return queryset.filter(tenant__isnull=True)
        if self.value() == "own":
            return queryset.filter(tenant__isnull=False)
        return queryset


@admin.register(SegmindKeyBudget)
class SegmindKeyBudgetAdmin(admin.ModelAdmin):
    """Each Segmind key's pacing, as the dispatcher last saved it (every few seconds while
    it sends): its budget, its use in the current window, its 429s in the last hour and
    the jobs waiting for it. Read-only: the platform's limit is SEGMIND_RATE_LIMIT, a
    workspace's own key's is its plan, set on its settings page."""

    list_display = [
        "owner",
        "budget",
        "allowed_now",
        "used_in_window",
        "throttled_last_hour",
        "gate",
        "jobs_waiting",
        "updated_at",
    ]
    list_filter = [KeyOwnerFilter, "tenant"]
    search_fields = ["key_id", "tenant__name", "tenant__slug"]
    list_select_related = ["tenant"]
    readonly_fields = (
        "key_id",
        "tenant",
        "budget",
        "allowed_now",
        "used_in_window",
        "throttled_last_hour",
        "gate",
        "jobs_waiting",
        "updated_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _view(self, obj: SegmindKeyBudget) -> services.BudgetView:
        # Worked out once per row: the list shows several columns of it.
        view: services.BudgetView | None = getattr(obj, "_budget_view", None)
        if view is None:
            view = services.segmind_budget_view(budget=obj)
            obj._budget_view = view  # type: ignore[attr-defined]
        return view

    @admin.display(description="Budget")
    def budget(self, obj: SegmindKeyBudget) -> str:
        if obj.limit == 0:
            return "unlimited"
        return f"{obj.limit} per {obj.window_seconds:g} s"

    @admin.display(description="Allowed now (after 429s)")
    def allowed_now(self, obj: SegmindKeyBudget) -> str:
        view = self._view(obj)
        return "unlimited" if obj.limit == 0 else str(view.adaptive_limit)

    @admin.display(description="Used in the window")
    def used_in_window(self, obj: SegmindKeyBudget) -> int:
        return self._view(obj).used

    @admin.display(description="429s in the last hour")
    def throttled_last_hour(self, obj: SegmindKeyBudget) -> int:
        return self._view(obj).throttled_last_hour

    @admin.display(description="Gate")
    def gate(self, obj: SegmindKeyBudget) -> str:
        closed = self._view(obj).closed_until
        return f"closed until {closed:%H:%M:%S} UTC" if closed else "open"

    @admin.display(description="Jobs waiting")
    def jobs_waiting(self, obj: SegmindKeyBudget) -> int:
        return self._view(obj).jobs_waiting


@admin.register(ProviderIncident)
class ProviderIncidentAdmin(admin.ModelAdmin):
    """Each time Segmind refused a job for want of credit (and each job that gave up
    waiting): which workspace, which job, whose key. Read-only."""

    list_display = ["created_at", "tenant", "job_link", "whose_key", "code", "pause"]
    list_filter = ["own_key", "code", "tenant", "created_at"]
    search_fields = ["key_id", "tenant__name", "tenant__slug", "job__id", "message"]
    list_select_related = ["tenant", "pause", "pause__tenant"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Job", ordering="job")
    def job_link(self, obj: ProviderIncident) -> str:
        if obj.job_id is None:
            return "-"
        url = reverse("admin:jobs_job_change", args=[obj.job_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.job_id)[:8])

    @admin.display(description="Key", ordering="own_key")
    def whose_key(self, obj: ProviderIncident) -> str:
        return "the workspace's own" if obj.own_key else "the platform's"
