"""The workspace's settings page: its name (owners and admins rename it, the address stays),
and the navigation that marks where the user is."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Membership, Role, Tenant
from tests.conftest import login_client


def _rename(client, tenant: Tenant, name: str):
    return client.post(reverse("workspace_rename", args=[tenant.slug]), {"name": name})


def test_the_owner_renames_the_workspace_and_its_address_stays(owner_client, tenant):
    response = _rename(owner_client, tenant, "  Olive's Mug Studio ")
    assert response.status_code == 302
    assert response["Location"] == reverse("workspace_settings", args=[tenant.slug])
    renamed = Tenant.objects.get(pk=tenant.pk)
    assert renamed.name == "Olive's Mug Studio"
    assert renamed.slug == tenant.slug
    page = owner_client.get(response["Location"]).content.decode()
    assert "is now called “Olive&#x27;s Mug Studio”" in page


def test_an_admin_may_rename_the_workspace(tenant, member):
    Membership.objects.filter(user=member).update(role=Role.ADMIN)
    _rename(login_client(member), tenant, "Mugs & Co")
    assert Tenant.objects.get(pk=tenant.pk).name == "Mugs & Co"


def test_a_member_cannot_rename_the_workspace(member_client, tenant):
    response = _rename(member_client, tenant, "Taken over")
    assert response.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).name == "Olive's Mugs"
    page = member_client.get(reverse("workspace_settings", args=[tenant.slug])).content.decode()
    assert "Only owners and admins can rename the workspace." in page
    assert 'id="id_name"' not in page


def test_an_outsider_gets_404_and_renames_nothing(outsider_client, tenant):
    assert _rename(outsider_client, tenant, "Mine now").status_code == 404
    assert Tenant.objects.get(pk=tenant.pk).name == "Olive's Mugs"


def test_an_empty_name_is_refused_naming_the_field(owner_client, tenant):
    response = _rename(owner_client, tenant, "   ")
    assert response.status_code == 200
    assert "name: a workspace needs a name." in response.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).name == "Olive's Mugs"


def test_the_service_refuses_a_name_too_long_and_a_stranger(tenant, outsider):
    with pytest.raises(services.AccountError) as too_long:
        services.tenant_rename(tenant=tenant, by=tenant.memberships.get().user, name="x" * 101)
    assert too_long.value.code == "invalid_name"
    with pytest.raises(services.AccountError) as stranger:
        services.tenant_rename(tenant=tenant, by=outsider, name="Other")
    assert stranger.value.code == "forbidden"


@pytest.mark.parametrize(
    ("route", "link"),
    [
        ("dashboard", "Dashboard"),
        ("preset_list", "Presets"),
        ("credits", "Credits"),
        ("team", "Team"),
        ("workspace_settings", "Settings"),
        ("api_keys", "Settings"),
    ],
)
def test_the_navigation_marks_the_current_section(owner_client, tenant, route, link):
    page = owner_client.get(reverse(route, args=[tenant.slug])).content.decode()
    current = [line for line in page.splitlines() if "aria-current" in line and "<a " in line]
    assert current, "no link is marked as current"
    assert f">{link}" in current[0]
    assert page.count('aria-current="page"') + page.count('aria-current="true"') in (1, 2)


def test_the_navigation_leaves_out_sections_not_installed(owner_client, tenant, monkeypatch):
    from accounts import context_processors

    monkeypatch.setattr(context_processors, "_optional_url", lambda name, slug: None)
    page = owner_client.get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert ">Batches</a>" not in page
    monkeypatch.setattr(context_processors, "_optional_url", lambda name, slug: "/w/x/batches/")
    page = owner_client.get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert '<a href="/w/x/batches/">Batches</a>' in page


# --- the own Segmind key's plan (its rate limit) -----------------------------------------


def _plan(client, tenant: Tenant, **data):
    return client.post(reverse("workspace_segmind_plan", args=[tenant.slug]), data)


def test_the_owner_sets_the_own_keys_plan_and_the_page_shows_its_limit(owner_client, tenant):
    page = owner_client.get(reverse("workspace_settings", args=[tenant.slug])).content.decode()
    assert "up to <strong>50 requests a minute</strong>" in page

    response = _plan(owner_client, tenant, segmind_plan="business")

    assert response.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).segmind_per_minute == 500
    _plan(owner_client, tenant, segmind_plan="custom", segmind_rate_limit="7")
    assert Tenant.objects.get(pk=tenant.pk).segmind_per_minute == 7


def test_a_custom_plan_without_a_number_is_refused_naming_the_field(owner_client, tenant):
    response = _plan(owner_client, tenant, segmind_plan="custom", segmind_rate_limit="")

    assert "segmind_rate_limit: give your key" in response.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).segmind_plan == "pro-docs"
    bad = _plan(owner_client, tenant, segmind_plan="platinum")
    assert "segmind_plan: choose one of Segmind" in bad.content.decode()


def test_a_member_cannot_change_the_plan_and_an_outsider_gets_404(
    member_client, outsider_client, tenant
):
    _plan(member_client, tenant, segmind_plan="free")
    assert Tenant.objects.get(pk=tenant.pk).segmind_plan == "pro-docs"
    assert _plan(outsider_client, tenant, segmind_plan="free").status_code == 404
    assert Tenant.objects.get(pk=tenant.pk).segmind_plan == "pro-docs"
