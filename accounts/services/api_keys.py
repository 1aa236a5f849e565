"""API keys: create, authenticate, revoke."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import API_KEY_PREFIX, ApiKey, Tenant, User
from accounts.services.members import AccountError, _actor


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # the whole key, shown once and never stored


def api_key_manager_check(*, tenant: Tenant, by: User, verb: str = "manage") -> None:
    """Refuse (``forbidden``) unless `by` may hand out or take back `tenant`'s API keys:
    a key acts for the whole workspace, with no person behind it, and outlives its
    creator's membership, so only those who manage the team may."""
    if not _actor(tenant, by).can_manage_team:
        raise AccountError("forbidden", f"Only owners and admins can {verb} API keys.")


def _require_key_manager(tenant: Tenant, user: User) -> None:
    api_key_manager_check(tenant=tenant, by=user)


def api_key_create(*, tenant: Tenant, name: str, created_by: User | None = None) -> NewApiKey:
    """Create an API key for `tenant`; the plain key exists only in the returned value.

    A person (`created_by`) must be an owner or admin of the workspace; commands and
    operators create keys with no person.
    """
    if created_by is not None:
        _require_key_manager(tenant, created_by)
    for _ in range(5):
        prefix = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    tenant=tenant,
                    name=name.strip()[:100] or "API key",
                    prefix=prefix,
                    digest=ApiKey.digest_secret(secret),
                    created_by=created_by,
                )
        except IntegrityError:
            continue  # a prefix collision: draw again
        return NewApiKey(key=key, secret=f"{API_KEY_PREFIX}{prefix}_{secret}")
    raise AccountError("key_collision", "Could not create a unique API key; try again.")


# How stale a key's last-used time may get: the portal shows it as "n minutes ago".
API_KEY_LAST_USED_EVERY = timedelta(minutes=1)


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its last-used time touched (to the minute);
    None otherwise."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, secret = raw_key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not secret:
        return None
    key = ApiKey.objects.active().select_related("tenant").filter(prefix=prefix).first()
    if key is None or not key.matches(secret):
        return None
    now = timezone.now()
    stale = now - API_KEY_LAST_USED_EVERY
    if key.last_used_at is None or key.last_used_at < stale:
        # At most one write a minute per key: on SQLite every write takes the database's
        # one write lock, and a read-only API call should not queue for it. Conditional,
        # so concurrent requests of the same key write once.
        touched = (
            ApiKey.objects.filter(pk=key.pk)
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale))
            .update(last_used_at=now)
        )
        if touched:
            key.last_used_at = now
    return key


def api_key_revoke(*, tenant: Tenant, key_id: str | uuid.UUID, by: User | None = None) -> bool:
    """Revoke one of `tenant`'s keys; it stops working at once (each request looks the
    key up). False when it was revoked already. A person (`by`) must be an owner or admin."""
    if by is not None:
        _require_key_manager(tenant, by)
    revoked = (
        ApiKey.objects.for_tenant(tenant)
        .active()
        .filter(pk=key_id)
        .update(revoked_at=timezone.now())
    )
    return bool(revoked)
