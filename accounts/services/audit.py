"""The operators' audit trail: recorded actions on members and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import (
    ApiKey,
    CreditEntry,
    Membership,
    OperatorAction,
    OperatorActionCode,
    Role,
    Tenant,
    User,
)
from accounts.services.credits import credits_adjust, credits_grant
from accounts.services.members import AccountError
from productstudio.lib.errors import CodedError

# -- the operators' audit trail ----------------------------------------------------------


class OperatorActionError(CodedError):
    """A refused audit record (``reason_required``, ``invalid_action``, ``invalid_details``):
    the change it was to record must not be made either."""


def _details_check(value: Any, path: str = "details") -> None:
    # Amounts must stay exact: whole numbers, strings or Decimals, never floats.
    if isinstance(value, float):
        raise OperatorActionError("invalid_details", f"{path}: use whole numbers, not floats.")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _details_check(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _details_check(item, f"{path}[{i}]")


def operator_action_record(
    *,
    actor: User,
    action: str,
    tenant: Tenant | None = None,
    target: str = "",
    details: Mapping[str, Any] | None = None,
    reason: str,
) -> OperatorAction:
    """Append one row to the operators' audit trail: `actor` did `action` to `target`
    (in `tenant`), because `reason`. Call it inside the transaction that makes the
    change, so the change and its record commit or roll back together; a blank reason
    raises ``reason_required`` before anything is written."""
    if action not in OperatorActionCode.values:
        raise OperatorActionError("invalid_action", f"action: unknown operator action {action!r}.")
    reason = (reason or "").strip()
    if not reason:
        raise OperatorActionError(
            "reason_required", "reason: say why (it goes in the audit trail)."
        )
    _details_check(details or {})
    return OperatorAction.objects.create(
        actor=actor,
        actor_email=actor.email,
        action=action,
        tenant=tenant,
        tenant_name=tenant.name if tenant is not None else "",
        tenant_slug=tenant.slug if tenant is not None else "",
        target=target[:300],
        details=dict(details or {}),
        reason=reason,
    )


def credit_entry_operator_record(
    *, entry: CreditEntry, actor: User, action: str, tenant: Tenant, target: str, reason: str
) -> OperatorAction:
    """Record an operator's ledger entry (a grant, an adjustment, a job's refund) in the
    audit trail, with the balance before and after it: call it in the entry's transaction."""
    return operator_action_record(
        actor=actor,
        action=action,
        tenant=tenant,
        target=target,
        details={
            "amount": entry.amount,
            "balance_before": entry.balance_after - entry.amount,
            "balance_after": entry.balance_after,
            "credit_entry": entry.pk,
        },
        reason=reason,
    )


def credits_operator_grant(*, tenant: Tenant, amount: int, actor: User, memo: str) -> CreditEntry:
    """An operator grants credits (`credits_grant`), recorded in the audit trail with the
    memo as the why; both commit or neither."""
    with transaction.atomic():
        entry = credits_grant(tenant=tenant, amount=amount, user=actor, memo=memo)
        credit_entry_operator_record(
            entry=entry,
            actor=actor,
            action=OperatorActionCode.CREDITS_GRANT,
            tenant=tenant,
            target=f"workspace {tenant.slug}",
            reason=memo,
        )
    return entry


def credits_operator_adjust(*, tenant: Tenant, amount: int, actor: User, memo: str) -> CreditEntry:
    """An operator adjusts the balance (`credits_adjust`), recorded in the audit trail
    with the memo as the why; both commit or neither."""
    with transaction.atomic():
        entry = credits_adjust(tenant=tenant, amount=amount, user=actor, memo=memo)
        credit_entry_operator_record(
            entry=entry,
            actor=actor,
            action=OperatorActionCode.CREDITS_ADJUST,
            tenant=tenant,
            target=f"workspace {tenant.slug}",
            reason=memo,
        )
    return entry


def membership_operator_add(
    *, tenant: Tenant, user: User, role: str, actor: User, reason: str
) -> Membership:
    """An operator puts `user` in `tenant` with `role`, recorded in the audit trail."""
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    with transaction.atomic():
        membership = Membership.objects.create(tenant=tenant, user=user, role=role)
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.MEMBER_ADD,
            tenant=tenant,
            target=f"user {user.email}",
            details={"role": role},
            reason=reason,
        )
    return membership


def membership_operator_role_set(
    *, membership_id: int, role: str, actor: User, reason: str
) -> Membership:
    """An operator changes a member's role (a workspace keeps an owner), recorded in the
    audit trail with the role before and after; no record when nothing changes."""
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    with transaction.atomic():
        target = (
            Membership.objects.select_for_update()
            .select_related("user", "tenant")
            .get(pk=membership_id)
        )
        before = target.role
        if before == role:
            return target
        if target.is_last_owner:
            raise AccountError(
                "last_owner", "role: a workspace needs an owner; make someone else owner first."
            )
        # The reason is checked before the change is written.
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.ROLE_CHANGE,
            tenant=target.tenant,
            target=f"user {target.user.email}",
            details={"before": before, "after": role},
            reason=reason,
        )
        target.role = role
        target.save(update_fields=["role"])
    return target


def membership_operator_remove(*, membership_id: int, actor: User, reason: str) -> None:
    """An operator removes a member (never a workspace's last owner), recorded in the
    audit trail."""
    with transaction.atomic():
        target = (
            Membership.objects.select_for_update()
            .select_related("user", "tenant")
            .get(pk=membership_id)
        )
        if target.is_last_owner:
            raise AccountError(
                "last_owner",
                f"{target.user.email} is the last owner of {target.tenant.name}: "
                "make someone else owner first.",
            )
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.MEMBER_REMOVE,
            tenant=target.tenant,
            target=f"user {target.user.email}",
            details={"role": target.role},
            reason=reason,
        )
        target.delete()


def api_key_operator_revoke(*, key_id: str | uuid.UUID, actor: User, reason: str) -> bool:
    """An operator revokes a key (it stops working at once), recorded in the audit trail.
    False, and no record, when it was revoked already."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().select_related("tenant").get(pk=key_id)
        if key.revoked_at is not None:
            return False
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.API_KEY_REVOKE,
            tenant=key.tenant,
            target=f"API key {key.prefix} ({key.name})",
            reason=reason,
        )
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return True
