"""Portal pages for jobs: dashboard, new job, job detail, batches, gallery and asset files."""

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
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
from jobs import catalog, samples, services
from jobs.engines.local import scenes
from jobs.forms import (
    GALLERY_STATUSES,
    GalleryFilterForm,
    NewJobForm,
    PresetForm,
    param_field_name,
    params_from_post,
)
from jobs.models import Asset, AssetKind, Batch, Job, JobPrice, JobStatus, Preset
from jobs.services import queue as queueing

# Failed jobs stay listed in the gallery this long (then only on the dashboard).
GALLERY_FAILED_DAYS = 7
BATCHES_PAGE_SIZE = 20
DASHBOARD_BATCHES = 5


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
    batches = Batch.objects.for_tenant(membership.tenant).with_progress()[:DASHBOARD_BATCHES]
    return render(
        request,
        "jobs/dashboard.html",
        {"recent_jobs": recent, "counts": counts, "recent_batches": batches},
    )


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
        # A bounded number also gets a slider; the number field stays the value sent,
        # so that empty still means "not given" (the preset's or the default applies).
        slider = kind == "number" and "minimum" in prop and "maximum" in prop
        value = values.get(name, "")
        controls.append(
            {
                "name": name,
                "label": name.replace("_", " ").capitalize(),
                "field": param_field_name(spec.slug, name),
                "kind": kind,
                "schema": prop,
                "step": step,
                "slider": slider,
                "slider_step": _slider_step(prop) if slider and step != "1" else step,
                "slider_value": value if value != "" else prop.get("default", prop.get("minimum")),
                "required": name in schema["required"],
                "value": value,
            }
        )
    return controls


def _slider_step(prop: Mapping[str, Any]) -> str:
    # A hundred steps across the range: fine enough to place, coarse enough for arrows.
    return format((float(prop["maximum"]) - float(prop["minimum"])) / 100, "g")


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


def _job_prefill(membership: Membership, job_id: str) -> tuple[Job, dict[str, Any]]:
    """A job of the workspace (404 otherwise) and the parameters its shop chose, to
    prefill the new-job form with (see `Job.params_chosen`)."""
    try:
        pk = UUID(job_id)
    except ValueError:
        raise Http404("No such job.") from None
    job = _job(membership, pk)
    return job, job.params_chosen()


@workspace_view
def job_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    """One photo makes a job; several (lines, CSV rows, files) make a batch, leaving out
    and naming the photos that can't be used."""
    tenant = membership.tenant
    initial: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    posted_model = ""
    source_job = None
    if request.method == "POST":
        posted_model = request.POST.get("model", "")
        overrides = dict(params_from_post(request.POST, posted_model)) if posted_model else {}
    elif request.GET.get("from"):
        source_job, overrides = _job_prefill(membership, request.GET["from"])
        posted_model = source_job.model
        initial = {"image_url": source_job.source_url, "model": source_job.model}
    form = NewJobForm(request.POST or None, request.FILES or None, initial=initial)
    param_errors: dict[str, str] = {}
    needs_credits = False
    if request.method == "POST" and form.is_valid():
        sources: list[services.PhotoSource] = form.cleaned_data["sources"]
        try:
            preset = _chosen_preset(membership, form.cleaned_data["preset"])
            if len(sources) == 1:
                job = services.job_submit(
                    tenant=tenant,
                    user=membership.user,
                    model=form.cleaned_data["model"],
                    image_url=sources[0].image_url,
                    upload=sources[0].upload,
                    sku=sources[0].sku,
                    preset=preset,
                    params=overrides,
                )
            else:
                submitted = services.batch_submit_portal(
                    tenant=tenant,
                    user=membership.user,
                    model=form.cleaned_data["model"],
                    sources=sources,
                    preset=preset,
                    params=overrides,
                    name=form.cleaned_data["batch_name"],
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
            if len(sources) > 1:
                return _batch_submitted(request, membership, submitted)
            if job.status == JobStatus.WAITING_FOR_PROVIDER:
                messages.warning(request, "Job submitted: it waits for Segmind, see below.")
            else:
                messages.success(request, "Job submitted: it will appear in the gallery when done.")
            return redirect("job_detail", workspace=tenant.slug, job_id=job.id)
    engine, own_key = services.job_engine(tenant=tenant)
    presets = _presets_by_model(membership)
    prices = services.job_prices(tenant=tenant)
    models = [
        {
            "spec": m,
            "price": _price_label(prices[m.slug], own_key=own_key),
            "available": m.runs_on(engine),
            "typical": _typical_time(m, engine),
            "presets": presets.get(m.slug, []),
            "controls": _param_controls(m, overrides if m.slug == posted_model else {}),
            "placement": set(m.params) >= PLACEMENT_PARAMS,
            "errors": param_errors if m.slug == posted_model else {},
        }
        for m in catalog.all_models()
    ]
    sample_urls = [
        request.build_absolute_uri(reverse("sample_image", args=[name]))
        for name in samples.SAMPLE_NAMES[:4]
    ]
    if source_job is not None:
        selected_preset = str(source_job.preset_id or "")
    else:
        selected_preset = request.POST.get("preset", "")
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
            "selected_preset": selected_preset,
            "source_job": source_job,
            "batch_max_items": settings.BATCH_MAX_ITEMS,
        },
    )


# Models whose product is placed by these (percent of the width and height, and size):
# the new-job page sets them by clicking on a preview.
PLACEMENT_PARAMS = frozenset({"x_value", "y_value", "scale"})


def _typical_time(spec: catalog.ModelSpec, engine: catalog.Engine) -> str:
    if not spec.runs_on(engine):
        return ""
    if engine == "local":
        if spec.composed_locally:
            return "Composed on a backdrop by the local engine, in about a second"
        return "Runs on the local engine, in about a second"
    if spec.typical_seconds is None:
        return "On Segmind; its time varies"
    return f"About {spec.typical_seconds:.0f} s on Segmind"


def _batch_submitted(
    request: HttpRequest, membership: Membership, submitted: services.PortalBatch
) -> HttpResponse:
    count = submitted.batch.jobs.count()
    messages.success(
        request, f"Batch submitted: {count} job{'s' if count != 1 else ''}, one per photo."
    )
    if submitted.skipped:
        skipped = len(submitted.skipped)
        messages.warning(
            request,
            f"{skipped} photo{'s were' if skipped != 1 else ' was'} left out: "
            + "; ".join(submitted.skipped),
        )
    return redirect("batch_detail", workspace=membership.tenant.slug, batch_id=submitted.batch.id)


def _price_label(price: JobPrice | None, *, own_key: bool) -> str:
    if own_key:
        fee = services.job_price(model="", engine="segmind", params={}, own_key=True)
        return f"{fee} credits platform fee (your Segmind key)" if fee else "Free on your key"
    return price.label if price is not None else "Free"


@require_POST
@workspace_view
def job_preview(request: HttpRequest, membership: Membership) -> JsonResponse:
    """What a job with these choices would send: resolved parameters, output size, and
    the price of `count` such jobs (one per photo on the page) against the balance.

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
    # How many photos the page holds: one job each, so the total is what is checked.
    count_given = request.POST.get("count", "1")
    count = int(count_given) if count_given.isascii() and count_given.isdigit() else 1
    count = max(1, min(count, settings.BATCH_MAX_ITEMS))
    total = quote.price * count
    # A drawn seed is drawn again at submission; the preview says so instead of a number.
    given_seed = overrides.get("seed") or (preset.params.get("seed") if preset else None)
    if "seed" in params and given_seed in (None, "-1", -1):
        params["seed"] = "random (drawn when you submit)"
    return JsonResponse(
        {
            "params": params,
            "output_size": {"width": size[0], "height": size[1]} if size else None,
            "price": quote.price,
            "count": count,
            "total": total,
            "own_key": quote.own_key,
            "balance": balance,
            "enough_credits": balance >= total,
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
        }
        for asset in outputs
    ]


def _seconds_words(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def timing_text(*, status: str, elapsed: float, typical: float | None) -> str:
    """The time a job has taken against the usual, as its page says it (static/js/job.js
    and batch.js say it the same way between two polls)."""
    usual = f"about {_seconds_words(typical)}" if typical else ""
    if status == JobStatus.SUCCEEDED:
        return f"Took {_seconds_words(elapsed)}" + (f" (usually {usual})" if usual else "")
    if status in (JobStatus.FAILED, JobStatus.CANCELED):
        return f"Ended after {_seconds_words(elapsed)}"
    if not typical:
        return f"{_seconds_words(elapsed)} so far"
    if elapsed <= typical:
        return f"{_seconds_words(elapsed)} of {usual}"
    return f"{_seconds_words(elapsed)} so far, longer than the usual {_seconds_words(typical)}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _about_words(seconds: float) -> str:
    """A wait, roughly: seconds under a minute, then minutes, then hours and minutes."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def queue_text(*, place: queueing.QueuePlace, engine: str, now: datetime) -> str:
    """A queued job's place as its page says it: "In line: 12th for Segmind · starts in
    about 40 s"."""
    line = "Segmind" if engine == "segmind" else "a worker"
    wait = (place.estimated_start_at - now).total_seconds()
    start = "should start any moment" if wait < 1 else f"starts in about {_about_words(wait)}"
    return f"In line: {_ordinal(place.position)} for {line} · {start}"


def _queue_state(job: Job) -> dict[str, Any] | None:
    """A queued job's place in line for its page (a few queries: one job at a time)."""
    now = timezone.now()
    place = queueing.job_queue_place(job=job, now=now)
    if place is None:
        return None
    return {
        "position": place.position,
        "ahead": place.ahead,
        "estimated_start_at": place.estimated_start_at.isoformat(),
        "text": queue_text(place=place, engine=job.engine, now=now),
    }


def finish_text(*, finish: datetime, now: datetime) -> str:
    """A batch's estimated finish as its page says it: "Estimated finish: about 3 min
    (14:32)", the clock in the site's time zone."""
    wait = (finish - now).total_seconds()
    clock = timezone.localtime(finish).strftime("%H:%M")
    if wait < 1:
        return f"Estimated finish: any moment ({clock})"
    return f"Estimated finish: about {_about_words(wait)} ({clock})"


def _job_state(job: Job, slug: str, *, now: Any = None) -> dict[str, Any]:
    """What a job page or a batch row shows of a job and updates as it runs."""
    return {
        "id": str(job.id),
        "status": job.status,
        "label": job.status_label,
        "terminal": job.is_terminal,
        "elapsed_seconds": round(job.elapsed_seconds(now), 1),
        "typical_seconds": job.typical_seconds,
        "timing": timing_text(
            status=job.status, elapsed=job.elapsed_seconds(now), typical=job.typical_seconds
        ),
        "error_code": job.error_code if job.status == JobStatus.FAILED else "",
        "error_message": job.error_message if job.status == JobStatus.FAILED else "",
        "url": reverse("job_detail", args=[slug, job.id]),
    }


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
            "state": _job_state(job, membership.tenant.slug),
            "queue": _queue_state(job),
            "outputs": outputs,
            "output_size": size,
            "backdrop": backdrop,
            "refunded": refunded,
        },
    )


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
    # A failed job of a batch is retried within it, so the batch's page follows it.
    batch = job.batch if job.batch_id and job.status == JobStatus.FAILED else None
    try:
        rerun = services.job_rerun(job=job, user=membership.user, batch=batch)
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
    """The batch's jobs in one query, each knowing whether it was retried in the batch."""
    retried = Job.objects.filter(rerun_of=OuterRef("pk"), batch_id=batch.pk)
    return (
        Job.objects.filter(batch_id=batch.pk)
        .select_related("input_asset")
        .annotate(retried=Exists(retried))
        .order_by("created_at", "pk")
    )


def _finished_at(jobs: Any) -> Any:
    # The batch's own `completed_at` is set just after its last job's commit: until then
    # the batch ended when its last job did.
    return max((job.completed_at for job in jobs if job.completed_at), default=None)


def _batch_state(batch: Batch, jobs: Any, slug: str) -> dict[str, Any]:
    now = timezone.now()
    progress = batch.progress()
    complete = progress["total"] > 0 and progress["done"] == progress["total"]
    elapsed = batch.elapsed_seconds(_finished_at(jobs) if complete else now)
    finish = None if complete else queueing.batch_finish_estimate(batch=batch, now=now)
    return {
        "id": str(batch.id),
        "name": str(batch),
        "progress": progress,
        "complete": complete,
        "elapsed_seconds": round(elapsed, 1),
        "elapsed_text": f"{'Took' if complete else 'Running for'} {_seconds_words(elapsed)}",
        "results": progress["succeeded"],
        "retryable": sum(1 for job in jobs if job.status == JobStatus.FAILED and not job.retried),
        "estimated_finish_at": finish.isoformat() if finish else None,
        "estimated_finish_text": finish_text(finish=finish, now=now) if finish else "",
        "gallery_url": f"{reverse('gallery', args=[slug])}?batch={batch.id}",
        "jobs": [
            {
                **_job_state(job, slug, now=now),
                "retried": job.retried,
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
    has_own = any(g["own"] for g in groups)
    return render(request, "jobs/presets.html", {"groups": groups, "has_own": has_own})


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
