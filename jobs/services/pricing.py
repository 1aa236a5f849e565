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


def job_prices(*, tenant: Tenant) -> dict[str, JobPrice | None]:
    """Each model's price row for `tenant`'s engine (None: free, or the own key's fee
    applies), in one query: for the model cards and the API's catalog."""
    engine, own_key = job_engine(tenant=tenant)
    rows = {} if own_key else {p.model: p for p in JobPrice.objects.filter(engine=engine)}
    return {spec.slug: rows.get(spec.slug) for spec in catalog.all_models()}


def own_key_fee() -> int:
    """The platform's fee, in credits, for a job on the workspace's own Segmind key
    (Segmind bills the workspace for the rest): what such a job holds, whatever its model."""
    return int(settings.SEGMIND_OWN_KEY_FEE)


def job_price(*, model: str, engine: str, params: Mapping[str, Any], own_key: bool = False) -> int:
    """A job's price in credits, as operators set it (free when they set none). A job on
    the workspace's own Segmind key pays Segmind itself: only the platform fee here."""
    if own_key:
        return own_key_fee()
    price = JobPrice.objects.for_job(model, engine)
    return price.for_params(params) if price is not None else 0
