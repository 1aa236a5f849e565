"""The operators' audit trail, and its CSV export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponseBadRequest,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.urls import URLPattern, path

from accounts.models import (
    OperatorAction,
)


class _Echo:
    """A file-like that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: str) -> str:
    # A cell starting like a formula would run in a spreadsheet: quote it as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


CSV_COLUMNS = [
    "at",
    "actor_email",
    "action",
    "action_label",
    "tenant_slug",
    "tenant_name",
    "target",
    "amount",
    "reason",
    "details",
]


def _csv_rows(queryset: QuerySet[OperatorAction]) -> Iterator[list[str]]:
    yield CSV_COLUMNS
    for row in queryset.iterator(chunk_size=500):
        amount = row.details.get("amount") if isinstance(row.details, dict) else None
        yield [
            row.at.isoformat(),
            _csv_cell(row.actor_email),
            row.action,
            row.get_action_display(),
            _csv_cell(row.tenant_slug),
            _csv_cell(row.tenant_name),
            _csv_cell(row.target),
            str(amount) if isinstance(amount, int) else "",
            _csv_cell(row.reason),
            _csv_cell(json.dumps(row.details, sort_keys=True)),
        ]


@admin.register(OperatorAction)
class OperatorActionAdmin(admin.ModelAdmin):
    """The operators' audit trail: read-only for everyone (superusers included), filtered
    and searched here, exported as CSV with the same filters."""

    list_display = ["at", "actor_email", "action", "tenant_name", "target", "reason"]
    # Only the operators and workspaces that appear in the trail are offered.
    list_filter = [
        "action",
        ("tenant", admin.RelatedOnlyFieldListFilter),
        ("actor", admin.RelatedOnlyFieldListFilter),
        "at",
    ]
    search_fields = ["actor_email", "tenant_name", "tenant_slug", "target", "reason"]
    date_hierarchy = "at"
    list_select_related = ["tenant", "actor"]
    change_list_template = "admin/accounts/operatoraction/change_list.html"
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_view),
            name="accounts_operatoraction_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The changelist's rows, with its filters and search, as a streamed CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter in the query string.")
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in _csv_rows(changelist.queryset)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="operator-actions.csv"'
        return response
