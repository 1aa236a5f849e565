"""Segmind keys (the platform's, or a workspace's own) and each key's request budget as
operators see it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, When
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Tenant
from jobs.engines.segmind import client as segmind
from jobs.engines.segmind import ratelimit
from jobs.models import Job, SegmindKeyBudget


@dataclass(frozen=True)
class SegmindKey:
    """A Segmind API key and whose it is. `key_id` names it in the database, in logs and
    in emails; the key itself stays in memory."""

    key: str = field(repr=False)
    key_id: str
    # The workspace whose own key it is; None for the platform's key.
    tenant_id: int | None
    last4: str = ""

    @property
    def own(self) -> bool:
        return self.tenant_id is not None


def segmind_key_id(key: str) -> str:
    """A digest naming a Segmind key without revealing it: keyed with SECRET_KEY, so the
    id cannot be used to test guesses of the key."""
    secret = f"productstudio.segmind-key-id:{settings.SECRET_KEY}".encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:24]


def segmind_key_for(*, tenant: Tenant | None) -> SegmindKey | None:
    """The workspace's own Segmind key, or with None the platform's; None when there is
    none (or the workspace's can no longer be decrypted)."""
    if tenant is None:
        key = settings.SEGMIND_API_KEY
        return SegmindKey(key=key, key_id=segmind_key_id(key), tenant_id=None) if key else None
    key = account_services.segmind_key_get(tenant=tenant)
    if not key:
        return None
    last4 = tenant.segmind_key_last4 or key[-4:]
    return SegmindKey(key=key, key_id=segmind_key_id(key), tenant_id=tenant.pk, last4=last4)


def _budget_gate(budget: SegmindKeyBudget) -> ratelimit.KeyGate:
    rate = ratelimit.Rate(budget.limit, budget.window_seconds)
    return ratelimit.KeyGate.from_state(
        rate, budget.state, retry_after_max=settings.SEGMIND_RETRY_AFTER_MAX_SECONDS
    )


@dataclass(frozen=True)
class BudgetView:
    """One key's pacing as an operator sees it (see `segmind_budgets_view`)."""

    budget: SegmindKeyBudget
    limit: int
    window_seconds: float
    adaptive_limit: int
    used: int
    throttled_last_hour: int
    # Every 429 the key received, as of the dispatcher's last save.
    throttled_total: int
    closed_until: datetime | None
    jobs_waiting: int
    # False for a key its workspace replaced or cleared (or the platform's, changed): no
    # job waits for it any more, whatever waits for its owner's current key.
    in_use: bool = True


def segmind_budget_view(
    *, budget: SegmindKeyBudget, now: datetime | None = None, jobs_waiting: int | None = None
) -> BudgetView:
    """A key's budget, its use in the current window, its 429s in the last hour and the
    jobs waiting for it, as of the dispatcher's last save (every few seconds).
    `jobs_waiting`: when the caller counted them for many keys at once (for keys in use
    only); else counted here, 0 for a key no longer in use."""
    at = (now or timezone.now()).timestamp()
    gate = _budget_gate(budget)
    in_use = True
    if jobs_waiting is None:
        current = segmind_key_for(tenant=budget.tenant)
        in_use = current is not None and current.key_id == budget.key_id
        jobs_waiting = (
            Job.objects.segmind_queued().sent_with_key_of(budget.tenant_id).count() if in_use else 0
        )
    closed = gate.closed_until if gate.closed_until > at else None
    return BudgetView(
        budget=budget,
        limit=budget.limit,
        window_seconds=budget.window_seconds,
        adaptive_limit=gate.limit if budget.limit else 0,
        used=gate.used(at),
        throttled_last_hour=gate.throttled_within(at, 3600),
        throttled_total=gate.throttled_total,
        closed_until=datetime.fromtimestamp(closed, UTC) if closed else None,
        jobs_waiting=jobs_waiting,
        in_use=in_use,
    )


def segmind_keys_in_use() -> dict[str, int | None]:
    """The Segmind keys jobs are sent with now, by `key_id`: the platform's (None) and each
    workspace's own current key (its workspace's id). A key a workspace replaced or
    cleared is not among them, though its `SegmindKeyBudget` row stays."""
    in_use: dict[str, int | None] = {}
    platform = segmind_key_for(tenant=None)
    if platform is not None:
        in_use[platform.key_id] = None
    owners = Tenant.objects.exclude(segmind_key_encrypted="").only(
        "pk", "segmind_key_encrypted", "segmind_key_last4"
    )
    for tenant in owners:
        own = segmind_key_for(tenant=tenant)
        if own is not None:
            in_use[own.key_id] = tenant.pk
    return in_use


def segmind_budgets_in_use_view(*, now: datetime | None = None) -> list[BudgetView]:
    """The budget views of the keys in use (`segmind_keys_in_use`) that have a saved
    budget, with their queued jobs counted in one grouped query: a replaced key's row,
    which would report its workspace's queued jobs a second time, is left out."""
    in_use = segmind_keys_in_use()
    budgets = [
        budget
        for budget in SegmindKeyBudget.objects.filter(key_id__in=list(in_use))
        if in_use[budget.key_id] == budget.tenant_id
    ]
    if not budgets:
        return []
    # Whose key a queued job waits for: its workspace's own (the workspace's id), or the
    # platform's (None).
    owner = Case(When(own_key=True, then=F("tenant_id")), default=None, output_field=IntegerField())
    waiting = {
        row["owner"]: row["n"]
        for row in Job.objects.segmind_queued()
        .order_by()
        .annotate(owner=owner)
        .values("owner")
        .annotate(n=Count("pk"))
    }
    return [
        segmind_budget_view(budget=budget, now=now, jobs_waiting=waiting.get(budget.tenant_id, 0))
        for budget in budgets
    ]


def segmind_key_verify(key: str) -> bool:
    """Ask Segmind, with a call that costs nothing, whether it takes a workspace's own
    key: False when it does, True when it does but the key's account is out of credit
    (406; the key is saved anyway and the shop told to top up). A refused key, or no
    answer, is an AccountError naming the field, and nothing is saved. Accounts calls it
    through `segmind_key_verifier_set` (see jobs.apps)."""
    try:
        segmind.key_check(api_key=key, base_url=settings.SEGMIND_API_BASE)
    except segmind.SegmindError as e:
        if e.code == "provider_insufficient_credits":
            return True
        if e.code in ("provider_unauthorized", "provider_forbidden"):
            raise account_services.AccountError(
                "invalid_key", "segmind_key: Segmind refused this key; check it and try again."
            ) from e
        raise account_services.AccountError(
            "segmind_unreachable",
            "segmind_key: Segmind could not be asked about the key just now "
            f"({e.message}); nothing was saved. Try again.",
        ) from e
    return False
