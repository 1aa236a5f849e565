"""The REST API's jobs and models: the catalog with prices, creating, reading and
canceling a workspace's jobs.

Authenticated by the workspace's API key; a session works too for a signed-in member,
who sees the workspace they last opened. Errors come in one shape (problem+json, see
`productstudio.lib.errors`).
"""

import json
import re
import uuid
from datetime import datetime, time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    parser_classes,
    permission_classes,
)
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_workspace, request_workspace_required
from accounts.models import Tenant, User
from jobs import catalog, services
from jobs.models import Asset, AssetKind, Batch, Job, JobPrice, JobStatus, Preset
from jobs.services import queue as queueing
from productstudio.lib.errors import PROBLEMS, Problem, ProblemSerializer
from productstudio.lib.pagination import PAGE_PARAMETERS, page_of, paginate
from productstudio.lib.parsers import JSONParser
from productstudio.lib.validation import UNKNOWN_FIELD, unknown_fields, unknown_fields_refuse


class AssetSerializer(serializers.ModelSerializer[Asset]):
    """An image of the workspace: a job's input or one of its outputs, with a link to
    download it that needs no API key and expires."""

    url = serializers.SerializerMethodField(
        help_text="Download link, no API key needed; valid until `expires_at`."
    )
    expires_at = serializers.SerializerMethodField(help_text="When `url` stops working.")

    class Meta:
        model = Asset
        fields = [
            "id",
            "kind",
            "job",
            "width",
            "height",
            "format",
            "byte_size",
            "sha256",
            "created_at",
            "url",
            "expires_at",
        ]
        extra_kwargs = {
            "id": {"help_text": "The asset's id."},
            "kind": {"help_text": "`input` (the product photo) or `output` (a result)."},
            "job": {"help_text": "The job it belongs to (an input shared by reruns: the first)."},
            "width": {"help_text": "Width in pixels."},
            "height": {"help_text": "Height in pixels."},
            "format": {"help_text": "JPEG, PNG or WEBP."},
            "byte_size": {"help_text": "Size of the file in bytes."},
            "sha256": {"help_text": "SHA-256 of the file, hex."},
            "created_at": {"help_text": "When it was stored."},
        }

    def _signed(self, asset: Asset) -> services.AssetUrl:
        # One signature per asset and response, shared by `url` and `expires_at`.
        cache: dict[Any, services.AssetUrl] = self.__dict__.setdefault("_signed_urls", {})
        if asset.pk not in cache:
            cache[asset.pk] = services.asset_download_url(asset=asset)
        return cache[asset.pk]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, asset: Asset) -> str:
        url = self._signed(asset).url
        request = self.context.get("request")
        if request is not None:
            return request.build_absolute_uri(url)
        # A webhook: this site's public address, unless the storage signed its own URL.
        return url if "://" in url else settings.SITE_URL + url

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_expires_at(self, asset: Asset) -> str:
        return str(serializers.DateTimeField().to_representation(self._signed(asset).expires_at))


JobQueueSerializer = inline_serializer(
    "JobQueuePlace",
    {
        "position": serializers.IntegerField(
            help_text="Its place in line: 1 is next. Segmind jobs queue per Segmind key (the "
            "platform's, or the workspace's own), in turns across workspaces; local jobs "
            "queue for the shared workers, in turns too."
        ),
        "ahead": serializers.IntegerField(help_text="Jobs that go before it."),
        "estimated_start_at": serializers.DateTimeField(
            help_text="When it should start: from its Segmind key's requests-a-minute budget "
            "(and any wait Segmind asked for after a 429), or from the local engine's "
            "recent times. An estimate: it moves as the line does."
        ),
    },
    allow_null=True,
)


class JobSerializer(serializers.ModelSerializer[Job]):
    """A job: one product photo made into an image by a model, its credits held until it
    finishes (charged if it succeeds, given back if not)."""

    error = serializers.SerializerMethodField(
        help_text="Why it failed: `code` (listed in the API's description) and `message`, "
        "for a person; null unless `failed`."
    )
    waiting = serializers.SerializerMethodField()
    queue = serializers.SerializerMethodField(
        help_text="A `queued` job's place in line and estimated start; null otherwise, and "
        "null in lists (GET /api/v1/jobs/<id> shows it)."
    )
    outputs = serializers.SerializerMethodField(
        help_text="The images it made, once `succeeded`; empty before."
    )
    urls = serializers.SerializerMethodField(
        help_text="`self`, `cancel` (POST) and `rerun` (POST): this job's routes."
    )
    batch = serializers.UUIDField(
        source="batch_id", read_only=True, allow_null=True, help_text="Its batch, if any."
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "model",
            "status",
            "params",
            "price",
            "created_at",
            "started_at",
            "completed_at",
            "error",
            "waiting",
            "queue",
            "outputs",
            "urls",
            "batch",
        ]
        extra_kwargs = {
            "id": {"help_text": "The job's id."},
            "model": {"help_text": "The model's slug."},
            "status": {
                "help_text": "`queued`, `running`, `waiting_for_provider` (Segmind is out of "
                "credit: see `waiting`), then `succeeded`, `failed` or `canceled`."
            },
            "params": {
                "help_text": "The parameters it runs with: the model's defaults, the preset's "
                "and the request's, checked (a seed of -1 is drawn)."
            },
            "price": {"help_text": "Credits held for it; charged only if it succeeds."},
            "created_at": {"help_text": "When it was created."},
            "started_at": {"help_text": "When it started running; null until then."},
            "completed_at": {"help_text": "When it finished; null until then."},
        }

    def get_error(self, job: Job) -> dict[str, str] | None:
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message}

    def get_waiting(self, job: Job) -> dict[str, Any] | None:
        """Why a `waiting_for_provider` job waits, since when, and when it gives up (then
        it fails with `provider_insufficient_credits` and nothing is charged)."""
        if not job.is_waiting_for_provider:
            return None
        # Formatted like the other times of the job.
        when = serializers.DateTimeField()
        gives_up_at = job.waiting_gives_up_at
        return {
            "code": "provider_insufficient_credits",
            "message": job.waiting_message,
            "since": when.to_representation(job.waiting_since) if job.waiting_since else None,
            "gives_up_at": when.to_representation(gives_up_at) if gives_up_at else None,
        }

    @extend_schema_field(JobQueueSerializer)
    def get_queue(self, job: Job) -> dict[str, Any] | None:
        # A few queries per job: shown for one job at a time, never for a list's rows.
        if job.status != JobStatus.QUEUED or isinstance(self.parent, serializers.ListSerializer):
            return None
        place = queueing.job_queue_place(job=job)
        if place is None:
            return None
        return {
            "position": place.position,
            "ahead": place.ahead,
            "estimated_start_at": serializers.DateTimeField().to_representation(
                place.estimated_start_at
            ),
        }

    def get_urls(self, job: Job) -> dict[str, str]:
        request = self.context.get("request")
        urls = {
            "self": reverse("api_job", args=[job.pk]),
            "cancel": reverse("api_job_cancel", args=[job.pk]),
            "rerun": reverse("api_job_rerun", args=[job.pk]),
        }
        if request is None:  # a webhook: absolute URLs from the site's public address
            return {name: settings.SITE_URL + url for name, url in urls.items()}
        return {name: request.build_absolute_uri(url) for name, url in urls.items()}

    @extend_schema_field(AssetSerializer(many=True))
    def get_outputs(self, job: Job) -> list[dict[str, Any]]:
        outputs = [a for a in job.assets.all() if a.kind == "output"]
        return AssetSerializer(outputs, many=True, context=self.context).data  # type: ignore[return-value]


class JobCreateSerializer(serializers.Serializer[Any]):
    """A new job: JSON, or multipart with an `image` file (`params` as a JSON string)."""

    model = serializers.CharField(help_text="A model's slug (GET /api/v1/models).")
    image_url = serializers.URLField(required=False, help_text="The product photo's URL.")
    image = serializers.ImageField(required=False, help_text="Or the photo itself (multipart).")
    preset = serializers.CharField(required=False, help_text="A preset's id or slug.")
    params = serializers.DictField(required=False, help_text="Any of the model's parameters.")
    webhook_url = serializers.URLField(
        required=False,
        help_text="Also send this job's `job.succeeded` / `job.failed` here, signed with the "
        "workspace's secret (GET /api/v1/webhooks/secret). Private addresses are refused.",
    )


ASSET_EXAMPLE = {
    "id": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
    "kind": "output",
    "job": "8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6",
    "width": 1280,
    "height": 768,
    "format": "JPEG",
    "byte_size": 182044,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "created_at": "2025-06-01T12:00:30Z",
    "url": "https://studio.example.com/api/v1/assets/0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d/"
    "download?expires=1748782830&signature=3xJ…",
    "expires_at": "2025-06-01T13:00:30Z",
}

JOB_ID = "8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6"
JOB_URLS = {
    "self": f"https://studio.example.com/api/v1/jobs/{JOB_ID}",
    "cancel": f"https://studio.example.com/api/v1/jobs/{JOB_ID}/cancel",
    "rerun": f"https://studio.example.com/api/v1/jobs/{JOB_ID}/rerun",
}
JOB_EXAMPLE: dict[str, Any] = {
    "id": JOB_ID,
    "model": "bria-product-packshot",
    "status": "succeeded",
    "params": {"background_color": "#FAFAFA", "content_moderation": True, "force_rmbg": False},
    "price": 4,
    "created_at": "2025-06-01T12:00:00Z",
    "started_at": "2025-06-01T12:00:01Z",
    "completed_at": "2025-06-01T12:00:30Z",
    "error": None,
    "waiting": None,
    "queue": None,
    "outputs": [ASSET_EXAMPLE],
    "urls": JOB_URLS,
    "batch": None,
}
JOB_QUEUED_EXAMPLE = {
    **JOB_EXAMPLE,
    "status": "queued",
    "started_at": None,
    "completed_at": None,
    "queue": {"position": 3, "ahead": 2, "estimated_start_at": "2025-06-01T12:00:04Z"},
    "outputs": [],
}
JOB_FAILED_EXAMPLE = {
    **JOB_EXAMPLE,
    "status": "failed",
    "error": {
        "code": "provider_failed",
        "message": "Segmind could not make the image: the input image has no product.",
    },
    "outputs": [],
}
JOB_WAITING_EXAMPLE = {
    **JOB_QUEUED_EXAMPLE,
    "status": "waiting_for_provider",
    "queue": None,
    "waiting": {
        "code": "provider_insufficient_credits",
        "message": "Segmind's account is out of credit; the job will be sent when it has "
        "credit again.",
        "since": "2025-06-01T12:00:00Z",
        "gives_up_at": "2025-06-02T12:00:00Z",
    },
}
JOB_CANCELED_EXAMPLE = {
    **JOB_QUEUED_EXAMPLE,
    "status": "canceled",
    "queue": None,
    "completed_at": "2025-06-01T12:00:05Z",
}


JOB_FIELDS = {"model", "image_url", "image", "preset", "params", "webhook_url"}


def _job_data(job: Job, request: Request) -> Any:
    return JobSerializer(job, context={"request": request}).data


def _jobs(tenant: Tenant) -> Any:
    return Job.objects.for_tenant(tenant).select_related("tenant").prefetch_related("assets")


def batch_event_data(*, batch_id: Any) -> Any:
    """A batch as `GET /api/v1/batches/<id>` shows it, for its `batch.completed` event."""
    return BatchDetailSerializer(Batch.objects.get(pk=batch_id)).data


def job_event_data(*, job_id: Any) -> Any:
    """A job as `GET /api/v1/jobs/<id>` shows it, for its webhook events (its URLs
    absolute from SITE_URL, since there is no request to take the host from)."""
    job = Job.objects.select_related("tenant").prefetch_related("assets").get(pk=job_id)
    return JobSerializer(job).data


# -- lists' filters ------------------------------------------------------------------------


def _bad_query(errors: dict[str, str]) -> Problem:
    detail = "; ".join(f"{name}: {rule}" for name, rule in errors.items())
    return Problem("validation_error", detail, errors=errors)


def _query_datetime(value: str) -> datetime | None:
    """An ISO 8601 time (or a date: its midnight) from a query string; naive ones are in
    the site's time zone."""
    text = value.strip()
    if "T" in text:
        # An offset's `+` arrives as a space when the caller did not encode it.
        text = re.sub(r" (\d{2}(?::?\d{2})?)$", r"+\1", text)
    try:
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _own_job(tenant: Tenant, value: str) -> Job | None:
    try:
        return Job.objects.for_tenant(tenant).filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return None


JOB_FILTERS = [
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        description="Only jobs in this status (`queued`, `running`, `waiting_for_provider`, "
        "`succeeded`, `failed`, `canceled`); several separated by commas.",
    ),
    OpenApiParameter("model", OpenApiTypes.STR, description="Only jobs of this model (its slug)."),
    OpenApiParameter("batch", OpenApiTypes.UUID, description="Only the jobs of this batch."),
    OpenApiParameter(
        "created_after",
        OpenApiTypes.DATETIME,
        description="Only jobs created after this time (ISO 8601; a date means its midnight).",
    ),
    OpenApiParameter(
        "created_before",
        OpenApiTypes.DATETIME,
        description="Only jobs created before this time (ISO 8601; a date means its midnight).",
    ),
]


def _empty_filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """Filters sent with no value: refused rather than read as "no filter", which a
    client building the query wrongly would never notice."""
    query = request.query_params
    return {
        name: "must not be empty" for name in names if name in query and not query[name].strip()
    }


def _jobs_filtered(request: Request, tenant: Tenant) -> Any:
    """The workspace's jobs narrowed by the list's filters; 400 naming each bad one."""
    jobs = _jobs(tenant)
    query = request.query_params
    errors = _empty_filters(
        request, ("status", "model", "batch", "created_after", "created_before")
    )
    if status := query.get("status", "").strip():
        wanted = [s.strip() for s in status.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in JobStatus.values]
        if unknown or not wanted:
            errors["status"] = f"'{(unknown or [status])[0]}' is not a status; use one of " + (
                ", ".join(JobStatus.values)
            )
        jobs = jobs.filter(status__in=wanted)
    if model := query.get("model", "").strip():
        if catalog.get_model(model) is None:
            errors["model"] = f"no model '{model}' (GET /api/v1/models lists them)"
        jobs = jobs.filter(model=model)
    if batch := query.get("batch", "").strip():
        try:
            found = Batch.objects.for_tenant(tenant).filter(pk=uuid.UUID(batch)).first()
        except ValueError:
            found = None
        if found is None:
            errors["batch"] = f"no batch '{batch}' in this workspace"
        jobs = jobs.filter(batch=found)
    for name, lookup in (("created_after", "gt"), ("created_before", "lt")):
        if text := query.get(name, "").strip():
            moment = _query_datetime(text)
            if moment is None:
                errors[name] = f"'{text}' is not a date or time (ISO 8601: 2025-06-01T12:00:00Z)"
            else:
                jobs = jobs.filter(**{f"created_at__{lookup}": moment})
    if errors:
        raise _bad_query(errors)
    return jobs


@extend_schema(
    methods=["GET"],
    operation_id="jobs_list",
    responses={
        200: page_of(JobSerializer(many=True), "JobPage"),
        **PROBLEMS,
    },
    parameters=[*PAGE_PARAMETERS, *JOB_FILTERS],
    examples=[
        OpenApiExample(
            "A page of jobs",
            value={
                "next": "https://studio.example.com/api/v1/jobs?cursor=cD0yMDI1LTA2LTAx",
                "previous": None,
                "results": [JOB_EXAMPLE, JOB_FAILED_EXAMPLE],
            },
            response_only=True,
        )
    ],
)
@extend_schema(
    methods=["POST"],
    operation_id="jobs_create",
    request={"application/json": JobCreateSerializer, "multipart/form-data": JobCreateSerializer},
    responses={201: JobSerializer, **PROBLEMS},
    examples=[
        OpenApiExample(
            "A packshot of a photo on the web",
            value={
                "model": "bria-product-packshot",
                "image_url": "https://shop.example.com/mug-red.jpg",
                "params": {"background_color": "#FAFAFA"},
            },
            request_only=True,
        ),
        OpenApiExample(
            "With a preset, and a webhook",
            value={
                "model": "bria-product-packshot",
                "image_url": "https://shop.example.com/mug-red.jpg",
                "preset": "house-white",
                "webhook_url": "https://shop.example.com/hooks/job-done",
            },
            request_only=True,
        ),
        OpenApiExample(
            "An uploaded photo",
            value={"model": "bria-product-packshot", "image": "(the photo's bytes)"},
            request_only=True,
            media_type="multipart/form-data",
        ),
        OpenApiExample(
            "The job, queued", value=JOB_QUEUED_EXAMPLE, response_only=True, status_codes=[201]
        ),
    ],
)
@api_view(["GET", "POST"])
@parser_classes([JSONParser, MultiPartParser])
def jobs_list(request: Request) -> Response:
    """GET: the workspace's latest jobs. POST: create a job (JSON, or multipart with an
    `image` file)."""
    tenant = request_workspace_required(request)
    if request.method == "POST":
        job = _job_create(request, tenant)
        return Response(_job_data(job, request), status=201)
    return paginate(request, _jobs_filtered(request, tenant), JobSerializer)


def _preset(tenant: Tenant, value: Any) -> Preset | None:
    """A preset named by id or slug, among the workspace's own and the system's (its own
    first, when a slug names both)."""
    if value in (None, ""):
        return None
    visible = Preset.objects.visible_to(tenant)
    text = str(value)
    # ASCII digits only: int() refuses "²", which isdigit() accepts.
    is_id = text.isascii() and text.isdigit() and len(text) < 19
    query = Q(slug=text) | Q(pk=int(text)) if is_id else Q(slug=text)
    preset = None
    # PostgreSQL refuses NUL in a query, and no slug has one.
    if "\x00" not in text:
        # Not by ordering on tenant_id: databases disagree on where NULL (system) sorts.
        preset = visible.filter(query, tenant=tenant).first() or visible.filter(query).first()
    if preset is None:
        raise Problem(
            "validation_error",
            f"preset: no preset '{text}' in this workspace.",
            errors={"preset": f"no preset '{text}' in this workspace"},
        )
    return preset


def _job_create(request: Request, tenant: Tenant) -> Job:
    data = request.data
    if not hasattr(data, "get"):
        raise Problem(
            "validation_error", "Send a JSON object.", errors={"request": "not an object"}
        )
    # A portal form posts its CSRF token along.
    unknown_fields_refuse(data, JOB_FIELDS | {"csrfmiddlewaretoken"})
    params = data.get("params") or {}
    if isinstance(params, str):  # multipart sends it as a JSON string
        try:
            params = json.loads(params)
        except ValueError:
            params = None
    if not isinstance(params, dict):
        raise Problem(
            "validation_error",
            "params: must be a JSON object.",
            errors={"params": "must be a JSON object"},
        )
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise Problem("validation_error", "model: choose a model.", errors={"model": "is required"})
    image = request.FILES.get("image")
    upload = image if isinstance(image, UploadedFile) else None
    image_url = data.get("image_url") or ""
    if not isinstance(image_url, str):
        raise Problem(
            "validation_error", "image_url: must be a URL.", errors={"image_url": "must be a URL"}
        )
    webhook_url = data.get("webhook_url") or ""
    if not isinstance(webhook_url, str):
        raise Problem(
            "validation_error",
            "webhook_url: must be a URL.",
            errors={"webhook_url": "must be a URL"},
        )
    try:
        return services.job_submit(
            tenant=tenant,
            # A key acts for the workspace, not for a person.
            user=request.user if isinstance(request.user, User) else None,
            model=model,
            image_url=image_url,
            upload=upload,
            preset=_preset(tenant, data.get("preset")),
            params=params,
            webhook_url=webhook_url,
        )
    except services.JobError as e:
        if e.code == "insufficient_credits":
            buy = request.build_absolute_uri(reverse("credits", args=[tenant.slug]))
            raise Problem.of(e, buy_url=buy) from e
        raise Problem.of(e) from e


@extend_schema(
    operation_id="jobs_retrieve",
    responses={200: JobSerializer, **PROBLEMS},
    examples=[
        OpenApiExample("Succeeded", value=JOB_EXAMPLE, response_only=True),
        OpenApiExample("Failed", value=JOB_FAILED_EXAMPLE, response_only=True),
        OpenApiExample("Waiting for Segmind", value=JOB_WAITING_EXAMPLE, response_only=True),
        OpenApiExample("Queued, third in line", value=JOB_QUEUED_EXAMPLE, response_only=True),
    ],
)
@api_view(["GET"])
def job_retrieve(request: Request, job_id: str) -> Response:
    """A job of the workspace: its status, parameters and price, its output images once
    it has succeeded (each with a download `url` that expires), or why it failed (`error`)
    or waits (`waiting`); while `queued`, its place in line and estimated start (`queue`).
    Poll it, or have a webhook tell you when it finishes."""
    job = get_object_or_404(_jobs(request_workspace_required(request)), pk=job_id)
    return Response(_job_data(job, request))


@extend_schema(
    operation_id="jobs_cancel",
    request=None,
    responses={200: JobSerializer, **PROBLEMS},
    examples=[OpenApiExample("Canceled", value=JOB_CANCELED_EXAMPLE, response_only=True)],
)
@api_view(["POST"])
def job_cancel(request: Request, job_id: str) -> Response:
    """Cancel a job that has not started (or waits for Segmind): its held credits come
    back. A job already running or done answers 409 `not_cancelable`."""
    job = get_object_or_404(_jobs(request_workspace_required(request)), pk=job_id)
    if not services.job_cancel(job=job):
        job.refresh_from_db(fields=["status"])
        raise Problem(
            "not_cancelable", f"The job is {job.status.replace('_', ' ')}: it can't be canceled."
        )
    job.refresh_from_db()
    return Response(_job_data(job, request))


def _price_data(price: JobPrice | None, *, own_key: bool) -> dict[str, Any]:
    if own_key:
        fee = services.job_price(model="", engine="segmind", params={}, own_key=True)
        return {"credits": fee, "credits_per_megapixel": 0, "own_key": True}
    return {
        "credits": price.credits if price else 0,
        "credits_per_megapixel": price.credits_per_megapixel if price else 0,
        "own_key": False,
    }


def _model_data(
    spec: catalog.ModelSpec, *, engine: catalog.Engine, own_key: bool, price: JobPrice | None
) -> dict[str, Any]:
    size = spec.output_size({})
    price_data = _price_data(price, own_key=own_key)
    if price is not None and not own_key:
        price_data["default_price"] = price.for_params(spec.defaults())
    else:
        price_data["default_price"] = price_data["credits"]
    return {
        "slug": spec.slug,
        "title": spec.title,
        "summary": spec.summary,
        "kind": spec.kind,
        "typical_seconds": spec.typical_seconds,
        "input_image_params": list(spec.input_image_params),
        "engine": engine,
        "available": spec.runs_on(engine),
        # In credits: `credits`, plus `credits_per_megapixel` for each started megapixel
        # of a model sized by `megapixel`; `default_price` is a job with the defaults.
        "price": price_data,
        "defaults": spec.defaults(),
        "output_size": {"width": size[0], "height": size[1]} if size else None,
        "params_schema": spec.json_schema(),
    }


def _catalog(request: Request, specs: list[catalog.ModelSpec]) -> list[dict[str, Any]]:
    tenant = request_workspace(request)
    if tenant is None:
        engine, own_key = catalog.current_engine(), False
        prices = {p.model: p for p in JobPrice.objects.filter(engine=engine)}
    else:
        engine, own_key = services.job_engine(tenant=tenant)
        prices = {k: v for k, v in services.job_prices(tenant=tenant).items() if v}
    return [
        _model_data(spec, engine=engine, own_key=own_key, price=prices.get(spec.slug))
        for spec in specs
    ]


# -- the catalog's shapes, for the schema (the views build plain dicts) -----------------


class ModelPriceSerializer(serializers.Serializer[Any]):
    credits = serializers.IntegerField(
        help_text="Credits per job (for a model sized by megapixel: its base)."
    )
    credits_per_megapixel = serializers.IntegerField(
        help_text="Credits added for each started megapixel of the output; 0 for most models."
    )
    own_key = serializers.BooleanField(
        help_text="The workspace runs jobs on its own Segmind key: Segmind bills it, and "
        "`credits` is only the platform's fee."
    )
    default_price = serializers.IntegerField(
        help_text="Credits for a job with the model's default parameters."
    )


class OutputSizeSerializer(serializers.Serializer[Any]):
    width = serializers.IntegerField(help_text="Width in pixels.")
    height = serializers.IntegerField(help_text="Height in pixels.")


class CatalogModelSerializer(serializers.Serializer[Any]):
    """A model of the catalog, as the caller's workspace would run it."""

    slug = serializers.CharField(help_text="Its name in jobs' `model` and in URLs.")
    title = serializers.CharField(help_text="Its name, for people.")
    summary = serializers.CharField(help_text="What it makes, in a sentence.")
    kind = serializers.ChoiceField(
        choices=["v2", "workflow"],
        help_text="`v2`: one Segmind model; `workflow`: a Segmind PixelFlow workflow.",
    )
    typical_seconds = serializers.FloatField(
        allow_null=True, help_text="How long a job usually takes on Segmind, if known."
    )
    input_image_params = serializers.ListField(
        child=serializers.CharField(),
        help_text="Its parameters that take a picture; the first is the product photo.",
    )
    engine = serializers.ChoiceField(
        choices=["local", "segmind"],
        help_text="The engine the caller's jobs run on: `segmind`, or `local` (this studio's "
        "own, for a few models).",
    )
    available = serializers.BooleanField(help_text="Whether `engine` can run this model.")
    price = ModelPriceSerializer(help_text="Its price for the caller's workspace, in credits.")
    defaults = serializers.DictField(
        help_text="The value of each parameter a job leaves out (those that have one)."
    )
    output_size = OutputSizeSerializer(
        allow_null=True, help_text="The size of its images with the defaults; null if it varies."
    )
    params_schema = serializers.DictField(
        help_text="Its parameters as a JSON Schema (2020-12): types, ranges, required ones."
    )


class ModelResolveRequestSerializer(serializers.Serializer[Any]):
    params = serializers.DictField(
        required=False,
        help_text="The parameters to check (the body itself is read as them when it has no "
        "`params`).",
    )


class ModelResolveSerializer(serializers.Serializer[Any]):
    model = serializers.CharField(help_text="The model's slug.")
    params = serializers.DictField(
        help_text="The parameters a job would store and send: checked, with the defaults."
    )
    output_size = OutputSizeSerializer(
        allow_null=True, help_text="The size of the image these parameters make, if known."
    )
    price = serializers.IntegerField(
        required=False, help_text="Credits a job with these parameters would hold."
    )
    balance = serializers.IntegerField(
        required=False, help_text="Credits the workspace has available."
    )
    enough_credits = serializers.BooleanField(
        required=False, help_text="Whether `balance` pays for `price`."
    )


MODEL_EXAMPLE = {
    "slug": "bria-product-packshot",
    "title": "Bria Product Packshot",
    "summary": "A clean marketplace packshot: background removed, centred.",
    "kind": "v2",
    "typical_seconds": 16.56,
    "input_image_params": ["image_url"],
    "engine": "segmind",
    "available": True,
    "price": {"credits": 4, "credits_per_megapixel": 0, "own_key": False, "default_price": 4},
    "defaults": {"background_color": "#FFFFFF", "content_moderation": True, "force_rmbg": False},
    "output_size": None,
    "params_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "image_url": {"type": "string", "format": "uri", "contentMediaType": "image/*"},
            "background_color": {
                "type": "string",
                "default": "#FFFFFF",
                "pattern": "^(transparent|#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6})$",
            },
            "content_moderation": {"type": "boolean", "default": True},
            "force_rmbg": {"type": "boolean", "default": False},
            "sku": {"type": "string"},
        },
        "required": ["image_url"],
        "additionalProperties": False,
    },
}


@extend_schema(
    operation_id="models_list",
    responses={200: page_of(CatalogModelSerializer(many=True), "CatalogModelPage"), **PROBLEMS},
    examples=[
        OpenApiExample(
            "The catalog",
            value={"next": None, "previous": None, "results": [MODEL_EXAMPLE]},
            response_only=True,
        )
    ],
)
@api_view(["GET"])
def models_list(request: Request) -> Response:
    """The catalog: every model, whether this engine can run it, its price for the
    caller's workspace, and its parameters' schema. One page holds the whole catalog:
    `next` and `previous` are always null."""
    models = _catalog(request, list(catalog.all_models()))
    return Response({"next": None, "previous": None, "results": models})


@extend_schema(
    operation_id="models_retrieve",
    responses={200: CatalogModelSerializer, **PROBLEMS},
    examples=[OpenApiExample("A model", value=MODEL_EXAMPLE, response_only=True)],
)
@api_view(["GET"])
def model_retrieve(request: Request, slug: str) -> Response:
    """A model of the catalog, as in the list: whether this engine can run it, its price
    for the caller's workspace, its defaults and its parameters' schema. An unknown
    slug answers 404 `not_found`."""
    spec = catalog.get_model(slug)
    if spec is None:
        raise NotFound(f"No model '{slug}'.")
    return Response(_catalog(request, [spec])[0])


@extend_schema(
    operation_id="models_resolve",
    # JSON only: a form cannot carry typed parameters, and the view refuses one.
    request={"application/json": ModelResolveRequestSerializer},
    responses={200: ModelResolveSerializer, **PROBLEMS},
    examples=[
        OpenApiExample(
            "A grey background",
            value={"params": {"background_color": "#EEEEEE"}},
            request_only=True,
        ),
        OpenApiExample(
            "What a job would run with",
            value={
                "model": "bria-product-packshot",
                "params": {
                    "background_color": "#EEEEEE",
                    "content_moderation": True,
                    "force_rmbg": False,
                },
                "output_size": None,
                "price": 4,
                "balance": 100,
                "enough_credits": True,
            },
            response_only=True,
        ),
    ],
)
@api_view(["POST"])
def model_resolve(request: Request, slug: str) -> Response:
    """Check parameters for a model and return what a job would store and send.

    The same validator as job submission: unknown names, wrong types and broken rules are
    refused (400, each error naming its field); missing optional parameters take their
    defaults; a seed of -1 is drawn. The product photo may be left out.
    """
    spec = catalog.get_model(slug)
    if spec is None:
        raise NotFound(f"No model '{slug}'.")
    if not isinstance(request.data, dict):
        raise Problem(
            "validation_error", "params: send a JSON object.", errors={"params": "not an object"}
        )
    given = request.data.get("params", request.data)
    if not isinstance(given, dict):
        raise Problem(
            "validation_error",
            "params: must be a JSON object.",
            errors={"params": "must be a JSON object"},
        )
    try:
        params = catalog.resolve_params(spec, given, attached=frozenset(spec.input_image_params))
    except catalog.ParamsError as e:
        raise Problem(e.code, e.message, errors=e.errors) from e
    size = spec.output_size(params)
    data: dict[str, Any] = {
        "model": spec.slug,
        "params": params,
        "output_size": {"width": size[0], "height": size[1]} if size else None,
    }
    tenant = request_workspace(request)
    if tenant is not None:
        # What a job with these parameters would hold, and whether the workspace has it.
        quote = services.job_quote(tenant=tenant, spec=spec, params=params)
        data["price"] = quote.price
        data["balance"] = tenant.credit_balance
        data["enough_credits"] = tenant.credit_balance >= quote.price
    return Response(data)


# -- shared by the resources below ------------------------------------------------------------


class StrictSerializer(serializers.Serializer[Any]):
    """A request body that refuses fields it does not know, naming them (a typo must not
    be ignored silently), nested objects included."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = unknown_fields(data, self.fields)
            if unknown:
                raise serializers.ValidationError(dict.fromkeys(unknown, UNKNOWN_FIELD))
            # DRF turns a number sent for a text field into text; the schema says string.
            not_text = sorted(
                name
                for name, field in self.fields.items()
                if type(field) is serializers.CharField
                and name in data
                and data[name] is not None
                and not isinstance(data[name], str)
            )
            if not_text:
                raise serializers.ValidationError(dict.fromkeys(not_text, "must be a string"))
        return super().to_internal_value(data)


def _valid(serializer_class: type[serializers.Serializer[Any]], request: Request) -> Any:
    """The request's JSON body, checked by `serializer_class` (400 naming each field)."""
    data = request.data
    if not isinstance(data, dict):
        raise Problem(
            "validation_error", "Send a JSON object.", errors={"request": "not an object"}
        )
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _user(request: Request) -> User | None:
    # A key acts for the workspace, not for a person.
    return request.user if isinstance(request.user, User) else None


def _refused(error: services.JobError, request: Request, tenant: Tenant) -> Problem:
    """A refused submission as a problem; `insufficient_credits` says where to buy."""
    if error.code == "insufficient_credits":
        buy = request.build_absolute_uri(reverse("credits", args=[tenant.slug]))
        return Problem.of(error, buy_url=buy)
    return Problem.of(error)


def _absolute(request: Request | None, urls: dict[str, str]) -> dict[str, str]:
    if request is None:  # a webhook: absolute URLs from the site's public address
        return {name: settings.SITE_URL + url for name, url in urls.items()}
    return {name: request.build_absolute_uri(url) for name, url in urls.items()}


FORBIDDEN = {403: ProblemSerializer}


# -- presets ------------------------------------------------------------------------------------


class PresetSerializer(serializers.ModelSerializer[Preset]):
    """A named set of parameters for one model: the workspace's own, or a system
    preset (read-only; copy it to change it)."""

    system = serializers.BooleanField(
        source="is_system", read_only=True, help_text="A system preset: read-only, for all."
    )
    urls = serializers.SerializerMethodField(help_text="`self`, and `copy` to make your own.")

    class Meta:
        model = Preset
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "model",
            "params",
            "backdrop",
            "system",
            "created_at",
            "updated_at",
            "urls",
        ]
        extra_kwargs = {
            "id": {"help_text": "The preset's id (jobs name a preset by id or slug)."},
            "slug": {"help_text": "Its name in URLs and in jobs' `preset`; unique per workspace."},
            "name": {"help_text": "Its name."},
            "description": {"help_text": "What it is for."},
            "model": {"help_text": "The model it is for (its slug)."},
            "params": {"help_text": "The parameters it fixes; jobs take the rest as defaults."},
            "backdrop": {"help_text": "The local engine's backdrop for scenes (blank: chosen)."},
            "created_at": {"help_text": "When it was created."},
            "updated_at": {"help_text": "When it was last changed."},
        }

    def get_urls(self, preset: Preset) -> dict[str, str]:
        urls = {
            "self": reverse("api_preset", args=[preset.pk]),
            "copy": reverse("api_preset_copy", args=[preset.pk]),
        }
        return _absolute(self.context.get("request"), urls)


class PresetCreateSerializer(StrictSerializer):
    model = serializers.CharField(help_text="The model it is for (its slug).")
    name = serializers.CharField(max_length=100, help_text="Its name (its slug follows it).")
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="What it is for."
    )
    params = serializers.DictField(
        required=False, help_text="Any of the model's parameters but the product photo."
    )
    backdrop = serializers.CharField(
        required=False, allow_blank=True, help_text="The local engine's backdrop for scenes."
    )


class PresetUpdateSerializer(StrictSerializer):
    name = serializers.CharField(required=False, max_length=100, help_text="A new name.")
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="A new description."
    )
    params = serializers.DictField(
        required=False, help_text="The parameters it fixes, replacing all of them."
    )
    backdrop = serializers.CharField(
        required=False, allow_blank=True, help_text="A new backdrop (blank: none)."
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and "model" in data:
            raise serializers.ValidationError(
                {"model": "a preset's model can't be changed; create a preset for that model"}
            )
        return super().to_internal_value(data)


PRESET_EXAMPLE = {
    "id": 42,
    "slug": "house-white",
    "name": "House white",
    "description": "Our shop's packshots",
    "model": "bria-product-packshot",
    "params": {"background_color": "#FAFAFA"},
    "backdrop": "",
    "system": False,
    "created_at": "2025-06-01T12:00:00Z",
    "updated_at": "2025-06-01T12:00:00Z",
    "urls": {
        "self": "https://studio.example.com/api/v1/presets/42",
        "copy": "https://studio.example.com/api/v1/presets/42/copy",
    },
}


def _preset_data(preset: Preset, request: Request) -> Any:
    return PresetSerializer(preset, context={"request": request}).data


@extend_schema(
    methods=["GET"],
    operation_id="presets_list",
    parameters=[
        *PAGE_PARAMETERS,
        OpenApiParameter("model", OpenApiTypes.STR, description="Only this model's presets."),
    ],
    responses={200: page_of(PresetSerializer(many=True), "PresetPage"), **PROBLEMS},
    examples=[
        OpenApiExample(
            "A page of presets",
            value={"next": None, "previous": None, "results": [PRESET_EXAMPLE]},
            response_only=True,
        )
    ],
)
@extend_schema(
    methods=["POST"],
    operation_id="presets_create",
    request=PresetCreateSerializer,
    responses={201: PresetSerializer, **PROBLEMS},
    examples=[
        OpenApiExample(
            "A packshot preset",
            value={
                "model": "bria-product-packshot",
                "name": "House white",
                "params": {"background_color": "#FAFAFA"},
            },
            request_only=True,
        ),
        OpenApiExample("The preset", value=PRESET_EXAMPLE, response_only=True, status_codes=[201]),
    ],
)
@api_view(["GET", "POST"])
def presets_list(request: Request) -> Response:
    """GET: the presets the workspace can use, its own and the system's (read-only),
    newest first; `?model=` keeps one model's. POST: save a preset of the workspace's
    own; its parameters are checked like a job's (400 naming each one at fault)."""
    tenant = request_workspace_required(request)
    if request.method == "POST":
        data = _valid(PresetCreateSerializer, request)
        try:
            preset = services.preset_create(
                tenant=tenant,
                user=_user(request),
                model=data["model"],
                name=data["name"],
                params=data.get("params", {}),
                description=data.get("description", ""),
                backdrop=data.get("backdrop", ""),
            )
        except services.PresetError as e:
            raise Problem.of(e) from e
        return Response(_preset_data(preset, request), status=201)
    presets = Preset.objects.visible_to(tenant)
    if model := request.query_params.get("model", "").strip():
        if catalog.get_model(model) is None:
            raise _bad_query({"model": f"no model '{model}' (GET /api/v1/models lists them)"})
        presets = presets.for_model(model)
    return paginate(request, presets, PresetSerializer)


@extend_schema(
    methods=["GET"],
    operation_id="presets_retrieve",
    responses={200: PresetSerializer, **PROBLEMS},
    examples=[OpenApiExample("A preset", value=PRESET_EXAMPLE, response_only=True)],
)
@extend_schema(
    methods=["PATCH"],
    operation_id="presets_update",
    request=PresetUpdateSerializer,
    responses={200: PresetSerializer, **FORBIDDEN, **PROBLEMS},
    examples=[
        OpenApiExample(
            "A new background",
            value={"params": {"background_color": "#FFFFFF"}},
            request_only=True,
        ),
        OpenApiExample(
            "The preset, changed",
            value={
                **PRESET_EXAMPLE,
                "params": {"background_color": "#FFFFFF"},
                "updated_at": "2025-06-02T09:30:00Z",
            },
            response_only=True,
        ),
    ],
)
@extend_schema(
    methods=["DELETE"],
    operation_id="presets_destroy",
    responses={204: None, **FORBIDDEN, **PROBLEMS},
)
@api_view(["GET", "PATCH", "DELETE"])
def preset_detail(request: Request, preset_id: int) -> Response:
    """GET: a preset. PATCH: change the workspace's own preset (the fields given; `params`
    replaces its parameters). DELETE: delete it (jobs made with it keep their
    parameters). System presets answer 403 `forbidden` to both: copy one instead."""
    tenant = request_workspace_required(request)
    preset = get_object_or_404(Preset.objects.visible_to(tenant), pk=preset_id)
    if request.method == "GET":
        return Response(_preset_data(preset, request))
    try:
        action = "edited" if request.method == "PATCH" else "deleted"
        # Before the body is checked: a system preset is refused whatever is sent.
        services.preset_own_check(tenant=tenant, preset=preset, action=action)
        if request.method == "DELETE":
            services.preset_delete(tenant=tenant, preset=preset)
            return Response(status=204)
        data = _valid(PresetUpdateSerializer, request)
        preset = services.preset_update(
            tenant=tenant,
            preset=preset,
            name=data.get("name", preset.name),
            params=data.get("params", preset.params),
            description=data.get("description", preset.description),
            backdrop=data.get("backdrop"),
        )
    except services.PresetError as e:
        raise Problem.of(e) from e
    return Response(_preset_data(preset, request))


@extend_schema(
    operation_id="presets_copy",
    request=None,
    responses={201: PresetSerializer, **PROBLEMS},
    examples=[
        OpenApiExample(
            "The copy, the workspace's own",
            value={
                **PRESET_EXAMPLE,
                "id": 43,
                "slug": "house-white-copy",
                "name": "House white (copy)",
                "urls": {
                    "self": "https://studio.example.com/api/v1/presets/43",
                    "copy": "https://studio.example.com/api/v1/presets/43/copy",
                },
            },
            response_only=True,
            status_codes=[201],
        )
    ],
)
@api_view(["POST"])
def preset_copy(request: Request, preset_id: int) -> Response:
    """Copy a preset (a system one, or the workspace's own) into a new preset of the
    workspace's own, to change freely."""
    tenant = request_workspace_required(request)
    preset = get_object_or_404(Preset.objects.visible_to(tenant), pk=preset_id)
    try:
        copy = services.preset_copy(tenant=tenant, user=_user(request), preset=preset)
    except services.PresetError as e:
        raise Problem.of(e) from e
    return Response(_preset_data(copy, request), status=201)


# -- reruns ---------------------------------------------------------------------------------------


class JobRerunSerializer(StrictSerializer):
    params = serializers.DictField(
        required=False,
        help_text="Parameters to change; the others are the job's (a drawn seed is drawn "
        "again unless `seed` is given).",
    )


@extend_schema(
    operation_id="jobs_rerun",
    request=JobRerunSerializer,
    responses={201: JobSerializer, **PROBLEMS},
    examples=[
        OpenApiExample("As it was", value={}, request_only=True),
        OpenApiExample(
            "Another background",
            value={"params": {"background_color": "#000000"}},
            request_only=True,
        ),
        OpenApiExample(
            "The new job, queued",
            value={
                **JOB_QUEUED_EXAMPLE,
                "id": "9e0f1a2b-3c4d-4e5f-8a81-92a3b4c5d6e7",
                "params": {**JOB_EXAMPLE["params"], "background_color": "#000000"},
                "urls": {
                    name: url.replace(JOB_ID, "9e0f1a2b-3c4d-4e5f-8a81-92a3b4c5d6e7")
                    for name, url in JOB_URLS.items()
                },
            },
            response_only=True,
            status_codes=[201],
        ),
    ],
)
@api_view(["POST"])
def job_rerun(request: Request, job_id: str) -> Response:
    """A new job like this one: the same model, product photo (the one stored, not
    fetched again), preset and parameters, with `params` changed if given. A seed that
    was drawn at random is drawn again. The new job holds its own credits (402
    `insufficient_credits` with `buy_url` when the workspace has too few)."""
    tenant = request_workspace_required(request)
    job = get_object_or_404(
        Job.objects.for_tenant(tenant).select_related("tenant", "input_asset", "preset"),
        pk=job_id,
    )
    data = _valid(JobRerunSerializer, request)
    try:
        rerun = services.job_rerun(job=job, user=_user(request), params=data.get("params"))
    except services.JobError as e:
        raise _refused(e, request, tenant) from e
    return Response(_job_data(rerun, request), status=201)


# -- batches ----------------------------------------------------------------------------------


BatchProgressSerializer = inline_serializer(
    "BatchProgress",
    {
        "total": serializers.IntegerField(help_text="Jobs in the batch."),
        **{
            status.value: serializers.IntegerField(help_text=f"Jobs {status.label.lower()}.")
            for status in JobStatus
        },
        "done": serializers.IntegerField(help_text="Jobs finished: succeeded, failed, canceled."),
        "percent": serializers.IntegerField(help_text="Share of jobs done, 0 to 100."),
    },
)


class BatchSerializer(serializers.ModelSerializer[Batch]):
    """Jobs submitted together, followed as one."""

    progress = serializers.SerializerMethodField(help_text="Its jobs counted by status.")
    urls = serializers.SerializerMethodField(
        help_text="`self`, and `jobs`: the jobs list filtered by this batch."
    )

    class Meta:
        model = Batch
        fields = ["id", "name", "created_at", "completed_at", "progress", "urls"]
        extra_kwargs = {
            "id": {"help_text": "The batch's id."},
            "name": {"help_text": "Its name, if it was given one."},
            "created_at": {"help_text": "When it was submitted."},
            "completed_at": {"help_text": "When its last job finished; null until then."},
        }

    @extend_schema_field(BatchProgressSerializer)
    def get_progress(self, batch: Batch) -> dict[str, int]:
        return batch.progress()

    def get_urls(self, batch: Batch) -> dict[str, str]:
        urls = {
            "self": reverse("api_batch", args=[batch.pk]),
            "jobs": f"{reverse('api_jobs')}?{urlencode({'batch': batch.pk})}",
        }
        return _absolute(self.context.get("request"), urls)


class BatchDetailSerializer(BatchSerializer):
    jobs = serializers.SerializerMethodField(help_text="Its jobs' ids, in the items' order.")
    estimated_finish_at = serializers.SerializerMethodField(
        help_text="When its last job should be done: its last queued job's estimated start "
        "(see a job's `queue`) plus the model's usual time. An estimate; null once it is "
        "done, or while its only unfinished jobs wait for Segmind (`waiting_for_provider`)."
    )

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "jobs", "estimated_finish_at"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_estimated_finish_at(self, batch: Batch) -> str | None:
        finish = queueing.batch_finish_estimate(batch=batch)
        return serializers.DateTimeField().to_representation(finish) if finish else None

    def get_jobs(self, batch: Batch) -> list[str]:
        ids = batch.jobs.order_by("created_at", "pk").values_list("pk", flat=True)
        return [str(pk) for pk in ids]


class BatchItemSerializer(StrictSerializer):
    image_url = serializers.URLField(
        help_text="The product photo's URL; fetched and checked when the batch is created."
    )
    params = serializers.DictField(
        required=False, help_text="This item's parameters, over the batch's."
    )


class BatchCreateSerializer(StrictSerializer):
    model = serializers.CharField(help_text="A model's slug (GET /api/v1/models), for every item.")
    preset = serializers.CharField(
        required=False, help_text="A preset's id or slug, for every item."
    )
    params = serializers.DictField(
        required=False, help_text="Parameters for every item (an item's own win)."
    )
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="A name to know it by."
    )
    items = BatchItemSerializer(
        many=True, help_text="The photos: 1 to BATCH_MAX_ITEMS (100 by default), one job each."
    )


BATCH_EXAMPLE = {
    "id": "3f1c2a9e-5b7d-4c8e-9a10-2b3c4d5e6f70",
    "name": "Summer mugs",
    "created_at": "2025-06-01T12:00:00Z",
    "completed_at": None,
    "progress": {
        "total": 2,
        "queued": 1,
        "running": 1,
        "waiting_for_provider": 0,
        "succeeded": 0,
        "failed": 0,
        "canceled": 0,
        "done": 0,
        "percent": 0,
    },
    "urls": {
        "self": "https://studio.example.com/api/v1/batches/3f1c2a9e-5b7d-4c8e-9a10-2b3c4d5e6f70",
        "jobs": "https://studio.example.com/api/v1/jobs?batch=3f1c2a9e-5b7d-4c8e-9a10-2b3c4d5e6f70",
    },
    "jobs": ["8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6", "9e0f1a2b-3c4d-4e5f-8a81-92a3b4c5d6e7"],
    "estimated_finish_at": "2025-06-01T12:00:45Z",
}


def _batches(tenant: Tenant) -> Any:
    return Batch.objects.for_tenant(tenant).with_progress()


@extend_schema(
    methods=["GET"],
    operation_id="batches_list",
    parameters=PAGE_PARAMETERS,
    responses={200: page_of(BatchSerializer(many=True), "BatchPage"), **PROBLEMS},
    examples=[
        OpenApiExample(
            "A page of batches",
            value={
                "next": None,
                "previous": None,
                "results": [
                    {
                        k: v
                        for k, v in BATCH_EXAMPLE.items()
                        if k not in ("jobs", "estimated_finish_at")
                    }
                ],
            },
            response_only=True,
        )
    ],
)
@extend_schema(
    methods=["POST"],
    operation_id="batches_create",
    request=BatchCreateSerializer,
    responses={201: BatchDetailSerializer, **PROBLEMS},
    examples=[
        OpenApiExample(
            "Two mugs, one scene",
            value={
                "model": "ai-product-photography",
                "name": "Summer mugs",
                "params": {"prompt": "on a sunny kitchen table"},
                "items": [
                    {"image_url": "https://shop.example.com/mug-red.jpg"},
                    {
                        "image_url": "https://shop.example.com/mug-blue.jpg",
                        "params": {"prompt": "on a beach towel"},
                    },
                ],
            },
            request_only=True,
        ),
        OpenApiExample("The batch", value=BATCH_EXAMPLE, response_only=True, status_codes=[201]),
    ],
)
@api_view(["GET", "POST"])
def batches_list(request: Request) -> Response:
    """GET: the workspace's batches, newest first, with their progress. POST: one job
    per item, all or nothing: every item is checked first (each error names its item,
    e.g. `items.3.image_url`), then the workspace must be able to pay for all of them
    (402 `insufficient_credits` otherwise), then every photo is fetched; only then are
    the jobs created, each holding its price. The request waits for the photos."""
    tenant = request_workspace_required(request)
    if request.method == "GET":
        return paginate(request, _batches(tenant), BatchSerializer)
    data = _valid(BatchCreateSerializer, request)
    items = [
        services.BatchItem(image_url=item["image_url"], params=item.get("params", {}))
        for item in data["items"]
    ]
    try:
        batch = services.batch_submit(
            tenant=tenant,
            user=_user(request),
            model=data["model"],
            items=items,
            preset=_preset(tenant, data.get("preset")),
            params=data.get("params", {}),
            name=data.get("name", ""),
        )
    except services.JobError as e:
        raise _refused(e, request, tenant) from e
    created = _batches(tenant).get(pk=batch.pk)
    return Response(BatchDetailSerializer(created, context={"request": request}).data, status=201)


@extend_schema(
    operation_id="batches_retrieve",
    responses={200: BatchDetailSerializer, **PROBLEMS},
    examples=[OpenApiExample("A batch", value=BATCH_EXAMPLE, response_only=True)],
)
@api_view(["GET"])
def batch_retrieve(request: Request, batch_id: str) -> Response:
    """A batch: its progress, `completed_at` once its last job finished, and its jobs."""
    batch = get_object_or_404(_batches(request_workspace_required(request)), pk=batch_id)
    return Response(BatchDetailSerializer(batch, context={"request": request}).data)


# -- assets ---------------------------------------------------------------------------------------


@extend_schema(
    operation_id="assets_list",
    parameters=[
        *PAGE_PARAMETERS,
        OpenApiParameter(
            "kind", OpenApiTypes.STR, enum=AssetKind.values, description="Inputs or outputs."
        ),
        OpenApiParameter(
            "job", OpenApiTypes.UUID, description="Only this job's: its input and outputs."
        ),
    ],
    responses={200: page_of(AssetSerializer(many=True), "AssetPage"), **PROBLEMS},
    examples=[
        OpenApiExample(
            "A page of images",
            value={"next": None, "previous": None, "results": [ASSET_EXAMPLE]},
            response_only=True,
        )
    ],
)
@api_view(["GET"])
def assets_list(request: Request) -> Response:
    """The workspace's images, newest first: product photos (`input`) and results
    (`output`), each with a download `url` that expires."""
    tenant = request_workspace_required(request)
    assets = Asset.objects.for_tenant(tenant)
    errors = _empty_filters(request, ("kind", "job"))
    if kind := request.query_params.get("kind", "").strip():
        if kind not in AssetKind.values:
            errors["kind"] = f"'{kind}' is not a kind; use input or output"
        assets = assets.filter(kind=kind)
    if job_id := request.query_params.get("job", "").strip():
        job = _own_job(tenant, job_id)
        if job is None:
            errors["job"] = f"no job '{job_id}' in this workspace"
        else:
            # A rerun's input is the photo of the job it reran.
            assets = assets.filter(Q(job=job) | Q(pk=job.input_asset_id))
    if errors:
        raise _bad_query(errors)
    return paginate(request, assets, AssetSerializer)


@extend_schema(
    operation_id="assets_retrieve",
    responses={200: AssetSerializer, **PROBLEMS},
    examples=[OpenApiExample("An output", value=ASSET_EXAMPLE, response_only=True)],
)
@api_view(["GET"])
def asset_retrieve(request: Request, asset_id: str) -> Response:
    """An image, with a fresh download `url`, valid until `expires_at`."""
    asset = get_object_or_404(
        Asset.objects.for_tenant(request_workspace_required(request)), pk=asset_id
    )
    return Response(AssetSerializer(asset, context={"request": request}).data)


class _AnyAccept(BaseContentNegotiation):
    """A download's errors are JSON whatever the client accepts (`image/*` included)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


def _any_accept(view: Any) -> Any:
    view.cls.content_negotiation_class = _AnyAccept
    return view


@extend_schema(
    operation_id="assets_download",
    auth=[],
    parameters=[
        OpenApiParameter("expires", OpenApiTypes.INT, required=True, description="From `url`."),
        OpenApiParameter("signature", OpenApiTypes.STR, required=True, description="From `url`."),
    ],
    responses={
        (200, "image/*"): OpenApiTypes.BINARY,
        404: ProblemSerializer,
        410: ProblemSerializer,
    },
    examples=[
        OpenApiExample(
            "The image",
            summary="The image's bytes (JPEG, PNG or WEBP), as an attachment",
            value="(the image's bytes)",
            response_only=True,
            media_type="image/*",
        )
    ],
)
@_any_accept
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def asset_download(request: Request, asset_id: str) -> FileResponse:
    """An image's bytes, with its content type and file name. No API key: the link's
    signature is the permission. A link past its expiry answers 410 `url_expired`
    (get the asset again for a fresh one); one not signed by us answers 404."""
    try:
        asset = services.asset_download_check(
            asset_id=asset_id,
            expires=request.query_params.get("expires", ""),
            signature=request.query_params.get("signature", ""),
        )
    except services.AssetUrlError as e:
        raise Problem.of(e) from e
    response = FileResponse(
        asset.file.open("rb"),
        content_type=asset.mime_type,
        as_attachment=True,
        filename=services.asset_filename(asset),
    )
    # Cached no longer than the link is valid.
    remaining = int(request.query_params["expires"]) - int(timezone.now().timestamp())
    response["Cache-Control"] = f"private, max-age={max(0, remaining)}"
    return response
