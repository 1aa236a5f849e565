"""What the new-job page previews as the shop changes the form: the parameters a job
would run with, and the price of one job per photo on the page against the balance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import Tenant
from jobs import catalog
from jobs.models import Preset
from jobs.services.pricing import job_quote
from jobs.services.submit import job_resolve_params

# Shown instead of a number for a seed that is drawn again when the job is submitted.
SEED_DRAWN_LABEL = "random (drawn when you submit)"


@dataclass(frozen=True)
class PreviewQuote:
    """A job's preview: its resolved parameters (a drawn seed as `SEED_DRAWN_LABEL`), its
    output size if known, and the price of `count` such jobs against the balance."""

    params: dict[str, Any]
    output_size: tuple[int, int] | None
    price: int
    count: int
    total: int
    own_key: bool
    balance: int
    enough_credits: bool


def job_preview_quote(
    *,
    tenant: Tenant,
    spec: catalog.ModelSpec,
    preset: Preset | None,
    overrides: Mapping[str, Any],
    count: int,
) -> PreviewQuote:
    """What `count` jobs of `spec` with this preset and these overrides would run with
    and cost (the same validator and price as submitting; refused with a JobError).

    `count` is how many photos the page holds, one job each, kept between 1 and
    BATCH_MAX_ITEMS: the total is what is checked against the balance.
    """
    params = job_resolve_params(
        tenant=tenant, spec=spec, preset=preset, overrides=overrides, upload_attached=True
    )
    size = spec.output_size(params)
    quote = job_quote(tenant=tenant, spec=spec, params=params)
    balance = tenant.credit_balance
    count = max(1, min(count, settings.BATCH_MAX_ITEMS))
    total = quote.price * count
    # A drawn seed is drawn again at submission; the preview says so instead of a number.
    given_seed = overrides.get("seed") or (preset.params.get("seed") if preset else None)
    if "seed" in params and given_seed in (None, "-1", -1):
        params["seed"] = SEED_DRAWN_LABEL
    return PreviewQuote(
        params=params,
        output_size=size,
        price=quote.price,
        count=count,
        total=total,
        own_key=quote.own_key,
        balance=balance,
        enough_credits=balance >= total,
    )
