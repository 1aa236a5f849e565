"""The workspace's own Segmind key: checked, stored encrypted, replaced or removed.

Accounts stores the key; asking Segmind about it, and what follows a change (jobs paused on
the old key's empty account go back to the queue), are jobs' business, and accounts never
imports jobs. So jobs plugs both in when it loads (`jobs.apps`): a verifier that asks
Segmind (`segmind_key_verifier_set`) and a receiver of `segmind_key_changed`, sent once the
change is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.services.fernet import _fernet
from accounts.services.members import AccountError, _actor

# Sent after a workspace's own key was set, replaced or removed and the change committed;
# `tenant` is the workspace.
segmind_key_changed = Signal()

# Asks Segmind about a key: True when it accepts it but its account is out of credit, False
# when it accepts it; raises AccountError (`invalid_key`, `segmind_unreachable`) otherwise.
SegmindKeyVerifier = Callable[[str], bool]
_verifier: SegmindKeyVerifier | None = None


def segmind_key_manager_check(*, tenant: Tenant, by: User) -> None:
    """Refuse (``forbidden``) unless `by` may change `tenant`'s own Segmind key: its
    owners and admins (the key decides what the workspace's jobs cost, and on whose
    account)."""
    if not _actor(tenant, by).can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can change the Segmind key.")


def segmind_key_verifier_set(verifier: SegmindKeyVerifier) -> None:
    """Name the function that asks Segmind about a key (jobs does, when it loads)."""
    global _verifier
    _verifier = verifier


def _key_changed(tenant: Tenant) -> None:
    transaction.on_commit(lambda: segmind_key_changed.send(sender=Tenant, tenant=tenant))


@dataclass(frozen=True)
class KeyCheck:
    last4: str
    # Segmind accepted the key but its account is out of credit (406): saved anyway,
    # the shop is told to top up.
    out_of_credit: bool


def segmind_key_set(*, tenant: Tenant, by: User, key: str) -> KeyCheck:
    """Save the workspace's own Segmind key, encrypted, once a call that costs nothing
    shows Segmind accepts it. Owners and admins only."""
    segmind_key_manager_check(tenant=tenant, by=by)
    key = key.strip()
    if not (8 <= len(key) <= 200) or not key.isascii() or not key.isprintable() or " " in key:
        raise AccountError("invalid_key", "segmind_key: this does not look like a Segmind API key.")
    if _verifier is None:
        raise AccountError(
            "segmind_unreachable", "segmind_key: Segmind cannot be asked about keys here."
        )
    out_of_credit = _verifier(key)
    Tenant.objects.filter(pk=tenant.pk).update(
        segmind_key_encrypted=_fernet().encrypt(key.encode()).decode(),
        segmind_key_last4=key[-4:],
        segmind_key_set_at=timezone.now(),
    )
    tenant.refresh_from_db(
        fields=["segmind_key_encrypted", "segmind_key_last4", "segmind_key_set_at"]
    )
    _key_changed(tenant)
    return KeyCheck(last4=key[-4:], out_of_credit=out_of_credit)


def segmind_key_clear(*, tenant: Tenant, by: User) -> None:
    """Forget the workspace's own key: its next jobs use the platform's key and price."""
    segmind_key_manager_check(tenant=tenant, by=by)
    Tenant.objects.filter(pk=tenant.pk).update(
        segmind_key_encrypted="", segmind_key_last4="", segmind_key_set_at=None
    )
    tenant.refresh_from_db(
        fields=["segmind_key_encrypted", "segmind_key_last4", "segmind_key_set_at"]
    )
    _key_changed(tenant)


def segmind_key_get(*, tenant: Tenant) -> str:
    """The workspace's own Segmind key in clear, or "" when it has none (or it can no
    longer be decrypted: the encryption key changed, and the shop must enter it again)."""
    if not tenant.segmind_key_encrypted:
        return ""
    try:
        return _fernet().decrypt(tenant.segmind_key_encrypted.encode()).decode()
    except InvalidToken:
        return ""
