"""The Segmind dispatcher's lease: taken, taken over from a dead holder, renewed and
given up; and the order of turns (`served`) it hands on to the next dispatcher."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.models import Lease
from jobs.services.dispatch import LEASE, LEASE_SECONDS

RENEW_EVERY_SECONDS = 5.0
# The workspaces whose last turn the lease remembers across hand-overs.
SERVED_KEPT = 1000
NEVER_SERVED = -(10**9)


def _take_lease(holder: str, state: dict[str, Any] | None = None) -> bool:
    now = timezone.now()
    Lease.objects.get_or_create(name=LEASE)
    changes: dict[str, Any] = {
        "holder": holder,
        "leased_until": now + timedelta(seconds=LEASE_SECONDS),
    }
    if state is not None:
        changes["state"] = state
    return bool(
        Lease.objects.filter(name=LEASE)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now) | Q(holder=holder))
        .update(**changes)
    )


def _take_over(holder: str) -> str:
    """Take the lease from a holder that died holding it (its lease ran out without being
    given up); that holder's name, or "" when the lease was not such a one's."""
    now = timezone.now()
    dead = (
        Lease.objects.filter(name=LEASE, leased_until__lte=now)
        .exclude(holder__in=("", holder))
        .values_list("holder", flat=True)
        .first()
    )
    if not dead:
        return ""
    # Conditional on the dead holder's name: of two successors racing, one takes it.
    taken = Lease.objects.filter(name=LEASE, holder=dead, leased_until__lte=now).update(
        holder=holder, leased_until=now + timedelta(seconds=LEASE_SECONDS)
    )
    return dead if taken else ""


def _lease_row_lock(holder: str, now: datetime) -> bool:
    """Lock the lease row (in the caller's transaction) if `holder` holds it for at least
    one more renewal interval."""
    margin = now + timedelta(seconds=RENEW_EVERY_SECONDS)
    return (
        Lease.objects.select_for_update()
        .filter(name=LEASE, holder=holder, leased_until__gt=margin)
        .values_list("pk", flat=True)
        .first()
        is not None
    )


def _release_lease(holder: str, state: dict[str, Any]) -> None:
    Lease.objects.filter(name=LEASE, holder=holder).update(
        leased_until=None, holder="", state=state
    )


def _served_from(stored: dict[str, Any] | None) -> dict[tuple[int, bool], int]:
    """The order of turns the last dispatcher left on the lease (below zero, oldest first)."""
    order = [
        (int(row[0]), bool(row[1]))
        for row in ((stored or {}).get("served") or [])
        if isinstance(row, list) and len(row) == 2 and isinstance(row[0], int)
    ]
    return {key: rank - len(order) for rank, key in enumerate(order)}


def _served_order(served: dict[tuple[int, bool], int]) -> list[list[Any]]:
    """The order in which workspaces (and keys: own or not) were last served, oldest
    first, as kept on the lease: the most recent SERVED_KEPT."""
    order = sorted(served, key=served.__getitem__)[-SERVED_KEPT:]
    return [[t, own] for t, own in order]
