"""A copy of a preset is told apart from its original ("… (copy)", unique in the
workspace), and the gallery's preset filter lists each preset once, under its model,
saying which are the system's and which the workspace's own."""

from __future__ import annotations

import html
import re
from collections import Counter

from django.urls import reverse

from jobs import catalog, services
from jobs.models import Preset

PACKSHOT = "bria-product-packshot"


def _system(model: str = PACKSHOT) -> Preset:
    return Preset.objects.system().for_model(model).order_by("slug")[:1].get()


def _copy(client, tenant, preset: Preset) -> Preset:
    response = client.post(reverse("preset_copy", args=[tenant.slug, preset.pk]))
    assert response.status_code == 302
    return Preset.objects.for_tenant(tenant).order_by("-pk")[:1].get()


def test_copy_to_edit_gives_the_copy_a_name_of_its_own(owner_client, tenant):
    source = _system()

    first = _copy(owner_client, tenant, source)
    second = _copy(owner_client, tenant, source)
    of_a_copy = _copy(owner_client, tenant, first)

    assert first.name == f"{source.name} (copy)"
    assert second.name == f"{source.name} (copy 2)"
    assert of_a_copy.name == f"{source.name} (copy 3)"


def test_the_copys_name_is_unique_in_its_own_workspace_only(tenant, owner, outsider):
    source = _system()
    other = outsider.memberships.get().tenant
    services.preset_copy(tenant=other, user=outsider, preset=source)
    services.preset_create(
        tenant=tenant, user=owner, model=PACKSHOT, name=f"{source.name.upper()} (COPY)", params={}
    )

    copy = services.preset_copy(tenant=tenant, user=owner, preset=source)

    assert copy.name == f"{source.name} (copy 2)"
    assert Preset.objects.for_tenant(other).get().name == f"{source.name} (copy)"


def test_a_long_name_keeps_its_copy_mark_within_the_limit(tenant, owner):
    long = services.preset_create(
        tenant=tenant, user=owner, model=PACKSHOT, name="N" * 100, params={}
    )

    copy = services.preset_copy(tenant=tenant, user=owner, preset=long)

    assert len(copy.name) == 100
    assert copy.name.endswith(" (copy)")


def test_the_new_job_picker_shows_no_name_twice_after_a_copy(owner_client, tenant):
    _copy(owner_client, tenant, _system())

    page = html.unescape(owner_client.get(reverse("job_new", args=[tenant.slug])).content.decode())

    section = page.split(f'id="preset-{PACKSHOT}"', 1)[1].split("</select>", 1)[0]
    # The preset's own name, not the "(yours)" after it: that alone would be easy to miss.
    names = [
        name.removesuffix(" (yours)")
        for name in re.findall(r"<option value=\"\d+\"[^>]*>([^<]+)</option>", section)
    ]
    assert names and Counter(names).most_common(1)[0][1] == 1


def test_the_gallerys_preset_filter_lists_each_preset_once_under_its_model(owner_client, tenant):
    source = _system()
    copy = _copy(owner_client, tenant, source)

    page = html.unescape(owner_client.get(reverse("gallery", args=[tenant.slug])).content.decode())

    select = page.split('name="preset"', 1)[1].split("</select>", 1)[0]
    values = re.findall(r'<option value="(\d+)"', select)
    assert Counter(values).most_common(1)[0][1] == 1
    assert set(map(int, values)) == set(
        Preset.objects.visible_to(tenant).values_list("pk", flat=True)
    )
    groups = re.findall(r'<optgroup label="([^"]+)">', select)
    assert groups == [m.title for m in catalog.all_models() if Preset.objects.for_model(m.slug)]
    packshot = select.split(f'<optgroup label="{catalog.model(PACKSHOT).title}">')[1]
    packshot = packshot.split("</optgroup>")[0]
    assert f'value="{source.pk}">{source.name} (system)<' in packshot
    assert f'value="{copy.pk}">{copy.name} (yours)<' in packshot


def test_filtering_the_gallery_by_a_preset_in_a_group_still_works(owner_client, tenant):
    preset = _system()

    response = owner_client.get(reverse("gallery", args=[tenant.slug]), {"preset": preset.pk})

    assert response.status_code == 200
    assert "choose one from the list" not in response.content.decode()
    assert f'<option value="{preset.pk}" selected>' in response.content.decode()


def test_another_workspaces_presets_are_not_in_the_filter(owner_client, tenant, outsider):
    other = outsider.memberships.get().tenant
    theirs = services.preset_copy(tenant=other, user=outsider, preset=_system())

    page = owner_client.get(reverse("gallery", args=[tenant.slug])).content.decode()

    assert f'value="{theirs.pk}"' not in page
