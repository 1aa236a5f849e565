"""The batches list, a batch's page and what it polls, and retrying its failed jobs."""

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs import services
from jobs.models import Asset, Batch, Job
from jobs.selectors import queue as queueing
from jobs.views.progress import _job_state, _seconds_words, finish_text

BATCHES_PAGE_SIZE = 20


@workspace_view
def batch_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    batches = Batch.objects.for_tenant(membership.tenant).with_progress().order_by("-created_at")
    page = Paginator(batches, BATCHES_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "jobs/batch_list.html", {"page": page})


def _batch(membership: Membership, batch_id: UUID) -> Batch:
    return get_object_or_404(
        Batch.objects.for_tenant(membership.tenant).with_progress().select_related("created_by"),
        pk=batch_id,
    )


def _batch_jobs(batch: Batch) -> Any:
    """The batch's jobs, each knowing whether it was retried in the batch, with its results
    (`results`, oldest first): two queries whatever the batch's size."""
    results = Asset.objects.outputs().order_by("created_at", "pk")
    return (
        Job.objects.filter(batch_id=batch.pk)
        .with_retried()
        .select_related("input_asset")
        .prefetch_related(Prefetch("assets", queryset=results, to_attr="results"))
        .order_by("created_at", "pk")
    )


def _job_result(job: Job, slug: str) -> dict[str, str] | None:
    """A finished job's first result, as its row shows it: a thumbnail linking to the image's
    page; None while it has none."""
    results = getattr(job, "results", [])
    if not results:
        return None
    asset = results[0]
    return {
        "thumbnail_url": reverse("asset_thumbnail", args=[slug, asset.pk])
        + ("?alpha=1" if asset.has_transparency else ""),
        "url": reverse("asset_detail", args=[slug, asset.pk]),
        "alt": f"Result of {job.sku or job.source_label or 'this job'}",
        "transparent": "1" if asset.has_transparency else "",
    }


def _batch_state(batch: Batch, jobs: Any, slug: str) -> dict[str, Any]:
    now = timezone.now()
    progress = batch.progress()
    complete = batch.all_jobs_finished
    elapsed = batch.elapsed_seconds(batch.ended_at(jobs) if complete else now)
    finish = None if complete else queueing.batch_finish_estimate(batch=batch, now=now)
    return {
        "id": str(batch.id),
        "name": str(batch),
        "progress": progress,
        "complete": complete,
        "elapsed_seconds": round(elapsed, 1),
        "elapsed_text": f"{'Took' if complete else 'Running for'} {_seconds_words(elapsed)}",
        "results": progress["succeeded"],
        "retryable": sum(1 for job in jobs if job.is_retryable),
        "estimated_finish_at": finish.isoformat() if finish else None,
        "estimated_finish_text": finish_text(finish=finish, now=now) if finish else "",
        "gallery_url": f"{reverse('gallery', args=[slug])}?batch={batch.id}",
        "jobs": [
            {
                **_job_state(job, slug, now=now),
                "retried": job.retried,
                "result": _job_result(job, slug),
                "rerun_url": reverse("job_rerun", args=[slug, job.id]),
            }
            for job in jobs
        ],
    }


@workspace_view
def batch_detail(request: HttpRequest, membership: Membership, batch_id: UUID) -> HttpResponse:
    batch = _batch(membership, batch_id)
    jobs = list(_batch_jobs(batch))
    state = _batch_state(batch, jobs, membership.tenant.slug)
    rows = list(zip(jobs, state["jobs"], strict=True))
    return render(request, "jobs/batch_detail.html", {"batch": batch, "rows": rows, "state": state})


@workspace_view
def batch_status(request: HttpRequest, membership: Membership, batch_id: UUID) -> JsonResponse:
    """What the batch page polls: its progress and each job's status, in a fixed number
    of queries whatever the batch's size."""
    batch = _batch(membership, batch_id)
    state = _batch_state(batch, list(_batch_jobs(batch)), membership.tenant.slug)
    return JsonResponse(state, headers={"Cache-Control": "no-store"})


@require_POST
@workspace_view
def batch_retry_failed(
    request: HttpRequest, membership: Membership, batch_id: UUID
) -> HttpResponse:
    batch = _batch(membership, batch_id)
    try:
        reruns = services.batch_retry_failed(batch=batch, user=membership.user)
    except services.JobError as e:
        messages.error(request, e.message)
    else:
        if reruns:
            n = len(reruns)
            messages.success(request, f"Retrying {n} failed job{'s' if n != 1 else ''}.")
        else:
            messages.info(request, "No failed job is left to retry.")
    return redirect("batch_detail", workspace=membership.tenant.slug, batch_id=batch.id)
