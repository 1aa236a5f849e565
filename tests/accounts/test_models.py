"""A workspace keeps an owner: `Membership.is_last_owner`, the one rule the team page's
services, the operators' services and the admin's form all ask."""

from __future__ import annotations

import pytest

from accounts.models import Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db


def _membership(user: User, tenant: Tenant) -> Membership:
    return Membership.objects.get(user=user, tenant=tenant)


def test_a_workspaces_only_owner_is_its_last_owner(
    tenant: Tenant, owner: User, member: User, outsider: User
) -> None:
    assert _membership(owner, tenant).is_last_owner
    # A member is no owner; another workspace's owner does not count here.
    assert not _membership(member, tenant).is_last_owner
    assert _membership(outsider, outsider.memberships.get().tenant).is_last_owner


def test_an_owner_with_a_co_owner_is_not_the_last(
    tenant: Tenant, owner: User, member: User
) -> None:
    Membership.objects.filter(user=member, tenant=tenant).update(role=Role.OWNER)

    assert not _membership(owner, tenant).is_last_owner
    assert not _membership(member, tenant).is_last_owner
