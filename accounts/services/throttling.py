"""Throttle counters and login locks (and lifting them)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import OperatorActionCode, ThrottleCounter, User
from accounts.services.audit import operator_action_record

logger = logging.getLogger(__name__)


def throttle_wait(*, scope: str, key: str) -> int:
    """Seconds `key` stays locked in `scope` (0: not locked)."""
    now = timezone.now()
    counter = ThrottleCounter.objects.filter(scope=scope, key=key, locked_until__gt=now).first()
    return counter.lock_seconds_left(now) if counter else 0


def throttle_count(
    *, scope: str, key: str, limit: int, window_seconds: int, lock_seconds: int | None = None
) -> int:
    """Count one request of `key` in `scope`. The count reaching `limit` within the window
    locks the key for `lock_seconds` (None: until the window ends). Returns the seconds it
    is now locked for (0: still under its limit). Atomic updates of one row per key, so
    concurrent requests from any process are all counted."""
    now = timezone.now()
    counters = ThrottleCounter.objects.filter(scope=scope, key=key)
    with transaction.atomic():
        # A window that has run out, and no lock left: start afresh.
        restarted = (
            counters.filter(window_started_at__lte=now - timedelta(seconds=window_seconds))
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            .update(count=1, window_started_at=now, locked_until=None)
        )
        if not restarted and not counters.update(count=F("count") + 1):
            try:
                with transaction.atomic():
                    ThrottleCounter.objects.create(
                        scope=scope, key=key, count=1, window_started_at=now
                    )
            except IntegrityError:  # another request created it first
                counters.update(count=F("count") + 1)
        counter = counters.get()
        if counter.count >= limit and not (counter.locked_until and counter.locked_until > now):
            if lock_seconds is None:
                until = counter.window_started_at + timedelta(seconds=window_seconds)
            else:
                until = now + timedelta(seconds=lock_seconds)
            counters.update(locked_until=until)
            counter.locked_until = until
    return counter.lock_seconds_left(now)


def throttle_admit(*, scope: str, key: str, limit: int, window_seconds: int) -> int:
    """Admit and count one request, or refuse it: returns 0 when admitted, else the
    seconds until the key may ask again. At most `limit` requests a window."""
    wait = throttle_wait(scope=scope, key=key)
    if wait:
        return wait
    throttle_count(scope=scope, key=key, limit=limit, window_seconds=window_seconds)
    return 0


def throttle_lock_lift(*, actor: User, counter_ids: Iterable[int], reason: str) -> int:
    """An operator lifts reset, sign-up or API-key locks: the counters start afresh."""
    counters = ThrottleCounter.objects.filter(pk__in=list(counter_ids))
    with transaction.atomic():
        described = [str(counter) for counter in counters]
        if not described:
            return 0
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.LOCK_LIFT,
            target=", ".join(described),
            details={"counters": described},
            reason=reason,
        )
        deleted, _ = counters.delete()
    logger.info("%s lifted throttle locks %s: %s", actor, described, reason)
    return deleted


def login_failures_forget(*, email: str) -> int:
    """A password was just reset through its emailed link: the account's failed log-ins no
    longer count, so the lockout's "or reset your password" is true. The addresses' own
    counts stay. Returns the attempts removed."""
    from axes.models import AccessAttempt

    deleted, _ = AccessAttempt.objects.filter(username=email.strip().lower()).delete()
    return deleted


def login_lock_lift(*, actor: User, attempt_ids: Iterable[int], reason: str) -> int:
    """An operator lifts log-in locks (django-axes' failed attempts). An account's count
    and an address's count each add up the attempts of every row with that account or
    address, so the attempts of the selected rows' accounts and addresses all go; the next
    failure starts from one. Returns the attempts removed."""
    from axes.models import AccessAttempt

    selected = list(
        AccessAttempt.objects.filter(pk__in=list(attempt_ids)).values_list("username", "ip_address")
    )
    if not selected:
        return 0
    usernames = {username for username, _ in selected if username}
    addresses = {address for _, address in selected if address}
    with transaction.atomic():
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.LOCK_LIFT,
            target=", ".join([*sorted(usernames), *sorted(addresses)]),
            details={"accounts": sorted(usernames), "addresses": sorted(addresses)},
            reason=reason,
        )
        deleted, _ = AccessAttempt.objects.filter(
            Q(pk__in=list(attempt_ids)) | Q(username__in=usernames) | Q(ip_address__in=addresses)
        ).delete()
    logger.info(
        "%s lifted log-in locks of %s and %s: %s",
        actor,
        sorted(usernames),
        sorted(addresses),
        reason,
    )
    return deleted
