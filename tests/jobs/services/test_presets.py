"""Presets, and a job as model + preset + overrides.

A preset is a named, partial parameter set for one model: the system's (shipped in
`jobs/system_presets.json`) or a workspace's own. Every parameter set - a preset's, a
job's, the preview's - goes through the catalog's one validator.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs import catalog, services
from jobs.forms import param_field_name
from jobs.models import Asset, Job, JobStatus, Preset

PACKSHOT = "bria-product-packshot"
AIPP = "ai-product-photography"
SCENECRAFT = "segmind-scenecraft-v01"
PROMPT = "A mug on a marble counter"


def _field(model: str, name: str) -> str:
    return param_field_name(model, name)


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _upload(product_jpeg: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")


def _preset(tenant, user=None, *, model: str = PACKSHOT, name: str = "Navy", params=None):
    return services.preset_create(
        tenant=tenant,
        user=user,
        model=model,
        name=name,
        params={"background_color": "#112233"} if params is None else params,
    )


def _system_preset(model: str = PACKSHOT) -> Preset:
    return Preset.objects.system().for_model(model).order_by("slug")[:1].get()


def _preset_new_url(tenant, model: str) -> str:
    return reverse("preset_new", args=[tenant.slug]) + f"?model={model}"


def _assert_no_job() -> None:
    assert Job.objects.count() == 0
    assert Asset.objects.count() == 0


# System presets ------------------------------------------------------------------------


def test_system_presets_are_loaded_on_migrate_for_every_model(db):
    counts = Counter(Preset.objects.system().values_list("model", flat=True))
    assert {spec.slug for spec in catalog.all_models()} == set(counts)
    assert len(counts) == 5
    assert all(n >= 3 for n in counts.values()), counts
    assert not Preset.objects.filter(tenant__isnull=False).exists()


def test_the_system_presets_in_the_database_match_the_shipped_file(db):
    shipped = json.loads(services.SYSTEM_PRESETS_FILE.read_text())
    stored = {p.slug: p for p in Preset.objects.system()}
    assert set(stored) == {item["slug"] for item in shipped}
    for item in shipped:
        preset = stored[item["slug"]]
        assert preset.tenant_id is None
        assert preset.model == item["model"]
        assert preset.name == item["name"]
        assert preset.params == item["params"]


# Creating, editing, copying and deleting presets --------------------------------------


def test_an_owner_creates_a_preset_through_the_portal(owner_client, owner, tenant):
    url = _preset_new_url(tenant, PACKSHOT)
    page = owner_client.get(url)
    assert page.status_code == 200
    assert f'name="{_field(PACKSHOT, "background_color")}"' in page.content.decode()

    response = owner_client.post(
        url,
        {
            "name": "  Studio navy ",
            "description": "Dark blue for the winter range",
            _field(PACKSHOT, "background_color"): "#112233",
            _field(PACKSHOT, "force_rmbg"): "true",
            _field(PACKSHOT, "content_moderation"): "",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("preset_list", args=[tenant.slug])
    preset = Preset.objects.for_tenant(tenant).get()
    assert preset.name == "Studio navy"
    assert preset.model == PACKSHOT
    assert preset.created_by == owner
    # Only what was given, in its canonical type: no defaults filled in.
    assert preset.params == {"background_color": "#112233", "force_rmbg": True}
    listing = owner_client.get(reverse("preset_list", args=[tenant.slug]))
    assert "Studio navy" in _text(listing)
    assert reverse("preset_edit", args=[tenant.slug, preset.pk]) in listing.content.decode()


def test_a_preset_stores_values_in_the_catalogs_canonical_form(tenant):
    preset = _preset(
        tenant, model=AIPP, name="Big", params={"megapixel": 1.5, "steps": "12", "lighting": "no"}
    )
    assert preset.params == {"megapixel": "1.5", "steps": 12, "lighting": False}


@pytest.mark.parametrize(
    ("model", "name", "value", "message"),
    [
        # Each named in the shop's words (the API's name is beside the field).
        (PACKSHOT, "background_color", "pink", "Background colour: must be 'transparent' or a"),
        (AIPP, "steps", "25", "Detail steps: must be between 1 and 20"),
        (AIPP, "steps", "0", "Detail steps: must be between 1 and 20"),
        (AIPP, "aspect_ratio", "7:3", "Shape: must be one of 1:1 (Perfect Square)"),
        (AIPP, "guidance_scale", "2.5", "Follow the description: must be a whole number"),
    ],
)
def test_a_preset_with_an_invalid_parameter_cannot_be_saved(
    owner_client, tenant, model, name, value, message
):
    response = owner_client.post(
        _preset_new_url(tenant, model), {"name": "Broken", _field(model, name): value}
    )
    assert response.status_code == 200
    text = _text(response)
    assert message in text
    assert "The preset was not saved" in text
    assert not Preset.objects.for_tenant(tenant).exists()


def test_a_preset_needs_a_name(owner_client, tenant):
    response = owner_client.post(
        _preset_new_url(tenant, PACKSHOT),
        {"name": "   ", _field(PACKSHOT, "background_color"): "#112233"},
    )
    assert response.status_code == 200
    assert not Preset.objects.for_tenant(tenant).exists()


def test_a_preset_cannot_set_the_models_product_photo(tenant):
    with pytest.raises(services.PresetError) as caught:
        _preset(tenant, params={"image_url": "https://shop.example/mug.jpg"})
    assert set(caught.value.errors) == {"image_url"}
    assert "image_url" in caught.value.message
    assert not Preset.objects.for_tenant(tenant).exists()


def test_a_preset_with_an_unknown_parameter_cannot_be_saved(tenant):
    with pytest.raises(services.PresetError) as caught:
        _preset(tenant, params={"colour": "#112233"})
    assert "colour" in caught.value.errors
    assert not Preset.objects.for_tenant(tenant).exists()


def test_editing_a_preset_changes_its_name_and_replaces_its_params(owner_client, tenant):
    preset = _preset(tenant, params={"background_color": "#112233", "force_rmbg": True})
    url = reverse("preset_edit", args=[tenant.slug, preset.pk])
    page = owner_client.get(url).content.decode()
    assert 'value="#112233"' in page

    response = owner_client.post(
        url,
        {
            "name": "Warm grey",
            _field(PACKSHOT, "background_color"): "#EEEEEE",
            _field(PACKSHOT, "content_moderation"): "false",
        },
    )

    assert response.status_code == 302
    preset.refresh_from_db()
    assert preset.name == "Warm grey"
    assert preset.slug == "warm-grey"
    assert preset.params == {"background_color": "#EEEEEE", "content_moderation": False}


def test_an_invalid_edit_leaves_the_preset_as_it_was(owner_client, tenant):
    preset = _preset(tenant)
    response = owner_client.post(
        reverse("preset_edit", args=[tenant.slug, preset.pk]),
        {"name": "Renamed", _field(PACKSHOT, "background_color"): "pink"},
    )
    assert response.status_code == 200
    assert "Background colour: must be" in _text(response)
    preset.refresh_from_db()
    assert preset.name == "Navy"
    assert preset.params == {"background_color": "#112233"}


def test_copying_a_system_preset_makes_the_tenants_own_editable_copy(owner_client, owner, tenant):
    source = _system_preset(AIPP)
    before = Preset.objects.system().count()

    response = owner_client.post(reverse("preset_copy", args=[tenant.slug, source.pk]))

    copy = Preset.objects.for_tenant(tenant).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("preset_edit", args=[tenant.slug, copy.pk])
    assert copy.model == source.model
    assert copy.params == source.params
    assert copy.name == f"{source.name} (copy)"
    assert copy.created_by == owner
    assert Preset.objects.system().count() == before
    # The copy is the tenant's to edit; the system preset is untouched.
    edited = owner_client.post(
        reverse("preset_edit", args=[tenant.slug, copy.pk]),
        {"name": "My kitchen", _field(AIPP, "steps"): "12"},
    )
    assert edited.status_code == 302
    copy.refresh_from_db()
    assert copy.params == {"steps": 12}
    source.refresh_from_db()
    assert source.name != "My kitchen"
    assert source.tenant_id is None


def test_copying_ones_own_preset_names_the_copy(owner_client, tenant):
    preset = _preset(tenant)
    owner_client.post(reverse("preset_copy", args=[tenant.slug, preset.pk]))
    names = set(Preset.objects.for_tenant(tenant).values_list("name", flat=True))
    assert names == {"Navy", "Navy (copy)"}
    slugs = set(Preset.objects.for_tenant(tenant).values_list("slug", flat=True))
    assert len(slugs) == 2


def test_deleting_a_preset_removes_only_the_tenants_own(owner_client, tenant, outsider):
    own = _preset(tenant)
    keep = _preset(tenant, name="Keep")
    other_tenant = outsider.memberships.get().tenant
    theirs = _preset(other_tenant, name="Navy")
    systems = Preset.objects.system().count()

    response = owner_client.post(reverse("preset_delete", args=[tenant.slug, own.pk]))

    assert response.status_code == 302
    assert not Preset.objects.filter(pk=own.pk).exists()
    assert Preset.objects.filter(pk=keep.pk).exists()
    assert Preset.objects.filter(pk=theirs.pk).exists()
    assert Preset.objects.system().count() == systems


def test_jobs_made_with_a_deleted_preset_keep_their_params(tenant, owner, product_jpeg):
    preset = _preset(tenant)
    job = services.job_submit(
        tenant=tenant, user=owner, model=PACKSHOT, upload=_upload(product_jpeg), preset=preset
    )
    services.preset_delete(tenant=tenant, preset=preset)
    job.refresh_from_db()
    assert job.preset is None
    assert job.params["background_color"] == "#112233"


def test_a_tenant_cannot_edit_or_delete_a_system_preset(owner_client, tenant):
    system = _system_preset()
    edit_url = reverse("preset_edit", args=[tenant.slug, system.pk])
    assert owner_client.get(edit_url).status_code == 404
    assert owner_client.post(edit_url, {"name": "Mine now"}).status_code == 404
    delete_url = reverse("preset_delete", args=[tenant.slug, system.pk])
    assert owner_client.post(delete_url).status_code == 404
    system.refresh_from_db()
    assert system.name != "Mine now"
    with pytest.raises(services.PresetError):
        services.preset_update(tenant=tenant, preset=system, name="x", params={})
    with pytest.raises(services.PresetError):
        services.preset_delete(tenant=tenant, preset=system)
    assert Preset.objects.filter(pk=system.pk).exists()


def test_a_tenant_cannot_see_edit_copy_or_delete_another_tenants_preset(
    owner_client, tenant, outsider
):
    other_tenant = outsider.memberships.get().tenant
    theirs = _preset(other_tenant, name="Secret sauce")
    edit_url = reverse("preset_edit", args=[tenant.slug, theirs.pk])
    assert owner_client.get(edit_url).status_code == 404
    assert owner_client.post(edit_url, {"name": "Stolen"}).status_code == 404
    assert (
        owner_client.post(reverse("preset_delete", args=[tenant.slug, theirs.pk])).status_code
        == 404
    )
    assert (
        owner_client.post(reverse("preset_copy", args=[tenant.slug, theirs.pk])).status_code == 404
    )
    listing = owner_client.get(reverse("preset_list", args=[tenant.slug]))
    assert "Secret sauce" not in _text(listing)
    theirs.refresh_from_db()
    assert theirs.name == "Secret sauce"
    assert not Preset.objects.for_tenant(tenant).exists()
    with pytest.raises(services.PresetError):
        services.preset_copy(tenant=tenant, user=None, preset=theirs)


def test_a_member_can_manage_presets_too(member_client, member, tenant):
    created = member_client.post(
        _preset_new_url(tenant, PACKSHOT),
        {"name": "Member's white", _field(PACKSHOT, "background_color"): "#FAFAFA"},
    )
    assert created.status_code == 302
    preset = Preset.objects.for_tenant(tenant).get()
    assert preset.created_by == member

    edited = member_client.post(
        reverse("preset_edit", args=[tenant.slug, preset.pk]),
        {"name": "Member's grey", _field(PACKSHOT, "background_color"): "#CCCCCC"},
    )
    assert edited.status_code == 302
    preset.refresh_from_db()
    assert (preset.name, preset.params) == ("Member's grey", {"background_color": "#CCCCCC"})

    copied = member_client.post(reverse("preset_copy", args=[tenant.slug, _system_preset().pk]))
    assert copied.status_code == 302
    assert Preset.objects.for_tenant(tenant).count() == 2

    deleted = member_client.post(reverse("preset_delete", args=[tenant.slug, preset.pk]))
    assert deleted.status_code == 302
    assert not Preset.objects.filter(pk=preset.pk).exists()


def test_the_preset_list_shows_the_system_presets_and_the_tenants_own(owner_client, tenant):
    own = _preset(tenant, name="House navy")
    page = _text(owner_client.get(reverse("preset_list", args=[tenant.slug])))
    assert "House navy" in page
    for preset in Preset.objects.system():
        assert preset.name in page
        assert reverse("preset_copy", args=[tenant.slug, preset.pk]) in page
        assert f'href="{reverse("preset_edit", args=[tenant.slug, preset.pk])}"' not in page
    assert reverse("preset_delete", args=[tenant.slug, own.pk]) in page


# A job is model + preset + overrides ---------------------------------------------------


def test_a_job_resolves_defaults_then_preset_then_overrides(tenant, owner, product_jpeg):
    preset = _preset(tenant, params={"background_color": "#112233"})

    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model=PACKSHOT,
        upload=_upload(product_jpeg),
        preset=preset,
        params={"force_rmbg": "true"},
    )

    assert job.preset == preset
    assert job.params == {
        **catalog.model(PACKSHOT).defaults(),
        "background_color": "#112233",
        "force_rmbg": True,
    }
    assert job.params["content_moderation"] is True


def test_an_override_wins_over_the_preset(tenant, owner, product_jpeg):
    preset = _preset(tenant, params={"background_color": "#112233", "force_rmbg": True})
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model=PACKSHOT,
        upload=_upload(product_jpeg),
        preset=preset,
        params={"background_color": "transparent"},
    )
    assert job.params["background_color"] == "transparent"
    assert job.params["force_rmbg"] is True


def test_a_job_with_a_system_preset_takes_its_params(tenant, owner, product_jpeg):
    preset = _system_preset(PACKSHOT)
    job = services.job_submit(
        tenant=tenant, user=owner, model=PACKSHOT, upload=_upload(product_jpeg), preset=preset
    )
    assert job.preset == preset
    for name, value in preset.params.items():
        assert job.params[name] == value


def test_a_job_with_a_preset_through_the_portal(
    owner_client, owner, tenant, product_jpeg, django_capture_on_commit_callbacks
):
    preset = _preset(tenant, params={"background_color": "#112233"})

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("job_new", args=[tenant.slug]),
            {
                "image": _upload(product_jpeg),
                "model": PACKSHOT,
                "preset": str(preset.pk),
                _field(PACKSHOT, "force_rmbg"): "true",
                _field(PACKSHOT, "content_moderation"): "",
            },
        )

    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job_detail", args=[tenant.slug, job.id])
    assert job.preset == preset
    assert job.created_by == owner
    assert job.params == {
        "background_color": "#112233",
        "content_moderation": True,
        "force_rmbg": True,
    }
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    detail = _text(owner_client.get(response["Location"]))
    assert "from the preset “Navy”" in detail
    assert "#112233" in detail


def test_a_preset_of_another_model_is_refused_by_the_service(tenant, owner, product_jpeg):
    preset = _system_preset(AIPP)
    with pytest.raises(services.JobError) as caught:
        services.job_submit(
            tenant=tenant, user=owner, model=PACKSHOT, upload=_upload(product_jpeg), preset=preset
        )
    assert caught.value.field == "preset"
    assert "preset" in caught.value.errors
    _assert_no_job()


def test_a_preset_of_another_model_is_refused_through_the_portal(
    owner_client, tenant, product_jpeg
):
    preset = _system_preset(AIPP)
    response = owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {"image": _upload(product_jpeg), "model": PACKSHOT, "preset": str(preset.pk)},
    )
    assert response.status_code == 200
    # The page says why: the preset belongs to another model.
    assert f"preset: {preset.name} is a preset for {preset.model_title}" in _text(response)
    _assert_no_job()


def test_another_tenants_preset_id_is_refused(owner_client, tenant, outsider, product_jpeg):
    theirs = _preset(outsider.memberships.get().tenant, name="Theirs")
    response = owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {"image": _upload(product_jpeg), "model": PACKSHOT, "preset": str(theirs.pk)},
    )
    assert response.status_code == 200
    assert "preset: this preset does not exist" in _text(response)
    _assert_no_job()


def test_the_job_service_refuses_another_tenants_preset(tenant, owner, outsider, product_jpeg):
    theirs = _preset(outsider.memberships.get().tenant, name="Theirs")
    with pytest.raises(services.JobError) as raised:
        services.job_submit(
            tenant=tenant, user=owner, model=PACKSHOT, upload=_upload(product_jpeg), preset=theirs
        )
    assert raised.value.field == "preset"
    _assert_no_job()


# "²" passes str.isdigit() but not int(); the last one is past any id's range.
@pytest.mark.parametrize("value", ["navy", "²", "-3", "9" * 30])
def test_a_preset_that_is_not_a_number_is_refused(owner_client, tenant, product_jpeg, value):
    response = owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {"image": _upload(product_jpeg), "model": PACKSHOT, "preset": value},
    )
    assert response.status_code == 200
    assert "preset: choose a preset from the list" in _text(response)
    _assert_no_job()


def test_an_invalid_override_through_the_portal_creates_no_job(owner_client, tenant, product_jpeg):
    response = owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {
            "image": _upload(product_jpeg),
            "model": PACKSHOT,
            _field(PACKSHOT, "background_color"): "pink",
        },
    )
    assert response.status_code == 200
    text = _text(response)
    # In the shop's words, beside the field and above the form.
    assert "Background colour: must be 'transparent' or a hex colour" in text
    assert "Some settings need fixing: Background colour: must be" in text
    _assert_no_job()


# Resolving parameters, and the preview -------------------------------------------------


def test_an_unknown_parameter_is_refused_naming_it():
    spec = catalog.model(PACKSHOT)
    with pytest.raises(catalog.ParamsError) as caught:
        catalog.resolve_params(
            spec, {"colour": "#112233", "background_color": "pink"}, partial=True
        )
    assert set(caught.value.errors) == {"colour", "background_color"}
    assert "colour: unknown parameter" in caught.value.message


def test_the_job_service_refuses_an_unknown_override_naming_it(tenant, owner, product_jpeg):
    with pytest.raises(services.JobError) as caught:
        services.job_submit(
            tenant=tenant,
            user=owner,
            model=PACKSHOT,
            upload=_upload(product_jpeg),
            params={"colour": "#112233"},
        )
    assert caught.value.field == "colour"
    _assert_no_job()


def _preview(client, tenant, model: str, **params: str):
    if model == AIPP:
        params.setdefault("prompt", PROMPT)
    data = {"model": model, **{_field(model, name): value for name, value in params.items()}}
    return client.post(reverse("job_preview", args=[tenant.slug]), data)


@pytest.mark.parametrize(
    ("megapixel", "aspect_ratio", "size"),
    [
        ("1.0", "8:5 (Cinematic View)", {"width": 1280, "height": 768}),
        ("1.5", "16:9 (Panorama)", {"width": 1664, "height": 896}),
        ("1", "1:1 (Perfect Square)", {"width": 1024, "height": 1024}),
    ],
)
def test_the_preview_returns_the_resolved_params_and_output_size(
    owner_client, tenant, megapixel, aspect_ratio, size
):
    response = _preview(owner_client, tenant, AIPP, megapixel=megapixel, aspect_ratio=aspect_ratio)
    assert response.status_code == 200
    data = response.json()
    assert data["errors"] == {}
    assert data["output_size"] == size
    assert data["params"]["megapixel"] == str(float(megapixel))
    assert data["params"]["aspect_ratio"] == aspect_ratio
    assert data["params"]["steps"] == 8  # a catalog default
    assert "image" not in data["params"]


def test_the_preview_applies_the_preset_before_the_overrides(owner_client, tenant):
    preset = _preset(
        tenant,
        model=AIPP,
        name="Wide",
        params={"megapixel": "1.5", "aspect_ratio": "1:1 (Perfect Square)"},
    )
    response = owner_client.post(
        reverse("job_preview", args=[tenant.slug]),
        {
            "model": AIPP,
            "preset": str(preset.pk),
            _field(AIPP, "prompt"): PROMPT,
            _field(AIPP, "aspect_ratio"): "16:9 (Panorama)",
        },
    )
    data = response.json()
    assert data["params"]["megapixel"] == "1.5"
    assert data["params"]["aspect_ratio"] == "16:9 (Panorama)"
    assert data["output_size"] == {"width": 1664, "height": 896}


def test_the_preview_has_no_output_size_for_a_model_without_one(owner_client, tenant):
    data = _preview(owner_client, tenant, PACKSHOT).json()
    assert data["output_size"] is None
    assert data["params"] == catalog.model(PACKSHOT).defaults()


def test_the_preview_refuses_an_invalid_value_naming_the_field(owner_client, tenant):
    response = _preview(owner_client, tenant, AIPP, steps="99", megapixel="3")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["steps"] == "must be between 1 and 20"
    assert "megapixel" in errors


def test_the_preview_asks_for_a_required_prompt(owner_client, tenant):
    response = owner_client.post(reverse("job_preview", args=[tenant.slug]), {"model": AIPP})
    assert response.status_code == 400
    assert response.json()["errors"] == {"prompt": "is required"}


def test_the_preview_refuses_a_preset_of_another_model(owner_client, tenant):
    response = owner_client.post(
        reverse("job_preview", args=[tenant.slug]),
        {"model": PACKSHOT, "preset": str(_system_preset(AIPP).pk)},
    )
    assert response.status_code == 400
    assert "preset" in response.json()["errors"]


def test_the_preview_refuses_an_unknown_model(owner_client, tenant):
    response = owner_client.post(reverse("job_preview", args=[tenant.slug]), {"model": "nope"})
    assert response.status_code == 400
    assert "model" in response.json()["errors"]


def test_the_preview_says_the_seed_is_random_when_none_is_given(owner_client, tenant):
    data = _preview(owner_client, tenant, AIPP).json()
    assert isinstance(data["params"]["seed"], str)
    assert "random" in data["params"]["seed"]
    data = _preview(owner_client, tenant, AIPP, seed="-1").json()
    assert "random" in data["params"]["seed"]


def test_the_preview_keeps_an_explicit_seed(owner_client, tenant):
    data = _preview(owner_client, tenant, AIPP, seed="4242").json()
    assert data["params"]["seed"] == 4242


def test_a_job_keeps_a_given_seed_and_draws_one_otherwise():
    spec = catalog.model(AIPP)
    image = frozenset({"image"})
    given = catalog.resolve_params(spec, {"prompt": PROMPT, "seed": "77"}, attached=image)
    assert given["seed"] == 77
    drawn = catalog.resolve_params(spec, {"prompt": PROMPT}, attached=image)
    assert isinstance(drawn["seed"], int)
    assert 0 <= drawn["seed"] <= catalog.MAX_SEED


# The new-job page ------------------------------------------------------------------------


def _model_sections(page: str) -> dict[str, str]:
    parts = re.split(r'<section class="card model-settings" data-model="', page)[1:]
    return {part.split('"', 1)[0]: part.split("</section>", 1)[0] for part in parts}


def test_the_new_job_page_lists_each_models_presets(owner_client, tenant, outsider):
    own = _preset(tenant, name="House navy")
    _preset(outsider.memberships.get().tenant, name="Not ours")
    page = _text(owner_client.get(reverse("job_new", args=[tenant.slug])))
    sections = _model_sections(page)
    assert set(sections) == {spec.slug for spec in catalog.all_models()}
    for preset in Preset.objects.visible_to(tenant):
        option = f'<option value="{preset.pk}" >{preset.name}'
        for slug, section in sections.items():
            assert (option in section) == (slug == preset.model), (preset, slug)
    assert "House navy (yours)" in sections[own.model]
    assert "Not ours" not in page


def _select_options(page: str, field: str) -> list[str]:
    match = re.search(
        rf'<select id="{re.escape(field)}" name="{re.escape(field)}">(.*?)</select>', page, re.S
    )
    assert match, f"no select {field}"
    return re.findall(r'<option value="([^"]*)"', match.group(1))


def test_the_new_job_page_renders_parameter_controls_from_the_schema(owner_client, tenant):
    page = _text(owner_client.get(reverse("job_new", args=[tenant.slug])))
    spec = catalog.model(AIPP)

    ratios = _select_options(page, _field(AIPP, "aspect_ratio"))
    assert ratios[0] == ""  # "Default: …"
    assert ratios[1:] == list(spec.params["aspect_ratio"].enum or ())
    assert len(ratios[1:]) == 23

    steps = re.search(rf'<input type="number" id="{_field(AIPP, "steps")}"[^>]*>', page)
    assert steps, "no number input for steps"
    assert 'min="1"' in steps.group(0)
    assert 'max="20"' in steps.group(0)
    assert 'step="1"' in steps.group(0)

    scale = re.search(rf'<input type="number" id="{_field(AIPP, "scale")}"[^>]*>', page)
    assert scale and 'step="any"' in scale.group(0)

    assert _select_options(page, _field(PACKSHOT, "force_rmbg")) == ["", "true", "false"]
    assert f'<textarea id="{_field(AIPP, "prompt")}"' in page
    # The product photo has its own field, not a parameter control.
    assert f'name="{_field(AIPP, "image")}"' not in page
    assert f'name="{_field(PACKSHOT, "image_url")}"' not in page


def test_the_pixelflow_workflow_is_refused_on_the_local_engine_as_needing_segmind(
    owner_client, tenant, product_jpeg
):
    response = owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {
            "image": _upload(product_jpeg),
            "model": "65c9c7f641c340d7ef2f7134-v1",
            "param-65c9c7f641c340d7ef2f7134-v1-product_prompt": "a blue mug",
        },
    )
    assert response.status_code == 200
    assert "needs Segmind" in _text(response)
    assert "runs on the local engine" in _text(response)
    _assert_no_job()
