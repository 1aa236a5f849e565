"""The API's jobs: listing them (with filters), creating one (JSON or multipart), reading,
canceling and rerunning one."""

import json
import re
import uuid
from datetime import datetime, time
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_workspace_required
from accounts.models import Tenant, User
from jobs import catalog, services
from jobs.api.common import _bad_query, _empty_filters, _refused, _user
from jobs.api.examples import (
    JOB_CANCELED_EXAMPLE,
    JOB_EXAMPLE,
    JOB_FAILED_EXAMPLE,
    JOB_ID,
    JOB_QUEUED_EXAMPLE,
    JOB_URLS,
    JOB_WAITING_EXAMPLE,
)
from jobs.api.serializers import JobCreateSerializer, JobRerunSerializer, _valid
from jobs.models import Batch, Job, JobStatus
from jobs.payloads import JobSerializer
from productstudio.lib.errors import PROBLEMS, Problem
from productstudio.lib.pagination import PAGE_PARAMETERS, page_of, paginate
from productstudio.lib.parsers import JSONParser
from productstudio.lib.validation import unknown_fields_refuse

JOB_FIELDS = {"model", "image_url", "image", "preset", "params", "webhook_url"}


def _job_data(job: Job, request: Request) -> Any:
    return JobSerializer(job, context={"request": request}).data


def _jobs(tenant: Tenant) -> Any:
    return Job.objects.for_tenant(tenant).select_related("tenant").prefetch_related("assets")


# -- lists' filters ------------------------------------------------------------------------


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
            preset=services.preset_visible_get(tenant=tenant, value=data.get("preset")),
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


# -- reruns ---------------------------------------------------------------------------------------


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
