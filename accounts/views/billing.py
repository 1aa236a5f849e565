"""The credits page (balance, ledger, usage, packs), buying a pack through Stripe
Checkout, the ledger's CSV export, and Stripe's webhook."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts import services
from accounts.decorators import workspace_view
from accounts.forms import BuyForm, LedgerFilterForm, ThresholdForm
from accounts.models import CheckoutSession, CheckoutStatus, CreditPack, Membership
from productstudio.lib.errors import Problem, problem_response
from productstudio.lib.parsers import BodyError, check_declared_length, check_depth

LEDGER_PAGE_SIZE = 25
CSV_COLUMNS = [
    "date",
    "kind",
    "amount",
    "balance_after",
    "held_after",
    "job",
    "payment_ref",
    "created_by",
    "memo",
]


def _ledger_filters(form: LedgerFilterForm) -> dict[str, Any]:
    # The valid filters apply even when another one is wrong; its error is shown.
    form.is_valid()
    return {name: value for name, value in form.cleaned_data.items() if value}


@workspace_view
def credits(request: HttpRequest, membership: Membership) -> HttpResponse:
    tenant = membership.tenant
    filter_form = LedgerFilterForm(request.GET)
    entries = services.credits_ledger(tenant=tenant, **_ledger_filters(filter_form))
    page = Paginator(entries.select_related("created_by", "job"), LEDGER_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # Model names and the jobs Segmind held: jobs' tags (jobs/templatetags/credits_page.py).
    usage = services.credits_usage_by_month(tenant=tenant)
    checkout = None
    if session_id := request.GET.get("session_id"):
        checkout = CheckoutSession.objects.for_tenant(tenant).filter(session_id=session_id).first()
    return render(
        request,
        "accounts/credits.html",
        {
            "page": page,
            "filter_form": filter_form,
            "filtered": any(request.GET.get(name) for name in filter_form.fields),
            "usage": usage,
            "packs": CreditPack.objects.on_sale(),
            "stripe_enabled": services.billing_stripe_enabled(),
            "contacts": services.billing_contacts(),
            "threshold_form": ThresholdForm(
                initial={"low_balance_threshold": tenant.low_balance_threshold}
            ),
            "checkout_result": request.GET.get("checkout", ""),
            "checkout": checkout,
            "checkout_completed": checkout is not None
            and checkout.status == CheckoutStatus.COMPLETED,
        },
    )


class _Echo:
    """A file-like object csv.writer writes into, handing each line back."""

    def write(self, value: str) -> str:
        return value


# Spreadsheets run a cell starting with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str | None) -> str:
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


@workspace_view
def credits_export(request: HttpRequest, membership: Membership) -> HttpResponseBase:
    tenant = membership.tenant
    form = LedgerFilterForm(request.GET)
    if not form.is_valid():
        errors = " ".join(str(e) for field in form.errors.values() for e in field)
        return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
    rows = (
        services.credits_ledger(tenant=tenant, **_ledger_filters(form))
        .values_list(
            "created_at",
            "kind",
            "amount",
            "balance_after",
            "held_after",
            "job_id",
            "payment_ref",
            "created_by__email",
            "memo",
        )
        .iterator(chunk_size=2000)
    )

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(CSV_COLUMNS)
        for created, kind, amount, balance, held, job_id, ref, email, memo in rows:
            yield writer.writerow(
                [
                    created.isoformat(),
                    kind,
                    amount,
                    balance,
                    held,
                    job_id or "",
                    _text_cell(ref),
                    _text_cell(email),
                    _text_cell(memo),
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{tenant.slug}-credits.csv"'
    return response


@require_POST
@workspace_view
def credits_threshold(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, f"low_balance_threshold: {' '.join(str(e) for e in errors)}")
        return redirect("credits", workspace=membership.tenant.slug)
    try:
        services.credits_threshold_set(
            tenant=membership.tenant,
            by=membership.user,
            threshold=form.cleaned_data["low_balance_threshold"],
        )
    except services.CreditError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, "Low-balance warning saved.")
    return redirect("credits", workspace=membership.tenant.slug)


@require_POST
@workspace_view
def credits_buy(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = BuyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "pack: choose one of the packs on sale.")
        return redirect("credits", workspace=membership.tenant.slug)
    try:
        started = services.checkout_start(
            tenant=membership.tenant, user=membership.user, pack_id=form.cleaned_data["pack"]
        )
    except services.BillingError as e:
        if e.code == "forbidden":
            raise PermissionDenied(e.message) from e
        messages.error(request, e.message)
        return redirect("credits", workspace=membership.tenant.slug)
    # 303: the browser follows with a GET to Stripe's payment page.
    response = HttpResponseRedirect(started.url)
    response.status_code = 303
    return response


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's deliveries: 400 only for an event that is not Stripe's (bad signature,
    stale timestamp) or a hostile body; anything verified is acknowledged, so Stripe stops
    retrying.

    A body over API_MAX_BODY_BYTES is refused from its Content-Length, unread, and one
    nested too deep before its signature is checked: the scan costs no more than the
    signature's HMAC, and then no body that could crash a JSON parser reaches Stripe's
    library, even signed with a leaked secret. Both are answered as problems (Stripe reads
    only the status)."""
    try:
        check_declared_length(request.META)
        payload = request.body  # at most the limit: the stream stops at Content-Length
        check_depth(payload)
    except BodyError as e:
        return problem_response(Problem(e.code, e.message, status=400))
    try:
        outcome = services.stripe_event_handle(
            payload=payload, signature=request.headers.get("Stripe-Signature", "")
        )
    except services.BillingError as e:
        return JsonResponse({"error": e.message}, status=400)
    return JsonResponse({"received": True, "outcome": outcome})
