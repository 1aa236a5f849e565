"""The REST API's jobs and models: the catalog with prices, creating, reading and
canceling a workspace's jobs.

Authenticated by the workspace's API key; a session works too for a signed-in member,
who sees the workspace they last opened. Errors come in one shape (problem+json, see
`productstudio.errors`).
"""

import json
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import ApiKeyUser
from accounts.models import Tenant, User
from jobs import catalog, services
from jobs.models import Asset, Job, JobPrice, Preset
from productstudio.errors import PROBLEM_CONTENT_TYPE, Problem
from productstudio.pagination import PAGE_PARAMETERS, page_of, paginate


class AssetSerializer(serializers.ModelSerializer[Asset]):
    class Meta:
        model = Asset
        fields = ["id", "kind", "width", "height", "format", "byte_size", "sha256", "created_at"]


class JobSerializer(serializers.ModelSerializer[Job]):
    error = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()
    urls = serializers.SerializerMethodField()

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
            "outputs",
            "urls",
        ]

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

    def get_urls(self, job: Job) -> dict[str, str]:
        request = self.context.get("request")
        urls = {
            "self": reverse("api_job", args=[job.pk]),
            "cancel": reverse("api_job_cancel", args=[job.pk]),
        }
        if request is None:
            return urls
        return {name: request.build_absolute_uri(url) for name, url in urls.items()}

    def get_outputs(self, job: Job) -> list[dict[str, Any]]:
        outputs = [a for a in job.assets.all() if a.kind == "output"]
        return AssetSerializer(outputs, many=True).data  # type: ignore[return-value]


# Every error of the API (RFC 9457, `application/problem+json`).
ProblemSerializer = inline_serializer(
    "Problem",
    {
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text="Stable: validation_error, insufficient_credits…"),
        "errors": serializers.DictField(
            child=serializers.CharField(),
            required=False,
            help_text="What is wrong with each field.",
        ),
        "buy_url": serializers.URLField(required=False, help_text="With insufficient_credits."),
    },
)


class JobCreateSerializer(serializers.Serializer[Any]):
    """A new job: JSON, or multipart with an `image` file (`params` as a JSON string)."""

    model = serializers.CharField(help_text="A model's slug (GET /api/v1/models).")
    image_url = serializers.URLField(required=False, help_text="The product photo's URL.")
    image = serializers.ImageField(required=False, help_text="Or the photo itself (multipart).")
    preset = serializers.CharField(required=False, help_text="A preset's id or slug.")
    params = serializers.DictField(required=False, help_text="Any of the model's parameters.")


# Keyed by (status, media type): errors come as application/problem+json, not JSON.
PROBLEMS = {
    (status, PROBLEM_CONTENT_TYPE): ProblemSerializer for status in (400, 401, 402, 404, 409, 422)
}


def _tenant(request: Request) -> Tenant:
    if isinstance(request.user, ApiKeyUser):
        return request.user.tenant
    # A signed-in person uses the workspace they last opened in the portal.
    slug = request.session.get("workspace") if hasattr(request, "session") else None
    tenant = Tenant.objects.for_user(request.user).filter(slug=slug).first()  # type: ignore[arg-type]
    if tenant is None:
        raise NotFound("Open a workspace in the portal first, or use an API key.")
    return tenant


JOB_FIELDS = {"model", "image_url", "image", "preset", "params"}


def _job_data(job: Job, request: Request) -> Any:
    return JobSerializer(job, context={"request": request}).data


def _jobs(tenant: Tenant) -> Any:
    return Job.objects.for_tenant(tenant).select_related("tenant").prefetch_related("assets")


@extend_schema(
    methods=["GET"],
    operation_id="jobs_list",
    responses={
        200: page_of(JobSerializer(many=True), "JobPage"),
        **PROBLEMS,
    },
    parameters=PAGE_PARAMETERS,
)
@extend_schema(
    methods=["POST"],
    operation_id="jobs_create",
    request={"application/json": JobCreateSerializer, "multipart/form-data": JobCreateSerializer},
    responses={201: JobSerializer, **PROBLEMS},
)
@api_view(["GET", "POST"])
def jobs_list(request: Request) -> Response:
    """GET: the workspace's latest jobs. POST: create a job (JSON, or multipart with an
    `image` file)."""
    tenant = _tenant(request)
    if request.method == "POST":
        job = _job_create(request, tenant)
        return Response(_job_data(job, request), status=201)
    return paginate(request, _jobs(tenant), JobSerializer)


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
    unknown = sorted(set(data.keys()) - JOB_FIELDS - {"csrfmiddlewaretoken"})
    if unknown:
        errors = dict.fromkeys(unknown, "unknown field")
        raise Problem("validation_error", f"{unknown[0]}: unknown field.", errors=errors)
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
        )
    except services.JobError as e:
        if e.code == "insufficient_credits":
            buy = request.build_absolute_uri(reverse("credits", args=[tenant.slug]))
            raise Problem.of(e, buy_url=buy) from e
        raise Problem.of(e) from e


@extend_schema(operation_id="jobs_retrieve", responses={200: JobSerializer, **PROBLEMS})
@api_view(["GET"])
def job_retrieve(request: Request, job_id: str) -> Response:
    job = get_object_or_404(_jobs(_tenant(request)), pk=job_id)
    return Response(_job_data(job, request))


@extend_schema(operation_id="jobs_cancel", request=None, responses={200: JobSerializer, **PROBLEMS})
@api_view(["POST"])
def job_cancel(request: Request, job_id: str) -> Response:
    """Cancel a job that has not started (or waits for Segmind): its held credits come
    back. A job already running or done answers 409 `not_cancelable`."""
    job = get_object_or_404(_jobs(_tenant(request)), pk=job_id)
    if not services.job_cancel(job=job):
        job.refresh_from_db(fields=["status"])
        raise Problem(
            "not_cancelable", f"The job is {job.status.replace('_', ' ')}: it can't be canceled."
        )
    job.refresh_from_db()
    return Response(_job_data(job, request))


def _caller_tenant(request: Request) -> Tenant | None:
    """The caller's workspace when there is one (prices depend on it), else None."""
    try:
        return _tenant(request)
    except NotFound:
        return None


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
    tenant = _caller_tenant(request)
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


@extend_schema(operation_id="models_list", responses={200: OpenApiTypes.OBJECT, **PROBLEMS})
@api_view(["GET"])
def models_list(request: Request) -> Response:
    """The catalog: every model, whether this engine can run it, its price for the
    caller's workspace, and its parameters' schema."""
    return Response({"results": _catalog(request, list(catalog.all_models()))})


@extend_schema(operation_id="models_retrieve", responses={200: OpenApiTypes.OBJECT, **PROBLEMS})
@api_view(["GET"])
def model_retrieve(request: Request, slug: str) -> Response:
    spec = catalog.get_model(slug)
    if spec is None:
        raise NotFound(f"No model '{slug}'.")
    return Response(_catalog(request, [spec])[0])


@extend_schema(
    operation_id="models_resolve",
    # JSON only: a form cannot carry typed parameters, and the view refuses one.
    request={"application/json": OpenApiTypes.OBJECT},
    responses={200: OpenApiTypes.OBJECT, **PROBLEMS},
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
    tenant = _caller_tenant(request)
    if tenant is not None:
        # What a job with these parameters would hold, and whether the workspace has it.
        quote = services.job_quote(tenant=tenant, spec=spec, params=params)
        data["price"] = quote.price
        data["balance"] = tenant.credit_balance
        data["enough_credits"] = tenant.credit_balance >= quote.price
    return Response(data)
