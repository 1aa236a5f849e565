"""The model catalog over the API: `/api/v1/models` and `/api/v1/models/<slug>`."""

from __future__ import annotations

import pytest
from django.test import Client
from jsonschema import Draft202012Validator

from accounts import services as account_services
from jobs import catalog

SLUGS = {
    "ai-product-photography",
    "segmind-scenecraft-v01",
    "qwen-image-edit-plus-product-photography",
    "65c9c7f641c340d7ef2f7134-v1",
    "bria-product-packshot",
}
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture
def api(tenant) -> Client:
    key = account_services.api_key_create(tenant=tenant, name="t").secret
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def _models(api: Client) -> dict[str, dict]:
    response = api.get("/api/v1/models")
    assert response.status_code == 200
    return {item["slug"]: item for item in response.json()["results"]}


def test_the_catalog_lists_the_five_models(api):
    models = _models(api)
    assert set(models) == SLUGS
    for slug, item in models.items():
        spec = catalog.model(slug)
        assert item["title"] == spec.title
        assert item["summary"]
        assert item["input_image_params"] == list(spec.input_image_params)
        assert item["defaults"] == spec.defaults()


def test_every_model_but_the_pixelflow_workflow_is_available_on_the_local_engine(api, settings):
    assert settings.SEGMIND_API_KEY == ""
    models = _models(api)
    assert {slug: item["available"] for slug, item in models.items()} == {
        slug: slug != "65c9c7f641c340d7ef2f7134-v1" for slug in SLUGS
    }
    assert {item["engine"] for item in models.values()} == {"local"}


def test_each_models_params_schema_is_a_draft_2020_12_schema(api):
    for slug, item in _models(api).items():
        schema = item["params_schema"]
        assert schema["$schema"] == DRAFT_2020_12
        Draft202012Validator.check_schema(schema)
        spec = catalog.model(slug)
        assert set(schema["properties"]) == set(spec.params)
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) == {n for n, p in spec.params.items() if p.required}


def test_the_catalog_defaults_satisfy_each_models_schema(api):
    for slug, item in _models(api).items():
        spec = catalog.model(slug)
        validator = Draft202012Validator(item["params_schema"])
        example = {
            **item["defaults"],
            **{n: p.default for n, p in spec.params.items() if p.required},
        }
        errors = [e.message for e in validator.iter_errors(example)]
        assert errors == [], slug
        assert not validator.is_valid({**example, "not_a_parameter": 1}), slug


def test_the_schema_states_the_parameters_rules(api):
    properties = _models(api)["ai-product-photography"]["params_schema"]["properties"]
    assert properties["steps"]["type"] == "integer"
    assert (properties["steps"]["minimum"], properties["steps"]["maximum"]) == (1, 20)
    assert len(properties["aspect_ratio"]["enum"]) == 23
    assert properties["image"]["format"] == "uri"
    packshot = _models(api)["bria-product-packshot"]["params_schema"]["properties"]
    validator = Draft202012Validator({"type": "object", "properties": packshot})
    assert validator.is_valid({"background_color": "#112233"})
    assert not validator.is_valid({"background_color": "pink"})


def test_the_output_size_is_given_for_the_megapixel_models_only(api):
    models = _models(api)
    for slug in ("ai-product-photography", "segmind-scenecraft-v01"):
        spec = catalog.model(slug)
        width, height = catalog.output_size(
            float(spec.params["megapixel"].default), spec.params["aspect_ratio"].default
        )
        assert models[slug]["output_size"] == {"width": width, "height": height}
    assert models["ai-product-photography"]["output_size"] == {"width": 1280, "height": 768}
    for slug in SLUGS - {"ai-product-photography", "segmind-scenecraft-v01"}:
        assert models[slug]["output_size"] is None, slug


def test_one_model_can_be_fetched_by_its_slug(api):
    response = api.get("/api/v1/models/bria-product-packshot")
    assert response.status_code == 200
    item = response.json()
    assert item == _models(api)["bria-product-packshot"]
    assert item["available"] is True
    assert item["params_schema"]["$schema"] == DRAFT_2020_12


def test_an_unknown_model_slug_is_404(api):
    response = api.get("/api/v1/models/no-such-model")
    assert response.status_code == 404
    assert "no-such-model" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/models", "/api/v1/models/bria-product-packshot"])
def test_the_catalog_needs_authentication(db, path):
    assert Client().get(path).status_code in (401, 403)
    bad_key = Client(HTTP_AUTHORIZATION="Bearer ps_nothing_here")
    assert bad_key.get(path).status_code in (401, 403)


def test_a_signed_in_member_can_read_the_catalog_too(owner_client):
    response = owner_client.get("/api/v1/models")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 5


def test_the_api_resolves_parameters_with_the_same_validator(api):
    response = api.post(
        "/api/v1/models/ai-product-photography/resolve",
        {"params": {"prompt": "on marble", "megapixel": 1.5, "aspect_ratio": "16:9 (Panorama)"}},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["params"]["megapixel"] == "1.5"
    assert body["params"]["steps"] == 8
    assert isinstance(body["params"]["seed"], int)
    assert body["output_size"] == {"width": 1664, "height": 896}


def test_the_api_names_every_refused_field(api):
    response = api.post(
        "/api/v1/models/ai-product-photography/resolve",
        {"params": {"prompt": "x", "steps": 99, "sharpness": 1}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "steps": "must be between 1 and 20",
        "sharpness": "unknown parameter for AI Product Photography",
    }


def test_the_api_refuses_parameters_that_are_not_an_object(api):
    response = api.post(
        "/api/v1/models/bria-product-packshot/resolve",
        {"params": ["background_color"]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "params" in response.json()["errors"]


def test_the_models_list_is_one_page_shaped_like_every_list(api):
    body = api.get("/api/v1/models").json()

    assert set(body) == {"next", "previous", "results"}
    assert body["next"] is None
    assert body["previous"] is None
    assert {item["slug"] for item in body["results"]} == SLUGS
