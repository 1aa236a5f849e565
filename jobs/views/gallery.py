"""The gallery (results and the jobs that made none, filtered, a page at a time) and what
is done to its images: an image's page, favourites, delete, and ZIP downloads."""

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs import services
from jobs.forms import GALLERY_STATUSES, GalleryFilterForm
from jobs.models import Asset, AssetKind, Batch, Job, JobStatus
from jobs.views.common import _asset

# Failed jobs stay listed in the gallery this long (then only on the dashboard).
GALLERY_FAILED_DAYS = 7


GALLERY_PAGE_SIZE = 48


# Jobs that made no image, listed above the results on the gallery's first page.
GALLERY_UNMADE_LIMIT = 20


def _gallery_job_filters(data: Mapping[str, Any]) -> dict[str, Any]:
    """The form's valid filters as `job_filter` arguments; dates in the shop's time zone,
    the end date included."""
    zone = timezone.get_current_timezone()
    start, end = data.get("date_from"), data.get("date_to")
    return {
        "model": data.get("model") or "",
        "preset_id": data.get("preset"),
        "batch_id": data.get("batch"),
        "sku": (data.get("sku") or "").strip(),
        "created_from": datetime.combine(start, time.min, zone) if start else None,
        "created_before": (
            datetime.combine(end + timedelta(days=1), time.min, zone) if end else None
        ),
    }


def _page_url(request: HttpRequest, page: int) -> str:
    query = request.GET.copy()
    query["page"] = str(page)
    return f"?{query.urlencode()}"


@workspace_view
def gallery(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's results as thumbnails, filtered by GET parameters (bookmarkable),
    a page at a time with the same number of queries whatever the workspace's size: one
    page of rows plus one to know whether another page follows, never a count."""
    tenant = membership.tenant
    form = GalleryFilterForm(request.GET or None, presets=services.preset_choices(tenant=tenant))
    # Invalid fields are named on the page; the valid ones still filter.
    data: dict[str, Any] = {}
    if form.is_bound:
        form.is_valid()
        data = form.cleaned_data
    batch = None
    if data.get("batch"):
        batch = Batch.objects.for_tenant(tenant).filter(pk=data["batch"]).first()
        if batch is None:
            form.add_error("batch", "Batch: there is no such batch in this workspace.")
            data = form.cleaned_data
    filters = _gallery_job_filters(data)
    q = data.get("q") or ""
    status = data.get("status") or ""
    favourites = bool(data.get("favourites"))
    page = data.get("page") or 1
    offset = (page - 1) * GALLERY_PAGE_SIZE
    window = slice(offset, offset + GALLERY_PAGE_SIZE + 1)

    assets: list[Asset] = []
    jobs: list[Job] = []
    more = False
    if status in ("", JobStatus.SUCCEEDED):
        assets = list(
            Asset.objects.for_tenant(tenant)
            .outputs()
            .filtered(favourite=favourites, **filters)
            .search(q)
            .select_related("job", "job__preset", "job__batch", "job__input_asset")
            .order_by("-created_at", "-id")[window]
        )
        more = len(assets) > GALLERY_PAGE_SIZE
        assets = assets[:GALLERY_PAGE_SIZE]
    unmade = Job.objects.for_tenant(tenant).filtered(**filters).search(q)
    unmade = unmade.select_related("tenant", "input_asset", "preset").order_by("-created_at", "-id")
    if status == "" and page == 1 and not favourites:
        # Jobs that made no image (yet): the gallery says why, e.g. that Segmind is out of
        # credit and nothing was charged.
        recent = timezone.now() - timedelta(days=GALLERY_FAILED_DAYS)
        jobs = list(
            unmade.filter(
                Q(status=JobStatus.WAITING_FOR_PROVIDER)
                | Q(status=JobStatus.FAILED, completed_at__gte=recent)
            )[:GALLERY_UNMADE_LIMIT]
        )
    elif status not in ("", JobStatus.SUCCEEDED) and not favourites:
        # Jobs have no favourites: "favourites only" lists none of them.
        jobs = list(unmade.filter(status=status)[window])
        more = len(jobs) > GALLERY_PAGE_SIZE
        jobs = jobs[:GALLERY_PAGE_SIZE]
    return render(
        request,
        "jobs/gallery.html",
        {
            "form": form,
            "assets": assets,
            "unmade": jobs,
            "listing_jobs": status not in ("", JobStatus.SUCCEEDED),
            "status_label": dict(GALLERY_STATUSES).get(status, ""),
            "batch": batch,
            "filtering": form.is_bound and form.filtering,
            "page": page,
            "next_url": _page_url(request, page + 1) if more else "",
            "previous_url": _page_url(request, page - 1) if page > 1 else "",
            "zip_max": settings.GALLERY_ZIP_MAX_ASSETS,
        },
    )


@workspace_view
def asset_detail(request: HttpRequest, membership: Membership, asset_id: UUID) -> HttpResponse:
    """One image: before/after with the job's photo, download, re-run, favourite, delete."""
    asset = get_object_or_404(
        Asset.objects.for_tenant(membership.tenant).select_related(
            "job", "job__input_asset", "job__preset", "job__batch"
        ),
        pk=asset_id,
    )
    job = asset.job
    before = job.input_asset if job is not None and asset.kind == AssetKind.OUTPUT else None
    return render(
        request,
        "jobs/asset_detail.html",
        {"asset": asset, "job": job, "before": before, "next": request.get_full_path()},
    )


def _next_url(request: HttpRequest, fallback: str) -> str:
    """Where a form asked to go back to (the gallery with its filters), if it is ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@require_POST
@workspace_view
def asset_favourite(request: HttpRequest, membership: Membership, asset_id: UUID) -> HttpResponse:
    """Mark (`favourite=1`) or unmark an image; JSON for the gallery's script, else back."""
    asset = _asset(membership, asset_id)
    favourite = request.POST.get("favourite") == "1"
    services.asset_favourite_set(asset=asset, favourite=favourite)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"id": str(asset.pk), "favourite": favourite})
    messages.success(request, "Added to favourites." if favourite else "Removed from favourites.")
    fallback = reverse("asset_detail", args=[membership.tenant.slug, asset.pk])
    return redirect(_next_url(request, fallback))


def _delete_confirm(
    request: HttpRequest, membership: Membership, assets: list[Asset]
) -> HttpResponse:
    # Without JavaScript (no confirm() dialog) the shop confirms on this page.
    return render(
        request,
        "jobs/assets_delete_confirm.html",
        {
            "assets": assets,
            "next": _next_url(request, reverse("gallery", args=[membership.tenant.slug])),
        },
    )


@require_POST
@workspace_view
def asset_delete(request: HttpRequest, membership: Membership, asset_id: UUID) -> HttpResponse:
    """Delete one result once confirmed (`confirm=1`); without it, the confirmation page."""
    asset = _asset(membership, asset_id)
    if request.POST.get("confirm") != "1":
        return _delete_confirm(request, membership, [asset])
    if services.asset_delete(tenant=membership.tenant, asset=asset):
        messages.success(request, "Image deleted.")
    else:
        messages.error(request, "Only results can be deleted: a job's photo stays with its job.")
    gallery_url = reverse("gallery", args=[membership.tenant.slug])
    target = _next_url(request, gallery_url)
    # Going back to the deleted image's own page would be a 404.
    return redirect(gallery_url if str(asset.pk) in target else target)


def _selected_assets(request: HttpRequest, membership: Membership) -> list[Asset] | None:
    """The results the form selected (`asset` ids) in this workspace, newest first; ids of
    another workspace or not ids at all are left out. None when none was selected."""
    ids = []
    for value in request.POST.getlist("asset"):
        try:
            ids.append(UUID(value))
        except ValueError:
            continue
    if not ids:
        return None
    assets = list(
        Asset.objects.for_tenant(membership.tenant)
        .outputs()
        .filter(pk__in=ids)
        .select_related("job", "job__input_asset")
        .order_by("-created_at", "-id")
    )
    if not assets:
        raise Http404("None of these images is in this workspace.")
    return assets


@require_POST
@workspace_view
def assets_zip(request: HttpRequest, membership: Membership) -> HttpResponseBase:
    """The selected results' full images in one ZIP."""
    gallery_url = _next_url(request, reverse("gallery", args=[membership.tenant.slug]))
    limit = settings.GALLERY_ZIP_MAX_ASSETS
    if len(request.POST.getlist("asset")) > limit:
        messages.error(request, f"A ZIP holds at most {limit} images: select fewer.")
        return redirect(gallery_url)
    assets = _selected_assets(request, membership)
    if assets is None:
        messages.error(request, "Select at least one image to download.")
        return redirect(gallery_url)
    archive = services.assets_zip(tenant=membership.tenant, assets=assets)
    filename = f"productstudio-{membership.tenant.slug}-{timezone.localdate():%Y-%m-%d}.zip"
    return FileResponse(
        archive, as_attachment=True, filename=filename, content_type="application/zip"
    )


@require_POST
@workspace_view
def assets_delete(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Delete the selected results, once confirmed."""
    gallery_url = _next_url(request, reverse("gallery", args=[membership.tenant.slug]))
    assets = _selected_assets(request, membership)
    if assets is None:
        messages.error(request, "Select at least one image to delete.")
        return redirect(gallery_url)
    if request.POST.get("confirm") != "1":
        return _delete_confirm(request, membership, assets)
    deleted = services.assets_delete(tenant=membership.tenant, assets=assets)
    messages.success(request, f"{deleted} image{'s' if deleted != 1 else ''} deleted.")
    return redirect(gallery_url)
