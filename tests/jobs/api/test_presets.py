"""Presets over the API (`/api/v1/presets`): the workspace's own to create, change, copy
and delete; the system's to read and copy; another workspace's not at all."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Tenant, User
from jobs.models import Preset
from tests.conftest import login_client
from tests.support.api_helpers import assert_problem, key_client

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def other_tenant(outsider: User) -> Tenant:
    return Tenant.objects.get(memberships__user=outsider)


def _own(tenant: Tenant, name: str = "House white", model: str = PACKSHOT) -> Preset:
    return Preset.objects.create(
        tenant=tenant,
        model=model,
        slug=name.lower().replace(" ", "-"),
        name=name,
        params={"background_color": "#FAFAFA"},
    )


def _system(model: str = PACKSHOT) -> Preset:
    preset = Preset.objects.system().filter(model=model).first()
    assert preset is not None
    return preset


def _all_pages(api: Client, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        page = api.get(next_url).json()
        found += page["results"]
        next_url = page["next"]
    return found


def test_the_list_has_the_workspaces_own_presets_and_the_systems_but_no_other_workspaces(
    api: Client, tenant: Tenant, other_tenant: Tenant
):
    own = _own(tenant)
    theirs = _own(other_tenant, "Their secret")

    presets = _all_pages(api, "/api/v1/presets?limit=100")

    ids = {p["id"] for p in presets}
    assert own.pk in ids
    assert set(Preset.objects.system().values_list("pk", flat=True)) <= ids
    assert theirs.pk not in ids
    mine = next(p for p in presets if p["id"] == own.pk)
    assert mine["system"] is False
    assert mine["params"] == {"background_color": "#FAFAFA"}
    assert mine["urls"]["self"] == f"http://testserver/api/v1/presets/{own.pk}"
    assert all(p["system"] for p in presets if p["id"] != own.pk)


def test_the_list_keeps_one_models_presets_and_refuses_an_unknown_model(
    api: Client, tenant: Tenant
):
    _own(tenant, "Sunny", model=SCENE)

    presets = _all_pages(api, f"/api/v1/presets?model={SCENE}&limit=100")

    assert presets and {p["model"] for p in presets} == {SCENE}
    body = assert_problem(api.get("/api/v1/presets?model=no-such-model"), 400, "validation_error")
    assert set(body["errors"]) == {"model"}


def test_a_preset_is_created_with_its_parameters_checked(api: Client, tenant: Tenant):
    response = api.post(
        "/api/v1/presets",
        {
            "model": PACKSHOT,
            "name": "House white",
            "description": "Our packshots",
            "params": {"background_color": "#F0F0F0"},
        },
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    preset = Preset.objects.get(pk=body["id"])
    assert preset.tenant == tenant
    assert preset.created_by is None  # a key acts for the workspace
    assert (body["slug"], body["name"], body["system"]) == ("house-white", "House white", False)
    assert body["params"] == {"background_color": "#F0F0F0"}
    assert api.get(body["urls"]["self"]).json()["id"] == preset.pk


def test_a_member_signed_in_creates_a_preset_as_themselves(member: User, tenant: Tenant):
    client = login_client(member)
    client.get(f"/w/{tenant.slug}/")  # the workspace the session uses

    response = client.post(
        "/api/v1/presets",
        {"model": PACKSHOT, "name": "Max's", "params": {}},
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    assert Preset.objects.get(pk=response.json()["id"]).created_by == member


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "No model"}, "model"),
        ({"model": "no-such-model", "name": "x"}, "model"),
        ({"model": PACKSHOT}, "name"),
        ({"model": PACKSHOT, "name": ""}, "name"),
        ({"model": PACKSHOT, "name": "x", "params": [1]}, "params"),
        ({"model": PACKSHOT, "name": "x", "params": {"colour": "red"}}, "colour"),
        (
            {"model": PACKSHOT, "name": "x", "params": {"background_color": "nope"}},
            "background_color",
        ),
        (
            {"model": PACKSHOT, "name": "x", "params": {"image_url": "https://a.test/a.jpg"}},
            "image_url",
        ),
        ({"model": SCENE, "name": "x", "backdrop": "moon"}, "backdrop"),
        ({"model": PACKSHOT, "name": "x", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_preset_is_refused_naming_the_field_and_nothing_is_saved(
    api: Client, tenant: Tenant, payload: dict[str, Any], field: str
):
    response = api.post("/api/v1/presets", payload, content_type="application/json")

    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"], body
    assert not Preset.objects.for_tenant(tenant).exists()


def test_a_preset_is_patched_with_the_fields_given(api: Client, tenant: Tenant):
    preset = _own(tenant)

    response = api.patch(
        f"/api/v1/presets/{preset.pk}",
        {"name": "House black", "params": {"background_color": "#000000"}},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    preset.refresh_from_db()
    assert (preset.name, preset.slug) == ("House black", "house-black")
    assert preset.params == {"background_color": "#000000"}
    assert response.json()["params"] == {"background_color": "#000000"}
    # Only the description: the rest stays.
    api.patch(
        f"/api/v1/presets/{preset.pk}", {"description": "dark"}, content_type="application/json"
    )
    preset.refresh_from_db()
    assert (preset.name, preset.description) == ("House black", "dark")
    assert preset.params == {"background_color": "#000000"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"params": {"colour": "red"}}, "colour"),
        ({"params": "red"}, "params"),
        ({"model": SCENE}, "model"),
        ({"slug": "mine"}, "slug"),
    ],
)
def test_a_bad_patch_is_refused_naming_the_field_and_changes_nothing(
    api: Client, tenant: Tenant, payload: dict[str, Any], field: str
):
    preset = _own(tenant)

    response = api.patch(f"/api/v1/presets/{preset.pk}", payload, content_type="application/json")

    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"], body
    preset.refresh_from_db()
    assert (preset.name, preset.model) == ("House white", PACKSHOT)
    assert preset.params == {"background_color": "#FAFAFA"}


def test_a_preset_is_deleted(api: Client, tenant: Tenant):
    preset = _own(tenant)

    response = api.delete(f"/api/v1/presets/{preset.pk}")

    assert response.status_code == 204
    assert not Preset.objects.filter(pk=preset.pk).exists()
    assert_problem(api.get(f"/api/v1/presets/{preset.pk}"), 404, "not_found")


def test_a_system_preset_is_readable_but_changing_or_deleting_it_is_forbidden(api: Client):
    system = _system()
    before = (system.name, dict(system.params))

    got = api.get(f"/api/v1/presets/{system.pk}")
    patched = api.patch(
        f"/api/v1/presets/{system.pk}", {"name": "Mine now"}, content_type="application/json"
    )
    deleted = api.delete(f"/api/v1/presets/{system.pk}")

    assert got.status_code == 200 and got.json()["system"] is True
    for response, verb in ((patched, "edited"), (deleted, "deleted")):
        body = assert_problem(response, 403, "forbidden")
        assert f"system presets can't be {verb}" in body["detail"]
        assert "copy" in body["detail"]
    system.refresh_from_db()
    assert (system.name, system.params) == before


def test_a_system_preset_is_copied_into_the_workspace(api: Client, tenant: Tenant):
    system = _system()

    response = api.post(f"/api/v1/presets/{system.pk}/copy")

    assert response.status_code == 201, response.content
    copy = Preset.objects.get(pk=response.json()["id"])
    assert copy.tenant == tenant
    assert (copy.model, copy.params, copy.name) == (
        system.model,
        system.params,
        f"{system.name} (copy)",
    )
    assert response.json()["system"] is False


def test_another_workspaces_preset_is_404_on_every_route(
    api: Client, tenant: Tenant, other_tenant: Tenant, outsider: User
):
    theirs = _own(other_tenant, "Their secret")
    url = f"/api/v1/presets/{theirs.pk}"
    outsider_session = login_client(outsider)
    outsider_session.get(f"/w/{other_tenant.slug}/")
    mine = _own(tenant)

    assert_problem(api.get(url), 404, "not_found")
    assert_problem(api.patch(url, {"name": "x"}, content_type="application/json"), 404, "not_found")
    assert_problem(api.delete(url), 404, "not_found")
    assert_problem(api.post(f"{url}/copy"), 404, "not_found")
    # And the other way round, signed in as the other workspace's owner.
    assert_problem(outsider_session.get(f"/api/v1/presets/{mine.pk}"), 404, "not_found")
    assert_problem(outsider_session.delete(f"/api/v1/presets/{mine.pk}"), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.name == "Their secret"
    assert Preset.objects.filter(pk=mine.pk).exists()
    assert not Preset.objects.for_tenant(tenant).exclude(pk=mine.pk).exists()
