"""Idempotency keys: begin, finish, release, expire."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import IdempotencyKey, Tenant
from productstudio.lib.errors import CodedError


class IdempotencyError(CodedError):
    """A retry that can't be answered: the key is in use by a request still running
    (``idempotency_in_progress``) or was first sent with another request
    (``idempotency_mismatch``)."""


def idempotency_begin(
    *, tenant: Tenant, key: str, request_line: str, fingerprint: str
) -> IdempotencyKey:
    """Claim `key` for a request, or find the answer it already got.

    Returns the record: complete (replay its answer) or claimed by this caller (run the
    request, then `idempotency_finish` or `idempotency_release`). A key first used by a
    request that died more than IDEMPOTENCY_LOCK_SECONDS ago is taken over (see
    productstudio.idempotency for what a retry may then repeat). Each statement here is a
    short transaction of its own: the request's work never runs inside one.
    """
    keys = IdempotencyKey.objects.for_tenant(tenant)
    for _ in range(3):
        now = timezone.now()
        keys.expired(now).filter(key=key).delete()
        try:
            with transaction.atomic():
                return keys.create(
                    tenant=tenant,
                    key=key,
                    request_line=request_line,
                    fingerprint=fingerprint,
                    locked_at=now,
                    created_at=now,
                )
        except IntegrityError:
            pass
        record = keys.filter(key=key).first()
        if record is None:
            continue  # released between our insert and our read: claim it again
        if record.request_line != request_line or record.fingerprint != fingerprint:
            raise IdempotencyError(
                "idempotency_mismatch",
                f"The Idempotency-Key '{key}' was first used with a different request "
                f"({record.request_line}); use a new key for a new request.",
            )
        if record.is_complete:
            return record
        stale = now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)
        if record.locked_at is not None and record.locked_at < stale:
            taken = keys.filter(
                pk=record.pk, response_status__isnull=True, locked_at=record.locked_at
            ).update(locked_at=now)
            if taken:
                record.locked_at = now
                return record
        raise IdempotencyError(
            "idempotency_in_progress",
            f"A request with the Idempotency-Key '{key}' is still in progress; "
            "retry when it has finished.",
        )
    raise IdempotencyError(
        "idempotency_in_progress", f"The Idempotency-Key '{key}' is busy; retry in a moment."
    )


def idempotency_finish(
    *, record: IdempotencyKey, status: int, body: bytes, headers: dict[str, str]
) -> bool:
    """Keep the answer of the request that holds `record`. False if the claim was lost (it
    ran so long another request took the key over): then its work must be rolled back."""
    done = IdempotencyKey.objects.filter(
        pk=record.pk, response_status__isnull=True, locked_at=record.locked_at
    ).update(
        response_status=status,
        response_body=body,
        response_headers=headers,
        completed_at=timezone.now(),
        locked_at=None,
    )
    return done == 1


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Forget a claim whose request had no effect (refused before it ran, or failed and was
    rolled back): the same key may be sent again."""
    IdempotencyKey.objects.filter(
        pk=record.pk, response_status__isnull=True, locked_at=record.locked_at
    ).delete()


def idempotency_keys_expire() -> int:
    """Delete keys older than IDEMPOTENCY_KEY_HOURS; returns how many."""
    deleted, _ = IdempotencyKey.objects.expired().delete()
    return deleted
