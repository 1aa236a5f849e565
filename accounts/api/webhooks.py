"""The REST API's webhooks: a workspace's endpoints, their deliveries, and the secret
that signs jobs' own `webhook_url` deliveries."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.authentication import request_workspace_required
from accounts.models import Tenant, User, WebhookDelivery, WebhookEndpoint
from productstudio.lib.errors import PROBLEMS, Problem, ProblemSerializer
from productstudio.lib.pagination import PAGE_PARAMETERS, page_of, paginate
from productstudio.lib.validation import unknown_fields_refuse

# -- webhooks: the workspace's endpoints, their deliveries, the per-job secret ----------

WEBHOOK_PROBLEMS = {
    **{code: PROBLEMS[code] for code in (400, 401, 404, 409)},
    # A signed-in member who is not an owner or admin.
    403: ProblemSerializer,
}


class WebhookEndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    event_types = serializers.ListField(
        child=serializers.CharField(),
        help_text="The event types sent here; empty: all of them, including future ones.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]
        extra_kwargs = {
            "id": {"help_text": "The endpoint's id."},
            "url": {"help_text": "Where events are POSTed."},
            "description": {"help_text": "What the endpoint is for, for people."},
            "enabled": {"help_text": "False once the receiver answered 410 Gone."},
            "disabled_at": {"help_text": "When it was disabled, or null."},
            "disabled_reason": {"help_text": "Why it was disabled."},
            "created_at": {"help_text": "When it was added."},
        }


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_…`): shown only in this response; keep it."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookEndpointCreateSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(
        help_text="An http(s) URL on the public internet; private addresses are refused."
    )
    event_types = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Any of job.succeeded, job.failed, batch.completed, credits.low; "
        "empty or absent: all.",
    )
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="For people, optional."
    )


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    payload = serializers.JSONField(help_text="The body sent, parsed.")
    endpoint_id = serializers.UUIDField(
        allow_null=True, help_text="The endpoint, or null for a job's own webhook_url."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint_id",
            "message_id",
            "event_type",
            "url",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "response_excerpt",
            "created_at",
            "completed_at",
            "payload",
        ]
        extra_kwargs = {
            "id": {"help_text": "The delivery's id."},
            "message_id": {"help_text": "The `webhook-id` header: the same on every retry."},
            "event_type": {"help_text": "The event's type."},
            "url": {"help_text": "Where it is sent."},
            "status": {"help_text": "pending (more attempts to come), succeeded or failed."},
            "attempts": {"help_text": "Attempts made so far."},
            "next_attempt_at": {"help_text": "When the next attempt is due, if pending."},
            "last_attempt_at": {"help_text": "When the last attempt started."},
            "last_status_code": {"help_text": "The HTTP status of the last answer, if any."},
            "last_error": {"help_text": "What went wrong last time."},
            "response_excerpt": {"help_text": "The start of the last answer's body."},
            "created_at": {"help_text": "When the event happened."},
            "completed_at": {"help_text": "When it succeeded or was given up."},
        }


class WebhookSecretSerializer(serializers.Serializer[Any]):
    secret = serializers.CharField(
        help_text="The workspace's `whsec_` secret that signs jobs' own webhook_url deliveries."
    )


_ENDPOINT_EXAMPLE = {
    "id": "5f0c1b8e-3f7d-4d0e-9a51-6a3f1f0f3b2c",
    "url": "https://shop.example.com/hooks/productstudio",
    "description": "Order system",
    "event_types": ["job.succeeded", "job.failed"],
    "enabled": True,
    "disabled_at": None,
    "disabled_reason": "",
    "created_at": "2026-11-24T10:15:00Z",
}
_SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
_DELIVERY_EXAMPLE = {
    "id": "0b7e3c5a-9d1f-4b8e-8f0a-2c6d4e1a7b90",
    "endpoint_id": _ENDPOINT_EXAMPLE["id"],
    "message_id": "msg_4f9d2c1b7a6e4d3f8b0a1c2e3d4f5a6b",
    "event_type": "webhook.test",
    "url": _ENDPOINT_EXAMPLE["url"],
    "status": "succeeded",
    "attempts": 1,
    "next_attempt_at": None,
    "last_attempt_at": "2026-11-24T10:16:00Z",
    "last_status_code": 200,
    "last_error": "",
    "response_excerpt": "ok",
    "created_at": "2026-11-24T10:16:00Z",
    "completed_at": "2026-11-24T10:16:00Z",
    "payload": {
        "type": "webhook.test",
        "timestamp": "2026-11-24T10:16:00Z",
        "data": {"endpoint_id": _ENDPOINT_EXAMPLE["id"], "message": "A test event…"},
    },
}
_CREATE_FIELDS = {"url", "event_types", "description"}


def _by(request: Request) -> User | None:
    # None: an API key, which acts for the whole workspace.
    return request.user if isinstance(request.user, User) else None


def _manager_tenant(request: Request) -> Tenant:
    """The caller's workspace, once the services agree the caller may manage its
    webhooks (refused there: ``forbidden``, a 403)."""
    tenant = request_workspace_required(request)
    services.webhook_manager_check(tenant=tenant, by=_by(request))
    return tenant


def _endpoints(tenant: Tenant) -> Any:
    return WebhookEndpoint.objects.for_tenant(tenant)


@extend_schema(
    methods=["GET"],
    operation_id="webhooks_list",
    parameters=PAGE_PARAMETERS,
    responses={
        200: page_of(WebhookEndpointSerializer(many=True), "WebhookEndpointPage"),
        **WEBHOOK_PROBLEMS,
    },
    examples=[
        OpenApiExample(
            "A page of endpoints",
            value={"next": None, "previous": None, "results": [_ENDPOINT_EXAMPLE]},
            response_only=True,
        )
    ],
)
@extend_schema(
    methods=["POST"],
    operation_id="webhooks_create",
    request=WebhookEndpointCreateSerializer,
    responses={201: WebhookEndpointCreatedSerializer, **WEBHOOK_PROBLEMS},
    examples=[
        OpenApiExample(
            "Jobs' results to the order system",
            value={
                "url": "https://shop.example.com/hooks/productstudio",
                "event_types": ["job.succeeded", "job.failed"],
                "description": "Order system",
            },
            request_only=True,
        ),
        OpenApiExample(
            "The new endpoint, with its secret (shown once)",
            value={**_ENDPOINT_EXAMPLE, "secret": _SECRET_EXAMPLE},
            response_only=True,
            status_codes=["201"],
        ),
    ],
)
@api_view(["GET", "POST"])
def webhooks_list(request: Request) -> Response:
    """GET: the workspace's webhook endpoints, newest first. POST: add one; the response
    carries its signing secret, shown only this once.

    An endpoint receives the event types it lists (all of them when the list is empty):
    `job.succeeded` and `job.failed` (`data` is the job as `GET /api/v1/jobs/<id>` shows
    it), `batch.completed`, and `credits.low` (`data`: `workspace`, `balance`, `held`,
    `threshold`, `buy_url`).

    Each delivery is a POST of `{"type", "timestamp", "data"}` (JSON) with the Standard
    Webhooks headers: `webhook-id` (the same on every retry: skip ids you have seen),
    `webhook-timestamp` (unix seconds of this attempt: refuse old ones) and
    `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
    `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of the
    `whsec_` secret. Any 2xx answer is success; 410 Gone disables the endpoint; a
    redirect is not followed (a failure); anything else, or no answer within
    `WEBHOOK_TIMEOUT_SECONDS`, is retried with exponential backoff for up to a day."""
    tenant = _manager_tenant(request)
    if request.method == "GET":
        return paginate(request, _endpoints(tenant), WebhookEndpointSerializer)
    data = request.data
    if not hasattr(data, "keys"):
        raise Problem(
            "validation_error", "Send a JSON object.", errors={"request": "not an object"}
        )
    unknown_fields_refuse(data, _CREATE_FIELDS)
    given = WebhookEndpointCreateSerializer(data=data)
    given.is_valid(raise_exception=True)
    try:
        created = services.webhook_endpoint_create(
            tenant=tenant,
            url=given.validated_data["url"],
            event_types=given.validated_data.get("event_types") or [],
            description=given.validated_data.get("description", ""),
            created_by=_by(request),
        )
    except services.WebhookError as e:
        raise Problem.of(e) from e
    body = WebhookEndpointSerializer(created.endpoint).data
    return Response({**body, "secret": created.secret}, status=201)


@extend_schema(
    methods=["GET"],
    operation_id="webhooks_retrieve",
    responses={200: WebhookEndpointSerializer, **WEBHOOK_PROBLEMS},
    examples=[OpenApiExample("An endpoint", value=_ENDPOINT_EXAMPLE, response_only=True)],
)
@extend_schema(
    methods=["DELETE"],
    operation_id="webhooks_destroy",
    responses={204: None, **WEBHOOK_PROBLEMS},
)
@api_view(["GET", "DELETE"])
def webhook_detail(request: Request, endpoint_id: str) -> Response:
    """GET: one endpoint (its secret is never shown again). DELETE: remove it with its
    delivery log; deliveries still pending are not sent."""
    tenant = _manager_tenant(request)
    endpoint = get_object_or_404(_endpoints(tenant), pk=endpoint_id)
    if request.method == "DELETE":
        services.webhook_endpoint_delete(
            tenant=tenant, endpoint_id=str(endpoint.pk), by=_by(request)
        )
        return Response(status=204)
    return Response(WebhookEndpointSerializer(endpoint).data)


@extend_schema(
    operation_id="webhooks_test",
    request=None,
    responses={201: WebhookDeliverySerializer, **WEBHOOK_PROBLEMS},
    examples=[
        OpenApiExample(
            "The receiver answered 200",
            value=_DELIVERY_EXAMPLE,
            response_only=True,
            status_codes=["201"],
        )
    ],
)
@api_view(["POST"])
def webhook_test(request: Request, endpoint_id: str) -> Response:
    """Send a `webhook.test` event to this endpoint now, signed like every event, and
    return its delivery with the outcome of the first attempt (a failed one is retried
    like any other). A disabled endpoint answers 409 `endpoint_disabled`."""
    tenant = _manager_tenant(request)
    endpoint = get_object_or_404(_endpoints(tenant), pk=endpoint_id)
    try:
        delivery = services.webhook_test_send(
            tenant=tenant, endpoint_id=str(endpoint.pk), by=_by(request)
        )
    except services.WebhookError as e:
        raise Problem.of(e) from e
    return Response(WebhookDeliverySerializer(delivery).data, status=201)


@extend_schema(
    operation_id="webhooks_deliveries_list",
    parameters=PAGE_PARAMETERS,
    responses={
        200: page_of(WebhookDeliverySerializer(many=True), "WebhookDeliveryPage"),
        **WEBHOOK_PROBLEMS,
    },
    examples=[
        OpenApiExample(
            "A page of deliveries",
            value={"next": None, "previous": None, "results": [_DELIVERY_EXAMPLE]},
            response_only=True,
        )
    ],
)
@api_view(["GET"])
def webhook_deliveries(request: Request, endpoint_id: str) -> Response:
    """The endpoint's deliveries, newest first: each message, its attempts so far, the
    last answer's status and first bytes, and when the next attempt is due."""
    tenant = _manager_tenant(request)
    endpoint = get_object_or_404(_endpoints(tenant), pk=endpoint_id)
    deliveries = WebhookDelivery.objects.for_tenant(tenant).filter(endpoint=endpoint)
    return paginate(request, deliveries, WebhookDeliverySerializer)


@extend_schema(
    operation_id="webhooks_secret_retrieve",
    responses={200: WebhookSecretSerializer, **WEBHOOK_PROBLEMS},
    examples=[OpenApiExample("The secret", value={"secret": _SECRET_EXAMPLE}, response_only=True)],
)
@api_view(["GET"])
def webhook_secret(request: Request) -> Response:
    """The workspace's signing secret for jobs' own `webhook_url` (the `webhook_url` of
    `POST /api/v1/jobs`): those deliveries carry the job's `job.succeeded` or
    `job.failed`, signed with this secret. Endpoints have secrets of their own."""
    tenant = _manager_tenant(request)
    return Response({"secret": services.webhook_workspace_secret(tenant=tenant, by=_by(request))})
