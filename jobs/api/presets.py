"""The API's presets: the workspace's own (created, changed, deleted) and the system's
(read-only; copied to change)."""

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_workspace_required
from jobs import catalog, services
from jobs.api.common import FORBIDDEN, _bad_query, _user
from jobs.api.examples import PRESET_EXAMPLE
from jobs.api.serializers import PresetCreateSerializer, PresetUpdateSerializer, _valid
from jobs.models import Preset
from jobs.payloads import _absolute
from productstudio.lib.errors import PROBLEMS, Problem
from productstudio.lib.pagination import PAGE_PARAMETERS, page_of, paginate


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
