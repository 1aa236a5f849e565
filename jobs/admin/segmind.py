"""Operators' view of Segmind's state: pauses on a key (and clearing them), each key's
pacing, and the incidents where Segmind refused a job for want of credit."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.admin import operator_reason_confirm
from accounts.forms import REASON_REQUIRED
from accounts.models import User
from jobs import services
from jobs.models import Job, ProviderIncident, ProviderPause, SegmindKeyBudget


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

    @admin.display(description="State", ordering="cleared_at")
    def is_open(self, obj: ProviderPause) -> SafeString | str:
        # Not a boolean column: its green check would make an open pause (jobs held back)
        # look like good news.
        if obj.is_open:
            return format_html(
                '<span class="pause-open"><img src="{}" alt=""> Open: jobs wait</span>',
                static("admin/img/icon-alert.svg"),
            )
        return "Cleared"

    @admin.display(description="Waiting jobs")
    def waiting_jobs(self, obj: ProviderPause) -> int:
        return Job.objects.waiting_for(obj).count() if obj.is_open else 0

    def _clear(self, request: HttpRequest, pause: ProviderPause, reason: str) -> int | None:
        assert isinstance(request.user, User)  # admin_view lets only staff users in
        return services.provider_pause_operator_clear(
            pause=pause, actor=request.user, reason=reason
        )

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
    def jobs_waiting(self, obj: SegmindKeyBudget) -> int | str:
        view = self._view(obj)
        # Its owner's jobs wait for the owner's current key, counted on that key's row.
        return view.jobs_waiting if view.in_use else "none (key replaced)"


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
