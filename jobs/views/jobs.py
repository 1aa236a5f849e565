"""A job's page and what it polls, and its cancel and re-run buttons."""

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs import catalog, services
from jobs.engines.local import scenes
from jobs.models import AssetKind, JobStatus
from jobs.views.common import _job
from jobs.views.progress import _job_state, _queue_state


def _outputs_json(slug: str, outputs: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": str(asset.id),
            "url": reverse("asset_file", args=[slug, asset.id]),
            "download_url": reverse("asset_file", args=[slug, asset.id]) + "?download=1",
            # Filled once the gallery serves thumbnails; pages fall back to `url`.
            "thumb_url": None,
            "width": asset.width,
            "height": asset.height,
            "format": asset.format,
            "transparent": asset.has_transparency,
        }
        for asset in outputs
    ]


@workspace_view
def job_detail(request: HttpRequest, membership: Membership, job_id: UUID) -> HttpResponse:
    job = _job(membership, job_id)
    outputs = job.assets.filter(kind=AssetKind.OUTPUT)
    spec = job.spec
    size = spec.output_size(job.params) if spec else None
    backdrop = scenes.BACKDROPS.get(job.backdrop)
    # An operator may have given a charged job's credits back.
    refunded = job.refund_entry() is not None
    return render(
        request,
        "jobs/job_detail.html",
        {
            "job": job,
            "state": _job_state(job, membership.tenant.slug),
            "queue": _queue_state(job),
            "outputs": outputs,
            "output_size": size,
            "backdrop": backdrop,
            "refunded": refunded,
            "params_shown": params_shown(job.params),
            # A batch's job is under Batches in the navigation, as its batch is.
            **({"nav_section": "batch_list", "nav_current": "true"} if job.batch_id else {}),
        },
    )


def params_shown(params: dict[str, Any]) -> list[dict[str, str]]:
    """A job's parameters as the job page lists them: each in a shop owner's words with
    the API name beside it, switches as On or Off."""
    shown = []
    for name, value in params.items():
        text = ("On" if value else "Off") if isinstance(value, bool) else str(value)
        shown.append({"label": catalog.param_label(name), "name": name, "value": text})
    return shown


@workspace_view
def job_status(request: HttpRequest, membership: Membership, job_id: UUID) -> JsonResponse:
    """What the job page polls to update itself: the status and its label, the time it
    has taken against the usual, why it failed or waits, and its images once done."""
    job = _job(membership, job_id)
    slug = membership.tenant.slug
    outputs = job.assets.filter(kind=AssetKind.OUTPUT) if job.status == JobStatus.SUCCEEDED else []
    return JsonResponse(
        {
            **_job_state(job, slug),
            "waiting_message": job.waiting_message,
            "notice": job.notice,
            "queue": _queue_state(job),
            "price_note": job.price_note,
            "outputs": _outputs_json(slug, outputs),
        },
        headers={"Cache-Control": "no-store"},
    )


@require_POST
@workspace_view
def job_cancel(request: HttpRequest, membership: Membership, job_id: UUID) -> HttpResponse:
    job = _job(membership, job_id)
    if services.job_cancel(job=job):
        messages.success(request, "Job canceled.")
    else:
        messages.error(request, "This job has already started and can't be canceled.")
    return redirect("job_detail", workspace=membership.tenant.slug, job_id=job.id)


@require_POST
@workspace_view
def job_rerun(request: HttpRequest, membership: Membership, job_id: UUID) -> HttpResponse:
    """The same job again: its stored photo, preset and parameters, and its seed unless
    that was drawn (then another is drawn)."""
    job = _job(membership, job_id)
    try:
        rerun = services.job_rerun_or_retry(job=job, user=membership.user)
    except services.JobError as e:
        messages.error(request, e.message)
        return redirect("job_detail", workspace=membership.tenant.slug, job_id=job.id)
    messages.success(request, "Submitted again with the same photo and settings.")
    return redirect("job_detail", workspace=membership.tenant.slug, job_id=rerun.id)
