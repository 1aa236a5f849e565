"""The presets page as a new shop meets it: an empty state pointing at the system presets
until the workspace has one of its own, and a delete that asks first."""

from __future__ import annotations

from django.urls import reverse

from jobs import services
from jobs.models import Preset

EMPTY = "No presets of your own yet"


def test_a_new_workspace_is_told_how_to_get_its_first_preset(owner_client, tenant):
    page = owner_client.get(reverse("preset_list", args=[tenant.slug])).content.decode()
    assert EMPTY in page
    assert "Copy to edit" in page
    assert f'href="{reverse("preset_new", args=[tenant.slug])}"' in page


def test_the_empty_state_goes_once_the_workspace_has_a_preset(owner_client, owner, tenant):
    system = Preset.objects.system().first()
    assert system is not None
    own = services.preset_copy(tenant=tenant, user=owner, preset=system)
    page = owner_client.get(reverse("preset_list", args=[tenant.slug])).content.decode()
    assert EMPTY not in page
    # Deleting takes a confirmation: the button that posts names the preset.
    assert f"Delete “{own.name}”" in page


def test_another_workspaces_preset_does_not_count_as_ones_own(
    owner_client, tenant, outsider, outsider_client
):
    system = Preset.objects.system().first()
    assert system is not None
    other = outsider.memberships.get().tenant
    theirs = services.preset_copy(tenant=other, user=outsider, preset=system)
    page = owner_client.get(reverse("preset_list", args=[tenant.slug])).content.decode()
    assert EMPTY in page
    assert theirs.name not in page or f"Delete “{theirs.name}”" not in page
    assert outsider_client.get(reverse("preset_list", args=[tenant.slug])).status_code == 404


def test_a_member_sees_the_page_and_its_empty_state(member_client, tenant):
    page = member_client.get(reverse("preset_list", args=[tenant.slug])).content.decode()
    assert EMPTY in page
