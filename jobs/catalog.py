"""The five Segmind endpoints ProductStudio offers, and the one validator of their parameters.

The models and every parameter are data (`segmind_models.json`; the protocol's facts are in
`docs/segmind.md`): the portal's form, the API and the workers all read
them from here, and every parameter set - a job's, a preset's - goes through
`resolve_params`, so the three doors accept exactly the same things.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from django.conf import settings

from productstudio.lib.errors import CodedError

Engine = Literal["local", "segmind"]

# The largest seed Segmind documents (qwen's range); drawn seeds stay within every model's.
MAX_SEED = 2_147_483_647

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

# The models the local engine composes (cut-out on a drawn backdrop) instead of generating.
LOCAL_SCENE_MODELS = frozenset(
    {
        "ai-product-photography",
        "segmind-scenecraft-v01",
        "qwen-image-edit-plus-product-photography",
    }
)
# Models each engine can run: Segmind runs all five; the local engine all but the
# PixelFlow workflow, which draws its product from text.
_ENGINE_MODELS: dict[str, frozenset[str]] = {
    "local": frozenset({"bria-product-packshot"}) | LOCAL_SCENE_MODELS,
    "segmind": frozenset(_SUMMARIES),
}

# Each parameter in a shop owner's words, for forms, previews and error messages; the API
# name stays beside it in small print. Segmind's names (`force_rmbg`) say little.
_LABELS = {
    "image": "Product photo",
    "image_url": "Product photo",
    "prompt": "Scene description",
    "negative_prompt": "Keep out of the image",
    "lighting_prompt": "Lighting description",
    "product_prompt": "Product description",
    "aspect_ratio": "Shape",
    "megapixel": "Size in megapixels",
    "image_format": "File format",
    "image_quality": "Image quality",
    "quality": "Image quality",
    "background_color": "Background colour",
    "background": "Background image",
    "force_rmbg": "Always remove the background",
    "content_moderation": "Content check",
    "sku": "SKU",
    "scale": "Product size",
    "x_value": "Position across (%)",
    "y_value": "Position down (%)",
    "seed": "Variation (seed)",
    "steps": "Detail steps",
    "guidance_scale": "Follow the description",
    "detailtransfer": "Keep the product's detail",
    "detailer_mode": "Detail blending",
    "lighting": "Relight the product",
    "dropshadow": "Drop shadow",
    "upscale": "Upscale",
    "base64": "Answer as base64 text",
    "image_1": "Reference image 1",
    "image_2": "Reference image 2",
    "image_3": "Reference image 3",
    "lora": "Style",
    "lora_2_url": "Second style (LoRA URL)",
    "lora_3_url": "Third style (LoRA URL)",
}

# Parameters that belong to each photo, not to a preset: the SKU names one product.
PER_PHOTO_PARAMS = frozenset({"sku"})


def param_label(name: str) -> str:
    """A parameter's name in a shop owner's words ("Always remove the background")."""
    return _LABELS.get(name) or name.replace("_", " ").capitalize()


_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
_TRUE_TEXT = frozenset({"true", "1", "on", "yes"})
_FALSE_TEXT = frozenset({"false", "0", "off", "no"})


class ParamsError(CodedError):
    """Parameters were refused; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        message = "; ".join(f"{field}: {rule}" for field, rule in self.errors.items())
        super().__init__("validation_error", message)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # string, integer, number, boolean, uri, megapixel
    required: bool
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None
    is_image: bool = False

    @property
    def is_seed(self) -> bool:
        return self.name == "seed"

    @property
    def label(self) -> str:
        return param_label(self.name)

    def rule(self) -> str | None:
        """The constraint in words, as error messages and the form's help state it."""
        if self.enum is not None:
            return "must be one of " + ", ".join(str(v) for v in self.enum)
        if self.minimum is not None and self.maximum is not None:
            return f"must be between {_num(self.minimum)} and {_num(self.maximum)}"
        return None

    def clean(self, value: Any) -> Any:
        """The value in its canonical type, or ValueError with the rule broken."""
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL cannot store it (the job's parameters), and no model wants it.
            raise ValueError("must not contain NUL characters")
        cleaned = _CLEANERS[self.type](self, value)
        if self.enum is not None and cleaned not in self.enum:
            raise ValueError(self.rule())
        if isinstance(cleaned, int | float) and not isinstance(cleaned, bool):
            low = self.minimum if self.minimum is not None else -math.inf
            high = self.maximum if self.maximum is not None else math.inf
            if not low <= cleaned <= high:
                raise ValueError(self.rule() or f"must be between {low} and {high}")
        return cleaned

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"description": self.description}
        if self.type == "megapixel":
            # Segmind's pages type it as a number but their examples send strings.
            schema["type"] = ["string", "number"]
        elif self.type == "uri":
            schema["type"] = "string"
            schema["format"] = "uri"
        else:
            schema["type"] = self.type
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        if self.is_image:
            schema["contentMediaType"] = "image/*"
        if self.is_seed:
            schema["description"] += " (-1 or empty: ProductStudio draws one and records it)"
        if self.name == "background_color":
            schema["pattern"] = r"^(transparent|#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6})$"
        return schema


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _clean_string(spec: ParamSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    if spec.name == "background_color" and value != "transparent" and not _HEX_COLOR.match(value):
        raise ValueError("must be 'transparent' or a hex colour such as #FFFFFF")
    return value


def _clean_uri(spec: ParamSpec, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a URL")
    value = value.strip()
    if value.lower().startswith(("http://", "https://")):
        return value
    if "base64" in spec.description.lower() and _looks_like_base64(value):
        return value
    raise ValueError("must be an http:// or https:// URL")


def _looks_like_base64(value: str) -> bool:
    if value.startswith("data:image/") and ";base64," in value:
        value = value.split(",", 1)[1]
    packed = re.sub(r"\s+", "", value)
    return len(packed) >= 8 and len(packed) % 4 == 0 and bool(_BASE64.match(packed))


def _clean_integer(spec: ParamSpec, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        return int(value.strip())
    raise ValueError("must be a whole number")


def _clean_number(spec: ParamSpec, value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int | float):
        number: int | float = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
        if number.is_integer() and _INTEGER_TEXT.match(value.strip()):
            number = int(number)
    else:
        raise ValueError("must be a number")
    if not math.isfinite(number):
        raise ValueError("must be a number")
    return number


def _clean_boolean(spec: ParamSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_TEXT | _FALSE_TEXT:
        return value.strip().lower() in _TRUE_TEXT
    raise ValueError("must be true or false")


def _clean_megapixel(spec: ParamSpec, value: Any) -> str:
    # Canonical form: the string of the allowed list ("1.0"), whatever the input spelling.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(spec.rule() or "must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(spec.rule() or "must be a number") from None
    for allowed in spec.enum or ():
        if float(allowed) == number:
            return str(allowed)
    raise ValueError(spec.rule() or "must be a number")


_CLEANERS = {
    "string": _clean_string,
    "uri": _clean_uri,
    "integer": _clean_integer,
    "number": _clean_number,
    "boolean": _clean_boolean,
    "megapixel": _clean_megapixel,
}


@dataclass(frozen=True)
class ModelSpec:
    slug: str
    title: str
    kind: str  # "v2" for model endpoints, "workflow" for PixelFlow
    typical_seconds: float | None
    input_image_params: tuple[str, ...]
    params: dict[str, ParamSpec]

    @property
    def summary(self) -> str:
        return _SUMMARIES.get(self.slug, "")

    @property
    def image_param(self) -> str:
        """The parameter that carries the product photo."""
        return self.input_image_params[0]

    @property
    def has_output_size(self) -> bool:
        return "megapixel" in self.params and "aspect_ratio" in self.params

    def defaults(self) -> dict[str, Any]:
        """Default values of every parameter that has one, input images excepted."""
        return {
            name: p.default
            for name, p in self.params.items()
            if not p.is_image and p.default is not None
        }

    def runs_on(self, engine: Engine) -> bool:
        return self.slug in _ENGINE_MODELS[engine]

    @property
    def composed_locally(self) -> bool:
        """On the local engine, a composite on a backdrop: its prompts are kept, unused."""
        return self.slug in LOCAL_SCENE_MODELS

    def json_schema(self) -> dict[str, Any]:
        """The parameters as a JSON Schema (draft 2020-12)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:productstudio:models:{self.slug}",
            "title": self.title,
            "description": self.summary,
            "type": "object",
            "properties": {name: p.json_schema() for name, p in self.params.items()},
            "required": [name for name, p in self.params.items() if p.required],
            "additionalProperties": False,
        }

    def output_size(self, params: Mapping[str, Any]) -> tuple[int, int] | None:
        """Width and height of the output, for models sized by megapixel x aspect ratio."""
        if not self.has_output_size:
            return None
        megapixel = params.get("megapixel", self.params["megapixel"].default)
        ratio = params.get("aspect_ratio", self.params["aspect_ratio"].default)
        return output_size(float(megapixel), str(ratio))


def output_size(megapixel: float, aspect_ratio: str) -> tuple[int, int]:
    """The resolution calculator's rule (docs/segmind.md): multiples of 64."""
    match = re.match(r"^\s*(\d+)\s*:\s*(\d+)", aspect_ratio)
    if match is None:
        raise ValueError(f"not an aspect ratio: {aspect_ratio!r}")
    w, h = int(match.group(1)), int(match.group(2))
    d = math.sqrt(megapixel * 1_000_000 / (w * h))
    return round(int(d * w) / 64) * 64, round(int(d * h) / 64) * 64


def resolve_params(
    spec: ModelSpec,
    given: Mapping[str, Any],
    *,
    partial: bool = False,
    attached: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Validate `given` against the model and return the parameters to store and send.

    Unknown names, wrong types and broken rules are refused together, each error naming
    its field. Missing optional parameters take the catalog's defaults, and a seed of -1
    or empty is drawn here so every job records the seed that made it. With `partial`
    (a preset), only the given parameters are checked: no defaults, no required fields.
    `attached` names image parameters that an uploaded file fills instead of a URL.
    """
    errors: dict[str, str] = {}
    resolved: dict[str, Any] = {}
    for name, value in given.items():
        param = spec.params.get(name)
        if param is None:
            errors[name] = f"unknown parameter for {spec.title}"
            continue
        if value is None or (isinstance(value, str) and value == "" and param.type != "string"):
            continue  # empty form fields mean "not given"
        if param.is_seed and not partial and is_random_seed(value):
            continue
        try:
            resolved[name] = param.clean(value)
        except ValueError as e:
            errors[name] = str(e)
    if not partial:
        for name, param in spec.params.items():
            if name in resolved or name in errors:
                continue
            if param.is_seed:
                resolved[name] = secrets.randbelow(MAX_SEED + 1)
            elif param.required and name not in attached:
                errors[name] = "is required"
            elif param.default is not None and not param.is_image:
                resolved[name] = param.default
    if errors:
        raise ParamsError(errors)
    return resolved


def is_random_seed(value: Any) -> bool:
    """A seed value that asks for a random seed (-1, empty, or none)."""
    return value in (-1, "-1", "") or value is None


@cache
def _load() -> dict[str, ModelSpec]:
    raw = json.loads((Path(__file__).parent / "segmind_models.json").read_text())
    models = {}
    for item in raw:
        images = tuple(item["input_image_params"])
        params = {
            name: ParamSpec(
                name=name,
                type=p["type"],
                required=bool(p.get("required")),
                default=p.get("default"),
                description=p.get("description", ""),
                minimum=p.get("minimum"),
                maximum=p.get("maximum"),
                enum=tuple(p["enum"]) if p.get("enum") else None,
                is_image=name in images,
            )
            for name, p in item["parameters"].items()
        }
        models[item["slug"]] = ModelSpec(
            slug=item["slug"],
            title=item["title"],
            kind="workflow" if item["api"] == "workflow" else "v2",
            typical_seconds=item.get("typical_seconds"),
            input_image_params=images,
            params=params,
        )
    return models


def all_models() -> list[ModelSpec]:
    return list(_load().values())


def get_model(slug: str) -> ModelSpec | None:
    return _load().get(slug)


def model(slug: str) -> ModelSpec:
    """The model with this slug; a KeyError for one the catalog does not have."""
    return _load()[slug]


def current_engine() -> Engine:
    """Segmind when a key is configured; otherwise the local engine."""
    return "segmind" if settings.SEGMIND_API_KEY else "local"
