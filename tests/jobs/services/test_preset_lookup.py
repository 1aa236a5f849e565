"""The preset a job names, for the new-job page (by id) and the API (by id or slug):
one the workspace may use, or a refusal naming the `preset` field."""

from __future__ import annotations

import pytest

from accounts.models import Tenant, User
from jobs import services
from jobs.models import Preset

pytestmark = pytest.mark.django_db

PACKSHOT = "bria-product-packshot"


def _own(tenant: Tenant, name: str = "Navy") -> Preset:
    return services.preset_create(
        tenant=tenant, user=None, model=PACKSHOT, name=name, params={"background_color": "#112233"}
    )


def _system() -> Preset:
    return Preset.objects.system().for_model(PACKSHOT).order_by("slug")[:1].get()


def _refusal(**kwargs: object) -> services.JobError:
    with pytest.raises(services.JobError) as raised:
        services.preset_visible_get(**kwargs)  # type: ignore[arg-type]
    assert raised.value.code == "validation_error"
    assert raised.value.field == "preset"
    return raised.value


@pytest.mark.parametrize("slugs", [True, False])
def test_no_preset_named_is_none(tenant: Tenant, slugs: bool) -> None:
    assert services.preset_visible_get(tenant=tenant, value="", slugs=slugs) is None
    assert services.preset_visible_get(tenant=tenant, value=None, slugs=slugs) is None


@pytest.mark.parametrize("slugs", [True, False])
def test_a_workspace_gets_its_own_and_the_system_presets_by_id(tenant: Tenant, slugs: bool) -> None:
    own, system = _own(tenant), _system()
    assert services.preset_visible_get(tenant=tenant, value=str(own.pk), slugs=slugs) == own
    assert services.preset_visible_get(tenant=tenant, value=system.pk, slugs=slugs) == system


@pytest.mark.parametrize("slugs", [True, False])
def test_another_workspaces_preset_does_not_exist(
    tenant: Tenant, outsider: User, slugs: bool
) -> None:
    theirs = _own(outsider.memberships.get().tenant, name="Theirs")
    error = _refusal(tenant=tenant, value=str(theirs.pk), slugs=slugs)
    if slugs:  # the API names what it was sent
        assert error.message == f"preset: no preset '{theirs.pk}' in this workspace."
    else:
        assert error.message == "preset: this preset does not exist."


def test_the_api_names_a_preset_by_slug_its_own_before_the_systems(tenant: Tenant) -> None:
    system = _system()
    assert services.preset_visible_get(tenant=tenant, value=system.slug) == system
    own = Preset.objects.create(tenant=tenant, model=PACKSHOT, slug=system.slug, name="Mine")
    assert services.preset_visible_get(tenant=tenant, value=system.slug) == own


# "²" passes str.isdigit() but not int(); the last one is past any id's range.
@pytest.mark.parametrize("value", ["navy", "²", "-3", "9" * 30, "house\x00white"])
def test_the_new_job_page_takes_only_ids(tenant: Tenant, value: str) -> None:
    error = _refusal(tenant=tenant, value=value, slugs=False)
    assert error.message == "preset: choose a preset from the list."


@pytest.mark.parametrize("value", ["no-such-preset", "²", "9" * 30, "house\x00white"])
def test_a_preset_that_cannot_exist_is_refused_by_the_api(tenant: Tenant, value: str) -> None:
    error = _refusal(tenant=tenant, value=value)
    assert error.message == f"preset: no preset '{value}' in this workspace."
    assert error.errors == {"preset": f"no preset '{value}' in this workspace"}
