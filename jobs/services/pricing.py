"""What a job costs and where it runs (the local engine, Segmind, or the workspace's own
Segmind key), before it is submitted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import Tenant
from jobs import catalog
from jobs.models import JobPrice


def job_engine(*, tenant: Tenant) -> tuple[catalog.Engine, bool]:
    """What runs the workspace's jobs, and whether with its own Segmind key: a workspace
    with its own key goes to Segmind even where the platform has none."""
    if tenant.has_own_segmind_key:
        return "segmind", True
    return catalog.current_engine(), False


@dataclass(frozen=True)
class Quote:
    """What a job would cost and where it would run, before it is submitted."""

    engine: catalog.Engine
    own_key: bool
    price: int


def job_quote(*, tenant: Tenant, spec: catalog.ModelSpec, params: Mapping[str, Any]) -> Quote:
    """The price and engine of a job of `spec` with these resolved parameters for
    `tenant`: what the portal and the API show before submitting, and what is held."""
    engine, own_key = job_engine(tenant=tenant)
    price = job_price(model=spec.slug, engine=engine, params=params, own_key=own_key)
    return Quote(engine=engine, own_key=own_key, price=price)


def job_prices(*, tenant: Tenant | None) -> dict[str, JobPrice | None]:
    """Each model's price for `tenant`'s engine (the platform's engine when None): the
    operators' row, else the engine's default (None: free, or the own key's fee applies),
    in one query: for the model cards and the API's catalog."""
    engine, own_key = job_engine(tenant=tenant) if tenant else (catalog.current_engine(), False)
    if own_key:
        return {spec.slug: None for spec in catalog.all_models()}
    return JobPrice.objects.for_engine(engine)


def prices_missing() -> list[catalog.ModelSpec]:
    """The platform's Segmind models that no operator has priced (they cost
    SEGMIND_DEFAULT_PRICE): what the admin warns about. Empty without a Segmind key."""
    if catalog.current_engine() != "segmind":
        return []
    priced = set(JobPrice.objects.filter(engine="segmind").values_list("model", flat=True))
    return [m for m in catalog.all_models() if m.runs_on("segmind") and m.slug not in priced]


def own_key_fee() -> int:
    """The platform's fee, in credits, for a job on the workspace's own Segmind key
    (Segmind bills the workspace for the rest): what such a job holds, whatever its model."""
    return int(settings.SEGMIND_OWN_KEY_FEE)


def job_price(*, model: str, engine: str, params: Mapping[str, Any], own_key: bool = False) -> int:
    """A job's price in credits, as operators set it (with no row: free on the local
    engine, SEGMIND_DEFAULT_PRICE on Segmind). A job on the workspace's own Segmind key
    pays Segmind itself: only the platform fee here."""
    if own_key:
        return own_key_fee()
    price = JobPrice.objects.for_job(model, engine)
    return price.for_params(params) if price is not None else 0
