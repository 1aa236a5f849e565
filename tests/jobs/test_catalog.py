"""The catalog and its one validator, against Segmind's seed pages.

The parameter matrix is generated from the catalog itself: every parameter of every model
at its default, its bounds, just outside them, with a wrong type, and inside and outside
its allowed values. A parameter added to the catalog is tested without a new line here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from jobs import catalog
from jobs.catalog import ModelSpec, ParamsError, ParamSpec, resolve_params
from tests.jobs import seed_examples

MODELS = catalog.all_models()
PARAMS = [(m, p) for m in MODELS for p in m.params.values()]


def _id(case: Any) -> str:
    return case.slug if isinstance(case, ModelSpec) else case.name


def _valid_base(spec: ModelSpec) -> dict[str, Any]:
    """A payload with every required parameter set, so one field can be varied."""
    base: dict[str, Any] = {}
    for name, p in spec.params.items():
        if p.required:
            base[name] = p.default if p.default is not None else "https://shop.test/a.jpg"
    return base


def _resolve_one(spec: ModelSpec, name: str, value: Any) -> dict[str, Any]:
    return resolve_params(spec, {**_valid_base(spec), name: value})


def _refusal(spec: ModelSpec, name: str, value: Any) -> str:
    with pytest.raises(ParamsError) as raised:
        _resolve_one(spec, name, value)
    assert set(raised.value.errors) == {name}
    return f"{name}: {raised.value.errors[name]}"


# -- the catalog is data, and agrees with the seed pages ----------------------------------


def test_the_catalog_holds_the_five_endpoints_of_the_spec():
    assert {m.slug for m in MODELS} == {
        "ai-product-photography",
        "segmind-scenecraft-v01",
        "qwen-image-edit-plus-product-photography",
        "65c9c7f641c340d7ef2f7134-v1",
        "bria-product-packshot",
    }
    kinds = {m.slug: m.kind for m in MODELS}
    assert kinds["65c9c7f641c340d7ef2f7134-v1"] == "workflow"
    assert sum(kind == "v2" for kind in kinds.values()) == 4
    assert catalog.model("bria-product-packshot").image_param == "image_url"
    assert catalog.model("segmind-scenecraft-v01").typical_seconds == 33.64


def _seed_page_params(text: str) -> dict[str, dict[str, Any]]:
    """Parameter blocks of a seed page: name, required, `Default:` and `Range:`."""
    section = text.split("\nParameters\n", 1)[1].split("\nResponse Type", 1)[0]
    found: dict[str, dict[str, Any]] = {}
    for match in re.finditer(
        r"^(\w+)(required|optional)\n(.*?)(?=^\w+(?:required|optional)\n|\Z)", section, re.M | re.S
    ):
        name, required, body = match.groups()
        entry: dict[str, Any] = {"required": required == "required"}
        default = re.search(r"^Default: (.*?)(?:Range: (\S+) - (\S+))?$", body, re.M)
        if default:
            entry["default"] = json.loads(default.group(1))
            if default.group(2):
                entry["range"] = (float(default.group(2)), float(default.group(3)))
        found[name] = entry
    return found


@pytest.mark.skipif(
    not seed_examples.SEEDS.exists(), reason="shared/seeds is not beside the checkout"
)
@pytest.mark.parametrize("spec", MODELS, ids=_id)
def test_every_default_range_and_required_flag_is_the_seed_pages(spec: ModelSpec):
    raw = json.loads((seed_examples.SEEDS.parent / "spec" / "segmind-models.json").read_text())
    page_file = next(m["seed"] for m in raw if m["slug"] == spec.slug)
    page = _seed_page_params((seed_examples.SEEDS / page_file).read_text())
    assert set(page) == set(spec.params)
    for name, entry in page.items():
        param = spec.params[name]
        assert param.required == entry["required"], name
        if "default" in entry:
            if param.type == "megapixel":
                assert float(param.default) == float(entry["default"]), name
            else:
                assert param.default == entry["default"], name
        if "range" in entry:
            assert (param.minimum, param.maximum) == entry["range"], name


@pytest.mark.skipif(
    not seed_examples.SEEDS.exists(), reason="shared/seeds is not beside the checkout"
)
def test_the_committed_seed_examples_are_those_of_the_seed_pages():
    for spec in MODELS:
        raw = json.loads((seed_examples.SEEDS.parent / "spec" / "segmind-models.json").read_text())
        page_file = next(m["seed"] for m in raw if m["slug"] == spec.slug)
        parsed = seed_examples.parse_seed_page((seed_examples.SEEDS / page_file).read_text())
        assert parsed == seed_examples.load()[spec.slug]


# -- the seed examples round-trip ---------------------------------------------------------


@pytest.mark.parametrize("spec", MODELS, ids=_id)
def test_each_seed_example_validates_and_resolves_to_itself(spec: ModelSpec):
    payload = seed_examples.load()[spec.slug]
    resolved = resolve_params(spec, payload)
    # Two rules of the issue add to a payload: a seed of -1 is drawn and recorded, and a
    # parameter the example leaves out takes its documented default.
    expected = dict(payload)
    if payload.get("seed") == -1:
        assert isinstance(resolved["seed"], int) and 0 <= resolved["seed"] <= catalog.MAX_SEED
        expected["seed"] = resolved["seed"]
    expected.update({k: v for k, v in spec.defaults().items() if k not in payload})
    if "seed" in spec.params and "seed" not in payload:
        expected["seed"] = resolved["seed"]
    assert resolved == expected
    # The same JSON types too, e.g. megapixel stays the string "1.0".
    assert json.dumps(resolved, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_the_examples_that_set_every_parameter_come_back_exactly():
    examples = seed_examples.load()
    for slug in (
        "ai-product-photography",
        "qwen-image-edit-plus-product-photography",
        "65c9c7f641c340d7ef2f7134-v1",
    ):
        spec = catalog.model(slug)
        assert resolve_params(spec, examples[slug]) == examples[slug]


def test_resolving_twice_changes_nothing():
    for spec in MODELS:
        once = resolve_params(spec, seed_examples.load()[spec.slug])
        assert resolve_params(spec, once) == once


# -- the parameter matrix -----------------------------------------------------------------


DEFAULTED = [(m, p) for m, p in PARAMS if p.default is not None]


@pytest.mark.parametrize(
    ("spec", "param"), DEFAULTED, ids=[f"{m.slug}.{p.name}" for m, p in DEFAULTED]
)
def test_every_parameter_accepts_its_default(spec: ModelSpec, param: ParamSpec):
    resolved = _resolve_one(spec, param.name, param.default)
    if param.is_seed and param.default == -1:
        assert resolved["seed"] >= 0
    else:
        assert resolved[param.name] == param.default


RANGED = [(m, p) for m, p in PARAMS if p.minimum is not None and p.maximum is not None]


@pytest.mark.parametrize(("spec", "param"), RANGED, ids=[f"{m.slug}.{p.name}" for m, p in RANGED])
def test_every_ranged_parameter_accepts_its_bounds_and_refuses_just_outside(
    spec: ModelSpec, param: ParamSpec
):
    assert param.minimum is not None and param.maximum is not None
    step = 1 if param.type == "integer" else 0.01
    low, high = param.minimum, param.maximum
    if param.is_seed:
        low = 0  # -1 is the "draw one" value, tested on its own
    assert _resolve_one(spec, param.name, low)[param.name] == low
    assert _resolve_one(spec, param.name, high)[param.name] == high
    rule = f"must be between {catalog._num(param.minimum)} and {catalog._num(param.maximum)}"
    assert _refusal(spec, param.name, param.minimum - step) == f"{param.name}: {rule}"
    assert _refusal(spec, param.name, param.maximum + step) == f"{param.name}: {rule}"


def test_the_rule_is_stated_as_the_issue_asks():
    spec = catalog.model("ai-product-photography")
    assert _refusal(spec, "steps", 21) == "steps: must be between 1 and 20"


WRONG_TYPES: dict[str, list[Any]] = {
    "integer": ["many", 1.5, True, [], {}],
    "number": ["lots", False, [], {}],
    "boolean": ["maybe", 2, [], {}],
    "string": [12, True, [], {}],
    "uri": [12, "not a url", "ftp://x.test/a.jpg", []],
    "megapixel": ["huge", True, 3.7, []],
}


@pytest.mark.parametrize(("spec", "param"), PARAMS, ids=[f"{m.slug}.{p.name}" for m, p in PARAMS])
def test_every_parameter_refuses_a_wrong_type_naming_the_field(spec: ModelSpec, param: ParamSpec):
    for value in WRONG_TYPES[param.type]:
        message = _refusal(spec, param.name, value)
        assert message.startswith(f"{param.name}: must be"), (value, message)


ENUMS = [(m, p) for m, p in PARAMS if p.enum is not None]


@pytest.mark.parametrize(("spec", "param"), ENUMS, ids=[f"{m.slug}.{p.name}" for m, p in ENUMS])
def test_every_allowed_value_is_accepted_and_others_refused(spec: ModelSpec, param: ParamSpec):
    assert param.enum is not None
    for value in param.enum:
        assert _resolve_one(spec, param.name, value)[param.name] == value
    outside = "2.7" if param.type == "megapixel" else "not-" + str(param.enum[0])
    message = _refusal(spec, param.name, outside)
    assert message.startswith(f"{param.name}: must be one of {param.enum[0]}")


def test_the_completed_lists_of_the_protocol_are_in_the_catalog():
    ai = catalog.model("ai-product-photography")
    qwen = catalog.model("qwen-image-edit-plus-product-photography")
    assert len(ai.params["aspect_ratio"].enum or ()) == 23
    assert len(ai.params["detailer_mode"].enum or ()) == 11
    assert len(qwen.params["aspect_ratio"].enum or ()) == 11
    assert ai.params["megapixel"].enum == (
        "0.1",
        "0.5",
        "1.0",
        "1.5",
        "2.0",
        "2.1",
        "2.2",
        "2.3",
        "2.4",
        "2.5",
    )


def test_an_unknown_parameter_is_refused_naming_it():
    spec = catalog.model("bria-product-packshot")
    with pytest.raises(ParamsError) as raised:
        resolve_params(spec, {"image_url": "https://shop.test/a.jpg", "sharpness": 3})
    assert raised.value.errors == {"sharpness": "unknown parameter for Bria Product Packshot"}
    assert "sharpness" in raised.value.message


def test_all_errors_are_reported_together():
    spec = catalog.model("ai-product-photography")
    with pytest.raises(ParamsError) as raised:
        resolve_params(spec, {"steps": 99, "scale": "big", "colour": "red"})
    assert set(raised.value.errors) == {"steps", "scale", "colour", "image", "prompt"}
    assert raised.value.errors["image"] == "is required"


# -- safe coercions -----------------------------------------------------------------------


@pytest.mark.parametrize("given", ["1.0", "1", 1, 1.0, " 1.0 "])
def test_megapixel_is_sent_in_the_string_form_of_the_examples(given):
    spec = catalog.model("ai-product-photography")
    assert _resolve_one(spec, "megapixel", given)["megapixel"] == "1.0"


@pytest.mark.parametrize(
    ("given", "expected"), [("true", True), ("False", False), ("on", True), ("0", False)]
)
def test_a_boolean_from_a_form_is_understood(given, expected):
    spec = catalog.model("bria-product-packshot")
    assert _resolve_one(spec, "force_rmbg", given)["force_rmbg"] is expected


def test_numbers_from_a_form_keep_their_kind():
    spec = catalog.model("ai-product-photography")
    resolved = resolve_params(
        spec, {**_valid_base(spec), "steps": "12", "scale": "0.5", "x_value": "40"}
    )
    assert resolved["steps"] == 12 and isinstance(resolved["steps"], int)
    assert resolved["scale"] == 0.5
    assert resolved["x_value"] == 40 and isinstance(resolved["x_value"], int)


def test_unsafe_coercions_are_refused():
    spec = catalog.model("ai-product-photography")
    assert _refusal(spec, "steps", "12.5") == "steps: must be a whole number"
    assert _refusal(spec, "steps", True) == "steps: must be a whole number"
    assert _refusal(spec, "lighting", "yes please") == "lighting: must be true or false"
    assert _refusal(spec, "scale", "nan") == "scale: must be a number"


def test_a_hex_background_colour_or_transparent_is_accepted_and_nothing_else():
    spec = catalog.model("bria-product-packshot")
    for colour in ("transparent", "#FFF", "#12abEF"):
        assert _resolve_one(spec, "background_color", colour)["background_color"] == colour
    assert _refusal(spec, "background_color", "pink").startswith("background_color: must be")


def test_qwen_images_accept_a_url_or_base64():
    spec = catalog.model("qwen-image-edit-plus-product-photography")
    assert _resolve_one(spec, "image_1", "iVBORw0KGgo=")["image_1"] == "iVBORw0KGgo="
    assert (
        _refusal(spec, "image_1", "file:///etc/passwd")
        == "image_1: must be an http:// or https:// URL"
    )


# -- defaults and seeds -------------------------------------------------------------------


def test_missing_optional_parameters_take_the_catalogs_defaults():
    spec = catalog.model("segmind-scenecraft-v01")
    resolved = resolve_params(spec, {"image": "https://shop.test/a.jpg", "prompt": "on a table"})
    assert resolved["steps"] == 40
    assert resolved["megapixel"] == "1.5"
    assert resolved["aspect_ratio"] == "16:9 (Panorama)"
    assert resolved["dropshadow"] is True


@pytest.mark.parametrize("seed", [-1, "-1", "", None])
def test_a_random_seed_is_drawn_and_recorded(seed):
    spec = catalog.model("ai-product-photography")
    seeds = {_resolve_one(spec, "seed", seed)["seed"] for _ in range(5)}
    assert all(isinstance(s, int) and 0 <= s <= catalog.MAX_SEED for s in seeds)
    assert len(seeds) > 1


def test_an_explicit_seed_is_kept_so_a_job_can_be_rerun_identically():
    spec = catalog.model("qwen-image-edit-plus-product-photography")
    resolved = resolve_params(spec, {"prompt": "x", "seed": 87568756})
    assert resolve_params(spec, resolved) == resolved
    assert resolved["seed"] == 87568756


def test_a_model_without_a_seed_default_still_records_one():
    spec = catalog.model("qwen-image-edit-plus-product-photography")
    assert isinstance(resolve_params(spec, {"prompt": "x"})["seed"], int)


def test_a_partial_parameter_set_is_checked_without_defaults():
    spec = catalog.model("ai-product-photography")
    assert resolve_params(spec, {"steps": "9"}, partial=True) == {"steps": 9}
    with pytest.raises(ParamsError):
        resolve_params(spec, {"steps": 0}, partial=True)


# -- JSON Schema --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", MODELS, ids=_id)
def test_each_model_is_served_as_a_draft_2020_12_json_schema(spec: ModelSpec):
    schema = spec.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = seed_examples.load()[spec.slug]
    assert list(validator.iter_errors(example)) == []
    assert list(validator.iter_errors({**example, "sharpness": 1}))  # unknown refused
    assert set(schema["properties"]) == set(spec.params)


@pytest.mark.parametrize("spec", MODELS, ids=_id)
def test_the_schema_and_the_validator_agree_on_the_bounds(spec: ModelSpec):
    validator = jsonschema.Draft202012Validator(spec.json_schema())
    base = resolve_params(spec, seed_examples.load()[spec.slug])
    for name, param in spec.params.items():
        if param.maximum is not None and not param.is_seed:
            too_high = {**base, name: param.maximum + 1}
            assert list(validator.iter_errors(too_high)), name
            with pytest.raises(ParamsError):
                resolve_params(spec, too_high)


# -- output size --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("megapixel", "ratio", "size"),
    [
        (1.0, "8:5 (Cinematic View)", (1280, 768)),
        (1.5, "16:9 (Panorama)", (1664, 896)),
        (1.0, "1:1 (Perfect Square)", (1024, 1024)),
        (0.1, "32:9 (Extreme Ultrawide)", (576, 192)),
    ],
)
def test_the_output_size_follows_the_resolution_calculator(megapixel, ratio, size):
    assert catalog.output_size(megapixel, ratio) == size


def test_every_megapixel_and_ratio_gives_a_size_in_multiples_of_64():
    spec = catalog.model("ai-product-photography")
    for mp in spec.params["megapixel"].enum or ():
        for ratio in spec.params["aspect_ratio"].enum or ():
            width, height = spec.output_size({"megapixel": mp, "aspect_ratio": ratio}) or (0, 0)
            assert width % 64 == 0 and height % 64 == 0
            assert width > 0 and height > 0


def test_only_the_two_megapixel_models_have_an_output_size():
    sized = {m.slug for m in MODELS if m.has_output_size}
    assert sized == {"ai-product-photography", "segmind-scenecraft-v01"}
    assert catalog.model("bria-product-packshot").output_size({}) is None


# -- availability -------------------------------------------------------------------------


def test_the_catalog_says_which_models_the_local_engine_can_run(settings):
    settings.SEGMIND_API_KEY = ""
    assert catalog.current_engine() == "local"
    assert {m.slug for m in MODELS if m.runs_on("local")} == {
        "ai-product-photography",
        "segmind-scenecraft-v01",
        "qwen-image-edit-plus-product-photography",
        "bria-product-packshot",
    }
    settings.SEGMIND_API_KEY = "sk-test"
    assert catalog.current_engine() == "segmind"
