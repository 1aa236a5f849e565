"""Roles, removing members and switching workspaces (invitations: test_invitations.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Membership, Role, Tenant
from tests.conftest import login_client


def test_an_owner_changes_a_members_role(owner_client, tenant, member):
    membership = Membership.objects.get(user=member, tenant=tenant)
    owner_client.post(
        reverse("team_change_role", args=[tenant.slug, membership.pk]), {"role": "admin"}
    )
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_a_member_cannot_change_roles(member_client, tenant, owner):
    owner_membership = Membership.objects.get(user=owner, tenant=tenant)
    member_client.post(
        reverse("team_change_role", args=[tenant.slug, owner_membership.pk]), {"role": "member"}
    )
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


def test_the_last_owner_cannot_step_down_or_be_removed(owner, tenant):
    membership = Membership.objects.get(user=owner, tenant=tenant)
    with pytest.raises(services.AccountError) as demote:
        services.membership_change_role(
            tenant=tenant, by=owner, membership_id=membership.pk, role=Role.MEMBER
        )
    assert demote.value.code == "last_owner"
    with pytest.raises(services.AccountError) as remove:
        services.membership_remove(tenant=tenant, by=owner, membership_id=membership.pk)
    assert remove.value.code == "last_owner"
    assert Membership.objects.filter(pk=membership.pk, role=Role.OWNER).exists()


def test_an_owner_can_leave_once_another_owner_exists(owner, member, tenant):
    other = Membership.objects.get(user=member, tenant=tenant)
    services.membership_change_role(tenant=tenant, by=owner, membership_id=other.pk, role="owner")
    mine = Membership.objects.get(user=owner, tenant=tenant)
    services.membership_remove(tenant=tenant, by=owner, membership_id=mine.pk)
    assert not Membership.objects.filter(user=owner, tenant=tenant).exists()


def test_an_owner_removes_a_member_who_then_gets_404(owner_client, tenant, member):
    membership = Membership.objects.get(user=member, tenant=tenant)
    owner_client.post(reverse("team_remove", args=[tenant.slug, membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert login_client(member).get(reverse("dashboard", args=[tenant.slug])).status_code == 404


def test_an_admin_cannot_remove_an_owner(tenant, owner, member):
    services.membership_change_role(
        tenant=tenant,
        by=owner,
        membership_id=Membership.objects.get(user=member).pk,
        role=Role.ADMIN,
    )
    with pytest.raises(services.AccountError):
        services.membership_remove(
            tenant=tenant, by=member, membership_id=Membership.objects.get(user=owner).pk
        )


def test_a_user_switches_between_their_workspaces(owner, owner_client, tenant):
    second = services.tenant_create(name="Second Shop", owner=owner)
    page = owner_client.get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert reverse("dashboard", args=[second.slug]) in page
    owner_client.get(reverse("dashboard", args=[second.slug]))
    home = owner_client.get(reverse("home"))
    assert home["Location"] == reverse("dashboard", args=[second.slug])


def test_a_new_workspace_can_be_created_from_the_switcher(owner_client, owner):
    owner_client.post(reverse("workspace_create"), {"name": "Pop-up Store"})
    tenant = Tenant.objects.get(name="Pop-up Store")
    assert Membership.objects.get(tenant=tenant, user=owner).role == Role.OWNER
