"""The workspace's dashboard: counts by status, recent jobs and batches."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs.models import Batch, Job

DASHBOARD_BATCHES = 5


@workspace_view
def dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    jobs = Job.objects.for_tenant(membership.tenant)
    counts = jobs.status_counts()
    recent = jobs.select_related("created_by").order_by("-created_at")[:10]
    batches = Batch.objects.for_tenant(membership.tenant).with_progress()[:DASHBOARD_BATCHES]
    return render(
        request,
        "jobs/dashboard.html",
        {"recent_jobs": recent, "counts": counts, "recent_batches": batches},
    )
