"""The system presets in `jobs/system_presets.json`: valid for their models, as they stand.

Every preset goes through the catalog's one validator, so a preset that the portal, the API
or a worker would refuse, or would silently rewrite, fails here first.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from jobs import catalog
from jobs.engines.local import scenes

PRESETS_FILE = Path(catalog.__file__).parent / "system_presets.json"

# The backdrops the local engine draws, and the packshot's cut-out look.
BACKDROPS = frozenset(scenes.BACKDROPS) | {"transparent"}

SLUG_PREFIXES = {
    "ai-product-photography": "aipp-",
    "segmind-scenecraft-v01": "scene-",
    "qwen-image-edit-plus-product-photography": "qwen-",
    "65c9c7f641c340d7ef2f7134-v1": "flow-",
    "bria-product-packshot": "packshot-",
}

FIELDS = {"slug", "model", "name", "description", "backdrop", "params"}
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PROMPT_PARAMS = ("prompt", "product_prompt")


def load_presets() -> list[dict[str, Any]]:
    presets = json.loads(PRESETS_FILE.read_text(encoding="utf-8"))
    assert isinstance(presets, list)
    return presets


def spec_of(preset: dict[str, Any]) -> catalog.ModelSpec:
    spec = catalog.get_model(preset["model"])
    assert spec is not None, f"{preset['slug']}: unknown model {preset['model']!r}"
    return spec


def test_every_preset_has_exactly_the_documented_fields() -> None:
    wrong = {p.get("slug"): sorted(set(p) ^ FIELDS) for p in load_presets() if set(p) != FIELDS}
    assert wrong == {}


def test_every_preset_is_for_one_of_the_five_models() -> None:
    unknown = {
        p["slug"]: p["model"] for p in load_presets() if catalog.get_model(p["model"]) is None
    }
    assert unknown == {}


def test_every_model_has_at_least_three_presets() -> None:
    counts = Counter(p["model"] for p in load_presets())
    short = {m.slug: counts[m.slug] for m in catalog.all_models() if counts[m.slug] < 3}
    assert short == {}


def test_slugs_are_unique() -> None:
    counts = Counter(p["slug"] for p in load_presets())
    assert [slug for slug, n in counts.items() if n > 1] == []


def test_slugs_are_lowercase_hyphenated_and_fit_the_slug_field() -> None:
    bad = [p["slug"] for p in load_presets() if not SLUG.match(p["slug"]) or len(p["slug"]) > 80]
    assert bad == []


def test_slugs_start_with_their_models_tag() -> None:
    bad = [p["slug"] for p in load_presets() if not p["slug"].startswith(SLUG_PREFIXES[p["model"]])]
    assert bad == []


def test_every_preset_validates_unchanged() -> None:
    failures: dict[str, Any] = {}
    for preset in load_presets():
        try:
            resolved = catalog.resolve_params(spec_of(preset), preset["params"], partial=True)
        except catalog.ParamsError as e:
            failures[preset["slug"]] = e.errors
            continue
        if resolved != preset["params"]:
            failures[preset["slug"]] = {"resolved": resolved}
    assert failures == {}


def test_no_preset_sets_the_product_photo_parameter() -> None:
    bad = [p["slug"] for p in load_presets() if spec_of(p).image_param in p["params"]]
    assert bad == []


def test_no_preset_sets_a_seed() -> None:
    assert [p["slug"] for p in load_presets() if "seed" in p["params"]] == []


def test_every_preset_fixes_at_least_one_parameter() -> None:
    assert [p["slug"] for p in load_presets() if not p["params"]] == []


def test_every_backdrop_is_from_the_allowed_list() -> None:
    bad = {p["slug"]: p["backdrop"] for p in load_presets() if p["backdrop"] not in BACKDROPS}
    assert bad == {}


def test_names_and_descriptions_are_filled_in_and_fit_their_fields() -> None:
    bad = [
        p["slug"]
        for p in load_presets()
        if not p["name"].strip()
        or not p["description"].strip()
        or len(p["name"]) > 100
        or len(p["description"]) > 300
    ]
    assert bad == []


def test_names_are_unique_within_each_model() -> None:
    counts = Counter((p["model"], p["name"]) for p in load_presets())
    assert [key for key, n in counts.items() if n > 1] == []


def test_prompts_speak_of_the_product_generically() -> None:
    bad = [
        p["slug"]
        for p in load_presets()
        for name in PROMPT_PARAMS
        if name in p["params"] and "the product" not in p["params"][name]
    ]
    assert bad == []


def test_output_sizes_are_between_half_a_megapixel_and_two_point_six() -> None:
    bad: dict[str, tuple[int, int]] = {}
    for preset in load_presets():
        spec = spec_of(preset)
        if not spec.has_output_size:
            continue
        size = spec.output_size(preset["params"])
        assert size is not None
        width, height = size
        if not 0.5 <= width * height / 1_000_000 <= 2.6:
            bad[preset["slug"]] = size
    assert bad == {}
