"""Members: who is a member and may do what (``_actor``), roles and removal (the last owner
stays). ``AccountError`` lives here, at the bottom, so every area can raise it.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import Membership, Role, Tenant, User
from productstudio.lib.errors import CodedError


class AccountError(CodedError):
    """A refused account operation, with a message for the person who asked."""


def _actor(tenant: Tenant, user: User) -> Membership:
    actor = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if actor is None:
        raise AccountError("forbidden", "You are not a member of this workspace.")
    return actor


def membership_change_role(
    *, tenant: Tenant, by: User, membership_id: int, role: str
) -> Membership:
    """Change a member's role; owners manage owners, and a workspace keeps an owner."""
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    with transaction.atomic():
        actor = _actor(tenant, by)
        target = (
            Membership.objects.for_tenant(tenant)
            .select_for_update()
            .select_related("user")
            .get(pk=membership_id)
        )
        if not actor.can_manage_team:
            raise AccountError("forbidden", "Only owners and admins can change roles.")
        if (role == Role.OWNER or target.is_owner) and not actor.is_owner:
            raise AccountError("forbidden", "Only an owner can grant or take the owner role.")
        if role != Role.OWNER and target.is_last_owner:
            raise AccountError(
                "last_owner", "A workspace needs an owner: make someone else owner first."
            )
        target.role = role
        target.save(update_fields=["role"])
    return target


def membership_remove(*, tenant: Tenant, by: User, membership_id: int) -> None:
    """Remove a member (or let a member leave); the last owner cannot be removed."""
    with transaction.atomic():
        actor = _actor(tenant, by)
        target = Membership.objects.for_tenant(tenant).select_for_update().get(pk=membership_id)
        leaving = target.pk == actor.pk
        if not leaving and not actor.can_manage_team:
            raise AccountError("forbidden", "Only owners and admins can remove members.")
        if target.is_owner and not actor.is_owner:
            raise AccountError("forbidden", "Only an owner can remove an owner.")
        if target.is_last_owner:
            raise AccountError(
                "last_owner", "The last owner cannot be removed: make someone else owner first."
            )
        target.delete()
