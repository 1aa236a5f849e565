"""Cursor pagination for every list of the API (`?cursor=…&limit=…`), like Stripe's and
Replicate's: stable under inserts, opaque cursors, `next` / `previous` as full URLs."""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from productstudio.lib.errors import Problem

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _bad_cursor() -> Problem:
    return Problem(
        "validation_error",
        "cursor: not a cursor from this list's next or previous URL; start again without it.",
        errors={"cursor": "not a cursor from this list's next or previous URL"},
    )


class Cursor(CursorPagination):
    """DRF's cursor pagination, refusing a bad `limit` or `cursor` with a 400 that names
    it (DRF would answer 404, quietly use the default, or fail on a forged cursor)."""

    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    ordering: str | tuple[str, ...] = "-created_at"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get("limit")
        if raw is None:
            return DEFAULT_LIMIT
        short = len(raw) <= len(str(MAX_LIMIT))  # int() of a huge string is slow, then fails
        if not (short and raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT):
            rule = f"must be a whole number from 1 to {MAX_LIMIT}"
            raise Problem("validation_error", f"limit: {rule}.", errors={"limit": rule})
        return int(raw)

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise _bad_cursor() from None

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            # A cursor that decodes but whose position is not a value of the ordering
            # field (edited by hand) fails in the query's filter.
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise _bad_cursor() from None


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
    # DRF takes a tuple of fields too; some versions of its stubs say only a string.
    cast(Any, paginator).ordering = ordering
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
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"Items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
    ),
]


def page_of(serializer: serializers.BaseSerializer[Any], name: str) -> Any:
    """The schema of one page of a list, for `@extend_schema(responses=...)`; `serializer`
    describes the items (`Item(many=True)`)."""
    # A new list around the item: DRF rebuilds fields from their constructor's arguments,
    # so a help_text set on the given instance would be lost.
    item = getattr(serializer, "child", serializer)
    results: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=type(item)(), help_text="This page's items, in the list's order."
    )
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(
                allow_null=True, help_text="The next page, or null on the last."
            ),
            "previous": serializers.URLField(
                allow_null=True, help_text="The previous page, or null on the first."
            ),
            "results": results,
        },
    )
