"""The API's batches: jobs submitted together (all or nothing) and followed as one."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_workspace_required
from accounts.models import Tenant
from jobs import services
from jobs.api.common import _refused, _user
from jobs.api.examples import BATCH_EXAMPLE
from jobs.api.serializers import BatchCreateSerializer, _valid
from jobs.models import Batch
from jobs.payloads import BatchDetailSerializer, BatchSerializer
from productstudio.lib.errors import PROBLEMS
from productstudio.lib.pagination import PAGE_PARAMETERS, page_of, paginate


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
            preset=services.preset_visible_get(tenant=tenant, value=data.get("preset")),
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
