"""What a scene composite depends on (`SceneRequest`, the blend modes of detail transfer)
and how it is made from a job's parameters (`scene_request`): the canvas size of each
scene model (qwen's at about one megapixel: `qwen_size`), the product's place and scale,
the shadow, light and detail-transfer switches, the light's side read from the lighting
prompt (`light_side`) and the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

from jobs import catalog
from jobs.engines.local.scenes.backdrops import DEFAULT_BACKDROP

DETAILER_MODES: Final = (
    "add",
    "multiply",
    "screen",
    "overlay",
    "soft_light",
    "hard_light",
    "color_dodge",
    "color_burn",
    "difference",
    "exclusion",
    "divide",
)


@dataclass(frozen=True)
class SceneRequest:
    """Everything the composite depends on, already validated by the catalog."""

    width: int
    height: int
    backdrop: str = DEFAULT_BACKDROP
    x_value: float = 50.0  # percent of the width: the product's centre
    y_value: float = 60.0  # percent of the height
    scale: float = 0.6  # the product's longer side relative to the canvas
    dropshadow: bool = True
    lighting: bool = True
    detailtransfer: bool = False
    detailer_mode: str = "soft_light"
    light_from: Literal["left", "right"] = "left"
    seed: int = 0


# Each model's output side when it has no megapixel: qwen's outputs are about 1 MP.
QWEN_MEGAPIXELS: Final = 1.0


def light_side(text: str) -> Literal["left", "right"]:
    """Which side the light comes from, when the lighting prompt says so."""
    lowered = text.lower()
    right, left = lowered.rfind("right"), lowered.rfind("left")
    return "right" if right > left else "left"


def qwen_size(aspect_ratio: str, source: tuple[int, int]) -> tuple[int, int]:
    """qwen's output size: its ratio (or the input's) at about one megapixel, in
    multiples of 16 as its outputs are."""
    if aspect_ratio == "match_input_image":
        w, h = source
    else:
        w_text, _, h_text = aspect_ratio.partition(":")
        w, h = int(w_text), int(h_text)
    # A 10000 x 100 strip must not ask for a 1-pixel-high canvas.
    ratio = min(max(w / max(h, 1), 1 / 4), 4.0)
    height = math.sqrt(QWEN_MEGAPIXELS * 1_000_000 / ratio)
    return max(16, round(height * ratio / 16) * 16), max(16, round(height / 16) * 16)


def scene_request(
    *, model: str, params: dict[str, Any], backdrop: str, source: tuple[int, int]
) -> SceneRequest:
    """What to compose for a job of ``model`` with its resolved ``params``."""
    seed = int(params.get("seed") or 0)
    if model == "qwen-image-edit-plus-product-photography":
        width, height = qwen_size(str(params.get("aspect_ratio", "match_input_image")), source)
        return SceneRequest(
            width=width,
            height=height,
            backdrop=backdrop,
            y_value=58.0,
            scale=0.6,
            light_from=light_side(str(params.get("prompt", ""))),
            seed=seed,
        )
    spec = catalog.model(model)
    size = spec.output_size(params)
    assert size is not None, f"{model} has no megapixel and aspect_ratio"
    width, height = size
    if params.get("upscale"):
        width, height = width * 2, height * 2
    defaults = spec.defaults()
    return SceneRequest(
        width=width,
        height=height,
        backdrop=backdrop,
        x_value=float(params.get("x_value", defaults.get("x_value", 50))),
        y_value=float(params.get("y_value", defaults.get("y_value", 60))),
        scale=float(params.get("scale", defaults.get("scale", 0.6))),
        dropshadow=bool(params.get("dropshadow", True)),
        lighting=bool(params.get("lighting", True)),
        detailtransfer=bool(params.get("detailtransfer", False)),
        detailer_mode=str(params.get("detailer_mode", "soft_light")),
        light_from=light_side(str(params.get("lighting_prompt", ""))),
        seed=seed,
    )
