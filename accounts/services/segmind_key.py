"""The workspace's own Segmind key. It moves to jobs next: the last service of accounts
that imports jobs (the Segmind client, locally)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.services.fernet import _fernet
from accounts.services.members import AccountError, _actor

# -- the workspace's own Segmind key -----------------------------------------------------


@dataclass(frozen=True)
class KeyCheck:
    last4: str
    # Segmind accepted the key but its account is out of credit (406): saved anyway,
    # the shop is told to top up.
    out_of_credit: bool


def segmind_key_set(*, tenant: Tenant, by: User, key: str) -> KeyCheck:
    """Save the workspace's own Segmind key, encrypted, once a call that costs nothing
    shows Segmind accepts it. Owners and admins only."""
    from jobs.engines.segmind import client as segmind  # import-linter: moved to jobs next

    actor = _actor(tenant, by)
    if not actor.can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can change the Segmind key.")
    key = key.strip()
    if not (8 <= len(key) <= 200) or not key.isascii() or not key.isprintable() or " " in key:
        raise AccountError("invalid_key", "segmind_key: this does not look like a Segmind API key.")
    out_of_credit = False
    try:
        segmind.key_check(api_key=key, base_url=settings.SEGMIND_API_BASE)
    except segmind.SegmindError as e:
        if e.code == "provider_insufficient_credits":
            out_of_credit = True
        elif e.code in ("provider_unauthorized", "provider_forbidden"):
            raise AccountError(
                "invalid_key", "segmind_key: Segmind refused this key; check it and try again."
            ) from e
        else:
            raise AccountError(
                "segmind_unreachable",
                "segmind_key: Segmind could not be asked about the key just now "
                f"({e.message}); nothing was saved. Try again.",
            ) from e
    Tenant.objects.filter(pk=tenant.pk).update(
        segmind_key_encrypted=_fernet().encrypt(key.encode()).decode(),
        segmind_key_last4=key[-4:],
        segmind_key_set_at=timezone.now(),
    )
    tenant.refresh_from_db(
        fields=["segmind_key_encrypted", "segmind_key_last4", "segmind_key_set_at"]
    )
    return KeyCheck(last4=key[-4:], out_of_credit=out_of_credit)


def segmind_key_clear(*, tenant: Tenant, by: User) -> None:
    """Forget the workspace's own key: its next jobs use the platform's key and price."""
    actor = _actor(tenant, by)
    if not actor.can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can change the Segmind key.")
    Tenant.objects.filter(pk=tenant.pk).update(
        segmind_key_encrypted="", segmind_key_last4="", segmind_key_set_at=None
    )
    tenant.refresh_from_db(
        fields=["segmind_key_encrypted", "segmind_key_last4", "segmind_key_set_at"]
    )


def segmind_key_get(*, tenant: Tenant) -> str:
    """The workspace's own Segmind key in clear, or "" when it has none (or it can no
    longer be decrypted: the encryption key changed, and the shop must enter it again)."""
    if not tenant.segmind_key_encrypted:
        return ""
    try:
        return _fernet().decrypt(tenant.segmind_key_encrypted.encode()).decode()
    except InvalidToken:
        return ""
