"""The API's assets: the workspace's images, and their download by a signed link that
needs no API key."""

import uuid
from typing import Any

from django.db.models import Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_workspace_required
from accounts.models import Tenant
from jobs import services
from jobs.api.common import _bad_query, _empty_filters
from jobs.api.examples import ASSET_EXAMPLE
from jobs.models import Asset, AssetKind, Job
from jobs.payloads import AssetSerializer
from productstudio.lib.errors import PROBLEMS, Problem, ProblemSerializer
from productstudio.lib.pagination import PAGE_PARAMETERS, page_of, paginate
from productstudio.lib.storage import stored_file_response


def _own_job(tenant: Tenant, value: str) -> Job | None:
    try:
        return Job.objects.for_tenant(tenant).filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return None


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
    try:
        response = stored_file_response(
            asset.file.storage,
            asset.file.name,
            content_type=asset.mime_type,
            as_attachment=True,
            filename=services.asset_filename(asset),
        )
    except FileNotFoundError:
        raise Problem("not_found", "This image's file is missing.") from None
    # Cached no longer than the link is valid.
    remaining = int(request.query_params["expires"]) - int(timezone.now().timestamp())
    response["Cache-Control"] = f"private, max-age={max(0, remaining)}"
    return response
