"""The five Segmind endpoints ProductStudio offers, loaded from `segmind_models.json`.

The JSON is the project's copy of `shared/spec/segmind-models.json`: every model and
parameter is data, so forms, the API and the workers read one source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from django.conf import settings

Engine = Literal["local", "segmind"]

# What each model does, in a shop owner's words (the seed pages' summaries, shortened).
_SUMMARIES = {
    "ai-product-photography": "Places your product in a generated scene described by a prompt.",
    "segmind-scenecraft-v01": "Builds a lifestyle scene around your product, with shadows.",
    "qwen-image-edit-plus-product-photography": (
        "Edits your product photo into a scene, from up to three reference images."
    ),
    "65c9c7f641c340d7ef2f7134-v1": "Generates a product from text onto a background image.",
    "bria-product-packshot": "A clean marketplace packshot: background removed, centred.",
}

# Models each engine can run today. The Segmind client is not built yet, so with a key
# configured no model is offered rather than accepting jobs that cannot run.
_ENGINE_MODELS: dict[str, frozenset[str]] = {
    "local": frozenset({"bria-product-packshot"}),
    "segmind": frozenset(),
}


@dataclass(frozen=True)
class ModelSpec:
    slug: str
    title: str
    api: str  # "v2" for model endpoints, "workflow" for PixelFlow
    typical_seconds: float | None
    input_image_params: tuple[str, ...]
    parameters: dict[str, dict[str, Any]] = field(repr=False)

    @property
    def summary(self) -> str:
        return _SUMMARIES.get(self.slug, "")

    @property
    def image_param(self) -> str:
        """The parameter that carries the product photo."""
        return self.input_image_params[0]

    def defaults(self) -> dict[str, Any]:
        """Default values of every parameter that has one, input images excepted."""
        return {
            name: spec["default"]
            for name, spec in self.parameters.items()
            if name not in self.input_image_params and spec.get("default") is not None
        }

    def runs_on(self, engine: Engine) -> bool:
        return self.slug in _ENGINE_MODELS[engine]


@cache
def _load() -> dict[str, ModelSpec]:
    raw = json.loads((Path(__file__).parent / "segmind_models.json").read_text())
    return {
        item["slug"]: ModelSpec(
            slug=item["slug"],
            title=item["title"],
            api=item["api"],
            typical_seconds=item.get("typical_seconds"),
            input_image_params=tuple(item["input_image_params"]),
            parameters=item["parameters"],
        )
        for item in raw
    }


def all_models() -> list[ModelSpec]:
    return list(_load().values())


def get_model(slug: str) -> ModelSpec | None:
    return _load().get(slug)


def current_engine() -> Engine:
    """Segmind when a key is configured; otherwise the local engine."""
    return "segmind" if settings.SEGMIND_API_KEY else "local"
