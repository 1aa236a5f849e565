"""Portal pages for jobs: dashboard, new job, job detail, gallery and asset files."""

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Q
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.decorators import workspace_view
from accounts.models import CreditKind, Membership
from jobs import catalog, samples, scenes, services
from jobs.forms import (
    GALLERY_STATUSES,
    GalleryFilterForm,
    NewJobForm,
    PresetForm,
    param_field_name,
    params_from_post,
)
from jobs.models import Asset, AssetKind, Batch, Job, JobPrice, JobStatus, Preset

# Failed jobs stay listed in the gallery this long (then only on the dashboard).
GALLERY_FAILED_DAYS = 7


@workspace_view
def dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    jobs = Job.objects.for_tenant(membership.tenant)
    counts = {
        status: jobs.filter(status=status).count()
        for status in (
            JobStatus.QUEUED,
            JobStatus.RUNNING,
            JobStatus.WAITING_FOR_PROVIDER,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
        )
    }
    recent = jobs.select_related("created_by").order_by("-created_at")[:10]
    return render(request, "jobs/dashboard.html", {"recent_jobs": recent, "counts": counts})


def _param_controls(spec: catalog.ModelSpec, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Form controls for a model's parameters, built from its JSON Schema."""
    schema = spec.json_schema()
    controls = []
    for name, prop in schema["properties"].items():
        if name == spec.image_param:
            continue  # the product photo has its own field
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        if "enum" in prop:
            kind = "select"
        elif "boolean" in types:
            kind = "boolean"
        elif "integer" in types or "number" in types:
            kind = "number"
        elif name.endswith("prompt"):
            kind = "textarea"
        else:
            kind = "text"
        step = "1" if "integer" in types else "any"
        controls.append(
            {
                "name": name,
                "field": param_field_name(spec.slug, name),
                "kind": kind,
                "schema": prop,
                "step": step,
                "required": name in schema["required"],
                "value": values.get(name, ""),
            }
        )
    return controls


def _presets_by_model(membership: Membership) -> dict[str, list[Preset]]:
    presets: dict[str, list[Preset]] = {}
    for preset in Preset.objects.visible_to(membership.tenant).order_by("tenant_id", "name"):
        presets.setdefault(preset.model, []).append(preset)
    return presets


def _chosen_preset(membership: Membership, value: str) -> Preset | None:
    if not value:
        return None
    # ASCII digits of a size an id can have: int() refuses "²", which isdigit() accepts.
    if not (value.isascii() and value.isdigit() and len(value) < 19):
        raise services.JobError("validation_error", "preset: choose a preset from the list.")
    preset = Preset.objects.visible_to(membership.tenant).filter(pk=int(value)).first()
    if preset is None:
        raise services.JobError("validation_error", "preset: this preset does not exist.")
    return preset


@workspace_view
def job_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = NewJobForm(request.POST or None, request.FILES or None)
    posted_model = request.POST.get("model", "") if request.method == "POST" else ""
    overrides = params_from_post(request.POST, posted_model) if posted_model else {}
    param_errors: dict[str, str] = {}
    needs_credits = False
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_submit(
                tenant=membership.tenant,
                user=membership.user,
                model=form.cleaned_data["model"],
                image_url=form.cleaned_data["image_url"] or "",
                upload=form.cleaned_data["image"],
                preset=_chosen_preset(membership, form.cleaned_data["preset"]),
                params=overrides,
            )
        except services.JobError as e:
            needs_credits = e.code == "insufficient_credits"
            if e.errors and not set(e.errors) & set(form.fields):
                param_errors = e.errors
                form.add_error(None, "Some parameters need fixing: see the model's settings.")
            else:
                # The preset has one select per model: its errors go above the form.
                field = e.field if e.field in form.fields and e.field != "preset" else None
                form.add_error(field, e.message)
        else:
            if job.status == JobStatus.WAITING_FOR_PROVIDER:
                messages.warning(request, "Job submitted: it waits for Segmind, see below.")
            else:
                messages.success(request, "Job submitted: it will appear in the gallery when done.")
            return redirect("job_detail", workspace=membership.tenant.slug, job_id=job.id)
    tenant = membership.tenant
    engine, own_key = services.job_engine(tenant=tenant)
    presets = _presets_by_model(membership)
    prices = services.job_prices(tenant=tenant)
    models = [
        {
            "spec": m,
            "price": _price_label(prices[m.slug], own_key=own_key),
            "available": m.runs_on(engine),
            "presets": presets.get(m.slug, []),
            "controls": _param_controls(m, overrides if m.slug == posted_model else {}),
            "errors": param_errors if m.slug == posted_model else {},
        }
        for m in catalog.all_models()
    ]
    sample_urls = [
        request.build_absolute_uri(reverse("sample_image", args=[name]))
        for name in samples.SAMPLE_NAMES[:4]
    ]
    return render(
        request,
        "jobs/job_new.html",
        {
            "form": form,
            "models": models,
            "engine": engine,
            "own_key": own_key,
            "needs_credits": needs_credits,
            "sample_urls": sample_urls,
            "selected_model": posted_model or form.fields["model"].initial,
            "selected_preset": request.POST.get("preset", ""),
        },
    )


def _price_label(price: JobPrice | None, *, own_key: bool) -> str:
    if own_key:
        fee = services.job_price(model="", engine="segmind", params={}, own_key=True)
        return f"{fee} credits platform fee (your Segmind key)" if fee else "Free on your key"
    return price.label if price is not None else "Free"


@require_POST
@workspace_view
def job_preview(request: HttpRequest, membership: Membership) -> JsonResponse:
    """What a job with these choices would send: resolved parameters and output size.

    The new-job page calls this as the shop changes the form, so the preview comes from
    the same validator as the job itself.
    """
    spec = catalog.get_model(request.POST.get("model", ""))
    if spec is None:
        return JsonResponse({"errors": {"model": "choose a model"}}, status=400)
    overrides = params_from_post(request.POST, spec.slug)
    try:
        preset = _chosen_preset(membership, request.POST.get("preset", ""))
        params = services.job_resolve_params(
            tenant=membership.tenant,
            spec=spec,
            preset=preset,
            overrides=overrides,
            upload_attached=True,
        )
    except services.JobError as e:
        return JsonResponse({"errors": e.errors or {"preset": e.message}}, status=400)
    size = spec.output_size(params)
    quote = services.job_quote(tenant=membership.tenant, spec=spec, params=params)
    balance = membership.tenant.credit_balance
    # A drawn seed is drawn again at submission; the preview says so instead of a number.
    given_seed = overrides.get("seed") or (preset.params.get("seed") if preset else None)
    if "seed" in params and given_seed in (None, "-1", -1):
        params["seed"] = "random (drawn when you submit)"
    return JsonResponse(
        {
            "params": params,
            "output_size": {"width": size[0], "height": size[1]} if size else None,
            "price": quote.price,
            "own_key": quote.own_key,
            "balance": balance,
            "enough_credits": balance >= quote.price,
            "buy_url": reverse("credits", args=[membership.tenant.slug]),
            "errors": {},
        }
    )


def _job(membership: Membership, job_id: UUID) -> Job:
    return get_object_or_404(
        Job.objects.for_tenant(membership.tenant).select_related(
            "input_asset", "created_by", "tenant"
        ),
        pk=job_id,
    )


@workspace_view
def job_detail(request: HttpRequest, membership: Membership, job_id: UUID) -> HttpResponse:
    job = _job(membership, job_id)
    outputs = job.assets.filter(kind=AssetKind.OUTPUT)
    spec = job.spec
    size = spec.output_size(job.params) if spec else None
    backdrop = scenes.BACKDROPS.get(job.backdrop)
    # An operator may have given a charged job's credits back.
    refunded = bool(job.price) and job.credit_entries.filter(kind=CreditKind.REFUND).exists()
    return render(
        request,
        "jobs/job_detail.html",
        {
            "job": job,
            "outputs": outputs,
            "output_size": size,
            "backdrop": backdrop,
            "refunded": refunded,
        },
    )


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


@require_POST
@workspace_view
def job_rerun(request: HttpRequest, membership: Membership, job_id: UUID) -> HttpResponse:
    """The same job again: its stored photo, preset and parameters, and its seed unless
    that was drawn (then another is drawn)."""
    job = _job(membership, job_id)
    try:
        rerun = services.job_rerun(job=job, user=membership.user)
    except services.JobError as e:
        messages.error(request, e.message)
        return redirect("job_detail", workspace=membership.tenant.slug, job_id=job.id)
    messages.success(request, "Submitted again with the same photo and settings.")
    return redirect("job_detail", workspace=membership.tenant.slug, job_id=rerun.id)


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
    presets = list(
        Preset.objects.visible_to(tenant).order_by("name", "pk").values_list("pk", "name")
    )
    form = GalleryFilterForm(request.GET or None, presets=presets)
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
            .select_related("job", "job__preset", "job__batch")
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


def _asset(membership: Membership, asset_id: UUID) -> Asset:
    return get_object_or_404(Asset.objects.for_tenant(membership.tenant), pk=asset_id)


@workspace_view
def asset_file(request: HttpRequest, membership: Membership, asset_id: UUID) -> FileResponse:
    """An asset's bytes, served only to members of its workspace."""
    asset = _asset(membership, asset_id)
    download = request.GET.get("download") == "1"
    response = FileResponse(
        asset.file.open("rb"),
        content_type=asset.mime_type,
        as_attachment=download,
        filename=services.asset_filename(asset),
    )
    response["Cache-Control"] = "private, max-age=86400"
    return response


@workspace_view
def asset_thumbnail(
    request: HttpRequest, membership: Membership, asset_id: UUID
) -> HttpResponseBase:
    """An asset's thumbnail. It never changes once made, so browsers keep it for good; an
    asset stored before thumbnails existed gets its thumbnail now, once."""
    asset = _asset(membership, asset_id)
    etag = f'"{asset.pk.hex}-thumb"'
    caching = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": etag}
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponseNotModified(headers=caching)
    if not asset.thumbnail:
        try:
            services.asset_thumbnail_ensure(asset=asset)
        except FileNotFoundError:
            raise Http404("This image's file is missing.") from None
        if not asset.thumbnail:
            raise Http404("This image has no thumbnail.")
    try:
        thumbnail = asset.thumbnail.open("rb")
    except FileNotFoundError:
        raise Http404("This image's thumbnail is missing.") from None
    return FileResponse(thumbnail, content_type="image/jpeg", headers=caching)


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
        .select_related("job")
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


@workspace_view
def preset_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    presets = _presets_by_model(membership)
    groups = [
        {
            "spec": spec,
            "own": [p for p in presets.get(spec.slug, []) if not p.is_system],
            "system": [p for p in presets.get(spec.slug, []) if p.is_system],
        }
        for spec in catalog.all_models()
    ]
    return render(request, "jobs/presets.html", {"groups": groups})


def _own_preset(membership: Membership, preset_id: int) -> Preset:
    return get_object_or_404(Preset.objects.for_tenant(membership.tenant), pk=preset_id)


def _preset_form_page(
    request: HttpRequest,
    membership: Membership,
    spec: catalog.ModelSpec,
    preset: Preset | None,
) -> HttpResponse:
    initial = (
        {"name": preset.name, "description": preset.description, "backdrop": preset.backdrop}
        if preset
        else {}
    )
    form = PresetForm(request.POST or None, initial=initial, spec=spec)
    values: Mapping[str, Any] = preset.params if preset else {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = params_from_post(request.POST, spec.slug)
        if form.is_valid():
            try:
                if preset is None:
                    preset = services.preset_create(
                        tenant=membership.tenant,
                        user=membership.user,
                        model=spec.slug,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        params=values,
                        backdrop=form.cleaned_data.get("backdrop", ""),
                    )
                else:
                    services.preset_update(
                        tenant=membership.tenant,
                        preset=preset,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        params=values,
                        backdrop=form.cleaned_data.get("backdrop", preset.backdrop),
                    )
            except services.PresetError as e:
                errors = e.errors
                for own in ("name", "backdrop"):
                    if own in errors and own in form.fields:
                        form.add_error(own, errors.pop(own))
                form.add_error(None, "The preset was not saved: fix the fields marked below.")
                # The product photo has no control on this page: say so above the form.
                for field, rule in errors.items():
                    if field == spec.image_param:
                        form.add_error(None, f"{field}: {rule}")
            else:
                messages.success(request, f"Preset “{preset.name}” saved.")
                return redirect("preset_list", workspace=membership.tenant.slug)
    return render(
        request,
        "jobs/preset_form.html",
        {
            "form": form,
            "spec": spec,
            "preset": preset,
            "controls": _param_controls(spec, values),
            "errors": errors,
        },
    )


@workspace_view
def preset_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    spec = catalog.get_model(request.GET.get("model", ""))
    if spec is None:
        return render(request, "jobs/preset_choose_model.html", {"models": catalog.all_models()})
    return _preset_form_page(request, membership, spec, None)


@workspace_view
def preset_edit(request: HttpRequest, membership: Membership, preset_id: int) -> HttpResponse:
    preset = _own_preset(membership, preset_id)
    spec = preset.spec
    if spec is None:
        raise Http404("This preset's model is no longer offered.")
    return _preset_form_page(request, membership, spec, preset)


@require_POST
@workspace_view
def preset_copy(request: HttpRequest, membership: Membership, preset_id: int) -> HttpResponse:
    source = get_object_or_404(Preset.objects.visible_to(membership.tenant), pk=preset_id)
    copy = services.preset_copy(tenant=membership.tenant, user=membership.user, preset=source)
    messages.success(request, f"Copied “{source.name}”: edit your copy below.")
    return redirect("preset_edit", workspace=membership.tenant.slug, preset_id=copy.pk)


@require_POST
@workspace_view
def preset_delete(request: HttpRequest, membership: Membership, preset_id: int) -> HttpResponse:
    preset = _own_preset(membership, preset_id)
    services.preset_delete(tenant=membership.tenant, preset=preset)
    messages.success(request, f"Preset “{preset.name}” deleted.")
    return redirect("preset_list", workspace=membership.tenant.slug)
