"""The REST API's credits: the workspace's balance and its ledger."""

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.authentication import request_workspace_required
from accounts.models import CreditEntry, CreditKind
from productstudio.lib.errors import PROBLEMS, Problem
from productstudio.lib.pagination import PAGE_PARAMETERS, page_of, paginate

# -- credits -------------------------------------------------------------------------------


class CreditsSerializer(serializers.Serializer[Any]):
    balance = serializers.IntegerField(
        help_text="Credits the workspace has, those held by unfinished jobs included."
    )
    held = serializers.IntegerField(
        help_text="Credits held by jobs not finished yet: charged if they succeed, given "
        "back if not."
    )
    available = serializers.IntegerField(
        help_text="Credits new jobs can use: `balance` minus `held` (a ledger entry's "
        "`balance_after`)."
    )
    low_balance_threshold = serializers.IntegerField(
        help_text="Below this many available credits, the workspace's owners are warned."
    )
    buy_url = serializers.URLField(help_text="The page where the workspace buys credits.")


class CreditEntrySerializer(serializers.ModelSerializer[CreditEntry]):
    """One line of the workspace's credit ledger (append-only)."""

    job = serializers.UUIDField(
        source="job_id", read_only=True, allow_null=True, help_text="The job it is for, if any."
    )
    created_by = serializers.SerializerMethodField(
        help_text="The email of the person who made it (null: a job, a key or the system)."
    )

    class Meta:
        model = CreditEntry
        fields = [
            "id",
            "kind",
            "amount",
            "balance_after",
            "held_after",
            "job",
            "memo",
            "created_by",
            "created_at",
        ]
        extra_kwargs = {
            "id": {"help_text": "The entry's id."},
            "kind": {
                "help_text": "grant, purchase, hold (a job's price set aside), capture (spent), "
                "release (given back), refund or adjustment."
            },
            "amount": {"help_text": "Change to the available credits (negative: taken)."},
            "balance_after": {"help_text": "Available credits after it."},
            "held_after": {"help_text": "Held credits after it."},
            "memo": {"help_text": "Why it was made."},
            "created_at": {"help_text": "When it was made."},
        }

    def get_created_by(self, entry: CreditEntry) -> str | None:
        return entry.created_by.email if entry.created_by else None


@extend_schema(
    operation_id="credits_retrieve",
    responses={200: CreditsSerializer, **PROBLEMS},
    examples=[
        OpenApiExample(
            "Credits",
            value={
                "balance": 120,
                "held": 20,
                "available": 100,
                "low_balance_threshold": 10,
                "buy_url": "https://studio.example.com/w/olives-mugs/credits/",
            },
            response_only=True,
        )
    ],
)
@api_view(["GET"])
def credits_retrieve(request: Request) -> Response:
    """The workspace's credits: what it has, what unfinished jobs hold, what new jobs
    can use, and where to buy more."""
    tenant = request_workspace_required(request)
    data = {
        "balance": tenant.credit_balance + tenant.credit_held,
        "held": tenant.credit_held,
        "available": tenant.credit_balance,
        "low_balance_threshold": tenant.low_balance_threshold,
        "buy_url": request.build_absolute_uri(reverse("credits", args=[tenant.slug])),
    }
    return Response(CreditsSerializer(data).data)


@extend_schema(
    operation_id="credits_ledger",
    parameters=[
        *PAGE_PARAMETERS,
        OpenApiParameter(
            "kind", OpenApiTypes.STR, enum=CreditKind.values, description="Only this kind."
        ),
    ],
    responses={200: page_of(CreditEntrySerializer(many=True), "CreditEntryPage"), **PROBLEMS},
    examples=[
        OpenApiExample(
            "A job's price held, then charged",
            value={
                "next": None,
                "previous": None,
                "results": [
                    {
                        "id": 812,
                        "kind": "capture",
                        "amount": 0,
                        "balance_after": 96,
                        "held_after": 0,
                        "job": "8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6",
                        "memo": "",
                        "created_by": None,
                        "created_at": "2025-06-01T12:00:30Z",
                    },
                    {
                        "id": 811,
                        "kind": "hold",
                        "amount": -4,
                        "balance_after": 96,
                        "held_after": 4,
                        "job": "8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6",
                        "memo": "",
                        "created_by": "olive@example.com",
                        "created_at": "2025-06-01T12:00:00Z",
                    },
                ],
            },
            response_only=True,
        )
    ],
)
@api_view(["GET"])
def credits_ledger(request: Request) -> Response:
    """The workspace's credit ledger, newest first: every grant, purchase, hold, capture,
    release, refund and adjustment, with the totals after it."""
    tenant = request_workspace_required(request)
    kind = request.query_params.get("kind", "").strip()
    if kind and kind not in CreditKind.values:
        rule = f"'{kind}' is not a kind; use one of {', '.join(CreditKind.values)}"
        raise Problem("validation_error", f"kind: {rule}", errors={"kind": rule})
    entries = services.credits_ledger(tenant=tenant, kind=kind).select_related("created_by")
    return paginate(request, entries, CreditEntrySerializer)
