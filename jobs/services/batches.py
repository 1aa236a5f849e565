"""Batches: the API's (all or nothing), the new-job page's (bad photos left out and named),
and retrying a batch's failed jobs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from jobs import catalog
from jobs.models import Asset, Batch, Job, JobStatus, Preset
from jobs.services.assets import _assets_discard, _input_stored
from jobs.services.errors import JobError
from jobs.services.inputs import _read_input
from jobs.services.pricing import Quote, job_engine, job_quote
from jobs.services.submit import (
    _job_backdrop,
    _job_hold,
    _jobs_send,
    _model_for_job,
    _paused_for,
    _seed_drawn,
    _with_sku,
    job_rerun,
    job_resolve_params,
)

# Photos of a batch fetched at once: enough to overlap slow hosts, few enough to keep a web
# process's memory and connections modest (each photo is stored, not kept, once checked).
BATCH_FETCH_THREADS = 8


def batch_retry_failed(*, batch: Batch, user: User | None) -> list[Job]:
    """Run each failed job of the batch once more, into the batch; all of them or none.

    A failed job that already has a rerun in the batch is skipped, so pressing "retry"
    twice (or two people at once: the batch's row is locked meanwhile) retries each job
    once. Returns the new jobs (none when nothing is left to retry).
    """
    with transaction.atomic():
        Batch.objects.select_for_update().filter(pk=batch.pk).first()
        failed = list(
            Job.objects.filter(batch_id=batch.pk)
            .retryable()
            .select_related("tenant", "input_asset", "preset")
            .order_by("created_at", "pk")
        )
        try:
            return [job_rerun(job=job, user=user, batch=batch) for job in failed]
        except JobError as e:
            count = f"{len(failed)} failed job{'s' if len(failed) != 1 else ''}"
            if e.code == "insufficient_credits":
                balance = Tenant.objects.values_list("credit_balance", flat=True).get(
                    pk=batch.tenant_id
                )
                raise JobError(
                    e.code,
                    f"Retrying the {count} needs more credits than the workspace's {balance}. "
                    "No job was retried.",
                ) from e
            raise JobError(
                e.code, f"The {count} could not be retried: {e.message} No job was retried."
            ) from e


@dataclass(frozen=True)
class BatchItem:
    """One product photo of a batch, with its own parameters over the batch's."""

    image_url: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Planned:
    image_url: str
    params: dict[str, Any]
    quote: Quote
    seed_drawn: bool


def _batch_refused(errors: Mapping[str, str]) -> JobError:
    # The detail names a few fields; `errors` has them all.
    shown = [f"{name}: {rule}" for name, rule in list(errors.items())[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    error = JobError("validation_error", "; ".join(shown) + more)
    error.errors = dict(errors)
    return error


def _batch_plan(
    *,
    tenant: Tenant,
    spec: catalog.ModelSpec,
    items: Sequence[BatchItem],
    preset: Preset | None,
    params: Mapping[str, Any],
) -> list[_Planned]:
    """Each item's resolved parameters and price, or every error at once, each naming
    its place in the request: `params.<name>`, `items.<i>.image_url`,
    `items.<i>.params.<name>`."""
    errors: dict[str, str] = {}
    if preset is not None and preset.tenant_id not in (None, tenant.pk):
        errors["preset"] = "this preset does not exist"
    elif preset is not None and preset.model != spec.slug:
        errors["preset"] = f"{preset.name} is a preset for {preset.model_title}, not {spec.title}"
    if spec.image_param in params:
        errors[f"params.{spec.image_param}"] = "each item brings its photo as its image_url"
    try:
        catalog.resolve_params(spec, params, partial=True)
    except catalog.ParamsError as e:
        errors.update({f"params.{name}": rule for name, rule in e.errors.items()})
    preset_params = preset.params if preset is not None and "preset" not in errors else {}
    shared = {**preset_params, **params}
    planned = []
    for index, item in enumerate(items):
        at = f"items.{index}"
        own = dict(item.params)
        url = item.image_url.strip()
        if not url:
            errors[f"{at}.image_url"] = "give the URL of a product photo"
        if spec.image_param in own:
            errors[f"{at}.params.{spec.image_param}"] = "the item's photo is its image_url"
            continue
        given = {**shared, **own}
        try:
            resolved = catalog.resolve_params(
                spec,
                {**given, spec.image_param: url} if url else given,
                attached=frozenset() if url else frozenset({spec.image_param}),
            )
        except catalog.ParamsError as e:
            for name, rule in e.errors.items():
                if name == spec.image_param:
                    errors[f"{at}.image_url"] = rule
                elif name in params and name not in own:
                    # The batch's own value is wrong: said once, above or here.
                    errors.setdefault(f"params.{name}", rule)
                else:
                    errors[f"{at}.params.{name}"] = rule
            continue
        quote = job_quote(tenant=tenant, spec=spec, params=resolved)
        planned.append(_Planned(url, resolved, quote, _seed_drawn(spec, given)))
    if errors:
        raise _batch_refused(errors)
    return planned


def _batch_inputs_fetch(
    *, tenant: Tenant, urls: Sequence[str]
) -> tuple[dict[str, Asset], dict[str, str]]:
    """Fetch and check every photo, several at a time; each is written to storage as
    soon as it is checked, so only a few photos are in memory at once. Returns the
    unsaved assets by URL, and what is wrong with each URL that was refused."""

    def fetch(url: str) -> Asset:
        return _input_stored(tenant=tenant, source=_read_input(image_url=url, upload=None))

    with ThreadPoolExecutor(max_workers=max(1, min(BATCH_FETCH_THREADS, len(urls)))) as pool:
        futures = {url: pool.submit(fetch, url) for url in urls}
    stored: dict[str, Asset] = {}
    refused: dict[str, str] = {}
    unexpected: Exception | None = None
    for url, future in futures.items():
        try:
            stored[url] = future.result()
        except JobError as e:
            refused[url] = e.message.removeprefix("image_url: ")
        except Exception as e:
            unexpected = unexpected or e
    if unexpected is not None:
        _assets_discard(stored.values())
        raise unexpected
    return stored, refused


def batch_submit(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    items: Sequence[BatchItem],
    preset: Preset | None = None,
    params: Mapping[str, Any] | None = None,
    name: str = "",
) -> Batch:
    """Submit one job per item, all of them or none.

    Every item is checked first (parameters, then the price of all of them against the
    balance, then each photo, fetched and checked), every error naming its item
    (`items.3.image_url`); only then are the batch, its jobs and their holds created, in
    one transaction. A refused batch leaves no job, no hold and no stored photo. Photos
    are fetched before the transaction (no lock is held meanwhile), one fetch per
    distinct URL: items with the same photo share its stored input.
    """
    limit = settings.BATCH_MAX_ITEMS
    if not 1 <= len(items) <= limit:
        raise _batch_refused({"items": f"send 1 to {limit} items, not {len(items)}"})
    engine, _ = job_engine(tenant=tenant)
    spec = _model_for_job(model, engine)
    planned = _batch_plan(tenant=tenant, spec=spec, items=items, preset=preset, params=params or {})
    total = sum(plan.quote.price for plan in planned)
    balance = Tenant.objects.values_list("credit_balance", flat=True).get(pk=tenant.pk)
    if total > balance:
        raise _batch_short(total=total, balance=balance, jobs=len(planned))
    urls = list(dict.fromkeys(plan.image_url for plan in planned))
    inputs, refused = _batch_inputs_fetch(tenant=tenant, urls=urls)
    if refused:
        _assets_discard(inputs.values())
        raise _batch_refused(
            {
                f"items.{index}.image_url": refused[plan.image_url]
                for index, plan in enumerate(planned)
                if plan.image_url in refused
            }
        )
    short = partial(_batch_short, total=total, jobs=len(planned))
    return _batch_create(
        tenant=tenant,
        user=user,
        spec=spec,
        preset=preset,
        name=name,
        new_jobs=[
            _NewJob(
                plan.params, plan.quote, plan.seed_drawn, inputs[plan.image_url], plan.image_url
            )
            for plan in planned
        ],
        short=short,
    )


@dataclass(frozen=True)
class _NewJob:
    params: dict[str, Any]
    quote: Quote
    seed_drawn: bool
    input: Asset  # stored, not yet saved; shared by the jobs of the same photo
    source_url: str = ""
    sku: str = ""


def _batch_create(
    *,
    tenant: Tenant,
    user: User | None,
    spec: catalog.ModelSpec,
    preset: Preset | None,
    name: str,
    new_jobs: Sequence[_NewJob],
    short: Callable[..., JobError],
) -> Batch:
    """Create the batch, its jobs (each holding its price) and their stored photos in one
    transaction, then queue the jobs. Any failure deletes the stored files; a hold refused
    because the balance was spent meanwhile refuses the whole batch as `short(balance=)`."""
    inputs = list({id(job.input): job.input for job in new_jobs}.values())
    # One pause for all: the jobs share the workspace's key.
    pause = _paused_for(tenant=tenant, quote=new_jobs[0].quote)
    try:
        with transaction.atomic():
            batch = Batch.objects.create(tenant=tenant, name=name.strip()[:200], created_by=user)
            for asset in inputs:
                asset.save()
            jobs = []
            # A microsecond apart, so that the jobs sort in the items' order.
            first_at = timezone.now()
            for index, new in enumerate(new_jobs):
                job = Job.objects.create(
                    tenant=tenant,
                    batch=batch,
                    created_at=first_at + timedelta(microseconds=index),
                    created_by=user,
                    model=spec.slug,
                    engine=new.quote.engine,
                    params=new.params,
                    preset=preset,
                    source_url=new.source_url,
                    sku=new.sku,
                    input_asset=new.input,
                    backdrop=_job_backdrop(
                        spec=spec, engine=new.quote.engine, preset=preset, params=new.params
                    ),
                    own_key=new.quote.own_key,
                    price=new.quote.price,
                    status=JobStatus.WAITING_FOR_PROVIDER if pause else JobStatus.QUEUED,
                    waiting_since=timezone.now() if pause else None,
                    seed_drawn=new.seed_drawn,
                )
                _job_hold(job=job, user=user)
                jobs.append(job)
            # Each stored photo belongs to the first job made from it.
            first_jobs = {}
            for job in reversed(jobs):
                first_jobs[job.input_asset_id] = job
            for asset in inputs:
                Asset.objects.filter(pk=asset.pk).update(job=first_jobs[asset.pk])
            _jobs_send(jobs=jobs, pause=pause)
    except JobError as e:
        _assets_discard(inputs)
        if e.code == "insufficient_credits":
            # Spent meanwhile (another job or batch): refused as a whole, like before.
            balance = Tenant.objects.values_list("credit_balance", flat=True).get(pk=tenant.pk)
            raise short(balance=balance) from e
        raise
    except BaseException:
        _assets_discard(inputs)
        raise
    return batch


SKU_MAX_LENGTH = Job._meta.get_field("sku").max_length or 100


@dataclass(frozen=True)
class PhotoSource:
    """One product photo given on the new-job page: a pasted URL or an uploaded file.
    `label` names it when it is left out ("line 3: https://…", "row 2, column url: …",
    "mug.jpg"); `problem`, when set, is why it can't be used, found where it was read
    (a CSV row without a URL: "is required"), and it is left out with it."""

    label: str
    image_url: str = ""
    upload: UploadedFile | None = None
    sku: str = ""
    problem: str = ""


@dataclass(frozen=True)
class PortalBatch:
    """A batch made from the new-job page, and the photos left out of it, each named
    with why ("line 3: https://…: The server answered 404.")."""

    batch: Batch
    skipped: list[str]


def _portal_upload_store(*, tenant: Tenant, upload: UploadedFile) -> Asset:
    return _input_stored(tenant=tenant, source=_read_input(image_url="", upload=upload))


def batch_submit_portal(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    sources: Sequence[PhotoSource],
    preset: Preset | None = None,
    params: Mapping[str, Any] | None = None,
    name: str = "",
) -> PortalBatch:
    """Submit one job per photo as a batch, leaving out the photos that can't be used.

    Unlike `batch_submit` (the API's, all or nothing), a bad photo among good ones does
    not refuse the batch: a malformed URL, a refused host, a failed fetch or a file that
    is not an image is left out and named in `skipped`, and the others become jobs. What
    concerns every photo is still refused as a whole: the model, the preset and the
    parameters (checked first, nothing fetched), no usable photo at all, and a total
    price over the balance (checked on the usable photos before any job is created).
    A refused batch leaves no job, no hold and no stored photo.
    """
    limit = settings.BATCH_MAX_ITEMS
    if not sources:
        raise JobError(
            "validation_error",
            "image_url: paste the URL of a product photo or upload one.",
            field="image_url",
        )
    if len(sources) > limit:
        raise JobError(
            "validation_error",
            f"A batch takes at most {limit} photos; you gave {len(sources)}: split them.",
        )
    engine, _ = job_engine(tenant=tenant)
    spec = _model_for_job(model, engine)
    # Parameters wrong for every photo refuse the batch, field by field, before any fetch.
    job_resolve_params(
        tenant=tenant, spec=spec, preset=preset, overrides=params, upload_attached=True
    )
    given = {**(preset.params if preset else {}), **(params or {})}
    skipped: dict[int, str] = {}
    planned: dict[int, tuple[dict[str, Any], Quote]] = {}
    for index, source in enumerate(sources):
        url = source.image_url.strip()
        if source.problem:
            skipped[index] = f"{source.label}: {source.problem}"
            continue
        if len(source.sku.strip()) > SKU_MAX_LENGTH:
            skipped[index] = f"{source.label}: the sku is longer than {SKU_MAX_LENGTH} characters"
            continue
        try:
            # Each photo is resolved on its own: a drawn seed is drawn for each job.
            own = _with_sku(spec, given, source.sku.strip())
            resolved = catalog.resolve_params(
                spec,
                {**own, spec.image_param: url} if source.upload is None else own,
                attached=frozenset({spec.image_param}) if source.upload else frozenset(),
            )
        except catalog.ParamsError as e:
            skipped[index] = f"{source.label}: {e.errors.get(spec.image_param, e.message)}"
            continue
        planned[index] = (resolved, job_quote(tenant=tenant, spec=spec, params=resolved))
    urls = list(
        dict.fromkeys(sources[i].image_url.strip() for i in planned if not sources[i].upload)
    )
    fetched, refused = _batch_inputs_fetch(tenant=tenant, urls=urls)
    stored: dict[int, Asset] = {}
    try:
        for index in list(planned):
            source = sources[index]
            if source.upload is None:
                url = source.image_url.strip()
                if url in refused:
                    skipped[index] = f"{source.label}: {refused[url]}"
                else:
                    stored[index] = fetched[url]
                continue
            try:
                stored[index] = _portal_upload_store(tenant=tenant, upload=source.upload)
            except JobError as e:
                # "image: mug.jpg is larger than…", "image: notes.txt: This file isn't…":
                # both name the file already.
                reason = e.message.removeprefix("image: ")
                file_name = source.upload.name or ""
                named_file = bool(file_name) and reason.startswith(file_name)
                skipped[index] = reason if named_file else f"{source.label}: {reason}"
    except BaseException:
        _assets_discard([*fetched.values(), *stored.values()])
        raise
    named = [skipped[i] for i in sorted(skipped)]
    if not stored:
        _assets_discard(fetched.values())
        shown = "; ".join(named[:5]) + (f" (and {len(named) - 5} more)" if len(named) > 5 else "")
        raise JobError("validation_error", f"None of the photos could be used: {shown}")
    total = sum(planned[i][1].price for i in stored)
    short = partial(_batch_portal_short, total=total)
    balance = Tenant.objects.values_list("credit_balance", flat=True).get(pk=tenant.pk)
    if total > balance:
        _assets_discard([*fetched.values(), *stored.values()])
        raise short(balance=balance)
    batch = _batch_create(
        tenant=tenant,
        user=user,
        spec=spec,
        preset=preset,
        name=name,
        new_jobs=[
            _NewJob(
                params=planned[index][0],
                quote=planned[index][1],
                seed_drawn=_seed_drawn(spec, given),
                input=stored[index],
                source_url=sources[index].image_url.strip(),
                sku=sources[index].sku.strip(),
            )
            for index in sorted(stored)
        ],
        short=short,
    )
    return PortalBatch(batch=batch, skipped=named)


def _batch_portal_short(*, total: int, balance: int) -> JobError:
    return JobError(
        "insufficient_credits",
        f"This batch needs {total} credits; your balance is {balance}.",
    )


def _batch_short(*, total: int, balance: int, jobs: int) -> JobError:
    return JobError(
        "insufficient_credits",
        f"This batch of {jobs} job{'s' if jobs != 1 else ''} needs {total} credits and the "
        f"workspace has {balance}.",
    )
