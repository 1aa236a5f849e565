"""The new-job page (one photo makes a job, several a batch) and the preview and quote
it asks for as the shop changes the form."""

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs import catalog, samples, services
from jobs.forms import NewJobForm, params_from_post
from jobs.models import Job, JobPrice, JobStatus
from jobs.views.common import _job, _param_controls, _presets_by_model


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
        initial = {
            "image_url": source_job.source_url,
            "model": source_job.model,
            "sku": source_job.sku,
        }
    form = NewJobForm(request.POST or None, request.FILES or None, initial=initial)
    param_errors: dict[str, str] = {}
    needs_credits = False
    if request.method == "POST" and form.is_valid():
        sources: list[services.PhotoSource] = form.cleaned_data["sources"]
        try:
            preset = services.preset_visible_get(
                tenant=tenant, value=form.cleaned_data["preset"], slugs=False
            )
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
                named = "; ".join(
                    f"{catalog.param_label(name)}: {rule}" for name, rule in e.errors.items()
                )
                form.add_error(None, f"Some settings need fixing: {named}.")
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
    models: list[dict[str, Any]] = [
        {
            "spec": m,
            "price": _price_label(prices[m.slug], own_key=own_key),
            "available": m.runs_on(engine),
            "typical": _typical_time(m, engine),
            "presets": presets.get(m.slug, []),
            # The SKU is each photo's (the field above, a CSV's column), not a setting.
            "controls": _param_controls(
                m,
                overrides if m.slug == posted_model else {},
                exclude=catalog.PER_PHOTO_PARAMS,
            ),
            "placement": set(m.params) >= PLACEMENT_PARAMS,
            "errors": param_errors if m.slug == posted_model else {},
        }
        for m in catalog.all_models()
    ]
    for m in models:
        # Required settings (a scene's description) stand outside "Advanced settings".
        m["required"] = [c for c in m["controls"] if c["required"]]
        m["optional"] = [c for c in m["controls"] if not c["required"]]
        m["advanced_errors"] = any(c["name"] in m["errors"] for c in m["optional"])
    sample_photos = [
        {
            "name": name,
            "title": SAMPLE_TITLES.get(name) or name.replace("-", " ").capitalize(),
            "url": request.build_absolute_uri(reverse("sample_image", args=[name])),
            "thumbnail": reverse("sample_thumbnail", args=[name]),
        }
        for name in samples.SAMPLE_NAMES
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
            "sample_photos": sample_photos,
            "selected_model": posted_model or form.fields["model"].initial,
            "selected_preset": selected_preset,
            "source_job": source_job,
            "batch_max_items": settings.BATCH_MAX_ITEMS,
        },
    )


# The sample photos in a shop's words (their names are the quality set's).
SAMPLE_TITLES = {
    "white-on-white": "White vase on white",
    "dark-on-dark": "Black bag on dark",
    "plant-pot-gradient": "Plant pot",
    "jar-noisy-background": "Jar on grain",
    "speaker-on-grey": "Speaker on grey",
    "perfume-on-teal": "Perfume on teal",
}

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
        fee = services.own_key_fee()
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
    # How many photos the page holds (one job each); anything but a number counts as one.
    count_given = request.POST.get("count", "1")
    count = int(count_given) if count_given.isascii() and count_given.isdigit() else 1
    try:
        preset = services.preset_visible_get(
            tenant=membership.tenant, value=request.POST.get("preset", ""), slugs=False
        )
        preview = services.job_preview_quote(
            tenant=membership.tenant, spec=spec, preset=preset, overrides=overrides, count=count
        )
    except services.JobError as e:
        return JsonResponse(
            {"errors": e.errors or {"preset": e.message}, "labels": _labels(spec)}, status=400
        )
    size = preview.output_size
    return JsonResponse(
        {
            "params": preview.params,
            "output_size": {"width": size[0], "height": size[1]} if size else None,
            "price": preview.price,
            "count": preview.count,
            "total": preview.total,
            "own_key": preview.own_key,
            "balance": preview.balance,
            "enough_credits": preview.enough_credits,
            "buy_url": reverse("credits", args=[membership.tenant.slug]),
            "errors": {},
            "labels": _labels(spec),
        }
    )


def _labels(spec: catalog.ModelSpec) -> dict[str, str]:
    """Each parameter's name in a shop owner's words, for the preview to show."""
    return {"preset": "Preset", **{name: catalog.param_label(name) for name in spec.params}}
