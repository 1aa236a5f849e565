"""Portal pages for jobs: dashboard, new job, job detail, gallery and asset files."""

from functools import lru_cache
from uuid import UUID

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs import catalog, samples, services
from jobs.forms import NewJobForm
from jobs.models import Asset, AssetKind, Job, JobStatus


@workspace_view
def dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    jobs = Job.objects.for_tenant(membership.tenant)
    counts = {
        status: jobs.filter(status=status).count()
        for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED)
    }
    recent = jobs.select_related("created_by").order_by("-created_at")[:10]
    return render(request, "jobs/dashboard.html", {"recent_jobs": recent, "counts": counts})


@workspace_view
def job_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = NewJobForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_submit(
                tenant=membership.tenant,
                user=membership.user,
                model=form.cleaned_data["model"],
                image_url=form.cleaned_data["image_url"] or "",
                upload=form.cleaned_data["image"],
            )
        except services.JobError as e:
            field = e.field if e.field in form.fields else None
            form.add_error(field, e.message)
        else:
            messages.success(request, "Job submitted: it will appear in the gallery when done.")
            return redirect("job_detail", workspace=membership.tenant.slug, job_id=job.id)
    engine = catalog.current_engine()
    models = [(m, m.runs_on(engine)) for m in catalog.all_models()]
    sample_urls = [
        request.build_absolute_uri(reverse("sample_image", args=[name]))
        for name in samples.SAMPLE_NAMES[:4]
    ]
    return render(
        request,
        "jobs/job_new.html",
        {"form": form, "models": models, "engine": engine, "sample_urls": sample_urls},
    )


def _job(membership: Membership, job_id: UUID) -> Job:
    return get_object_or_404(
        Job.objects.for_tenant(membership.tenant).select_related("input_asset", "created_by"),
        pk=job_id,
    )


@workspace_view
def job_detail(request: HttpRequest, membership: Membership, job_id: UUID) -> HttpResponse:
    job = _job(membership, job_id)
    outputs = job.assets.filter(kind=AssetKind.OUTPUT)
    return render(request, "jobs/job_detail.html", {"job": job, "outputs": outputs})


@workspace_view
def job_status(request: HttpRequest, membership: Membership, job_id: UUID) -> JsonResponse:
    """What the job page polls to know when to refresh."""
    job = _job(membership, job_id)
    return JsonResponse(
        {"id": str(job.id), "status": job.status, "terminal": job.is_terminal},
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


@workspace_view
def gallery(request: HttpRequest, membership: Membership) -> HttpResponse:
    assets = (
        Asset.objects.for_tenant(membership.tenant)
        .outputs()
        .select_related("job")
        .order_by("-created_at")[:200]
    )
    return render(request, "jobs/gallery.html", {"assets": assets})


@workspace_view
def asset_file(request: HttpRequest, membership: Membership, asset_id: UUID) -> FileResponse:
    """An asset's bytes, served only to members of its workspace."""
    asset = get_object_or_404(Asset.objects.for_tenant(membership.tenant), pk=asset_id)
    download = request.GET.get("download") == "1"
    filename = asset.original_name or f"{asset.id}.{asset.extension}"
    if not filename.lower().endswith("." + asset.extension):
        filename = f"{filename.rsplit('.', 1)[0]}.{asset.extension}"
    response = FileResponse(
        asset.file.open("rb"),
        content_type=asset.mime_type,
        as_attachment=download,
        filename=filename,
    )
    response["Cache-Control"] = "private, max-age=86400"
    return response


@lru_cache(maxsize=16)
def _sample_jpeg(name: str) -> bytes:
    return samples.sample_jpeg_bytes(name)


def sample_image(request: HttpRequest, name: str) -> HttpResponse:
    """Demo product photos drawn by the project, to try the studio without one at hand."""
    if name not in samples.SAMPLE_NAMES:
        raise Http404("No such sample.")
    return HttpResponse(
        _sample_jpeg(name),
        content_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@staff_member_required
def staff_asset_file(request: HttpRequest, asset_id: UUID) -> FileResponse:
    """Any asset, for operators in the admin."""
    asset = get_object_or_404(Asset, pk=asset_id)
    return FileResponse(asset.file.open("rb"), content_type=asset.mime_type)
