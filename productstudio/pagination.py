"""Cursor pagination for every list of the API (`?cursor=…&limit=…`), like Stripe's and
Replicate's: stable under inserts, opaque cursors, `next` / `previous` as full URLs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Cursor(CursorPagination):
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    ordering: str | tuple[str, ...] = "-created_at"


def paginate(
    request: Request,
    queryset: QuerySet[Any],
    serializer_class: type[serializers.BaseSerializer[Any]],
    *,
    ordering: str | tuple[str, ...] = ("-created_at", "-pk"),
    context: dict[str, Any] | None = None,
) -> Response:
    """One page of `queryset` as `{"next", "previous", "results"}`."""
    paginator = Cursor()
    paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, request)
    serializer = serializer_class(page, many=True, context={"request": request, **(context or {})})
    return paginator.get_paginated_response(serializer.data)


PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        OpenApiTypes.STR,
        description="Where to continue: the `cursor` of a `next` or `previous` URL.",
    ),
    OpenApiParameter(
        "limit",
        OpenApiTypes.INT,
        description=f"Items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
    ),
]


def page_of(serializer: serializers.BaseSerializer[Any], name: str) -> Any:
    """The schema of one page of a list, for `@extend_schema(responses=...)`."""
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(
                allow_null=True, help_text="The next page, or null on the last."
            ),
            "previous": serializers.URLField(
                allow_null=True, help_text="The previous page, or null on the first."
            ),
            "results": serializer,
        },
    )
