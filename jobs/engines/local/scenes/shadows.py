"""The product's soft shadow on the floor (`shadow_layer`): a contact shadow squashed from
its silhouette and ambient occlusion along its base, on a layer padded so that it fades
out inside it, computed at a coarse width and upscaled; and that shadow multiplied into
the scene around the product's base (`_cast_shadow`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from jobs.engines.local.scenes.pixels import FloatArray, _to_image

# The shadow is drawn this many product-widths across at most: it is soft, so a coarse
# layer upscaled is the same picture for a fraction of the cost.
_SHADOW_WORK_WIDTH: Final = 240


@dataclass(frozen=True)
class ShadowLayer:
    """A product's shadow as opacity in [0, 1] on a layer padded so that it fades out
    inside it: ``offset`` is the layer's top-left relative to the product's (pixels at
    ``scale`` times the product's size)."""

    opacity: FloatArray
    offset: tuple[float, float]
    scale: float


def shadow_layer(alpha: NDArray[np.uint8], light_from: str) -> ShadowLayer:
    """The product's shadow on the floor, from its cut-out's alpha (cropped to the product):

    - a contact shadow: the silhouette squashed onto the floor at the base, pushed a
      little away from the light and blurred;
    - ambient occlusion along the base: where the bottom of the product is near the floor,
      a tight dark band and a wide faint one.

    The layer is padded by four blur radii, so the shadow fades to nothing before its
    edge: it is never cut off by its own box.
    """
    ph, pw = alpha.shape
    scale = min(1.0, _SHADOW_WORK_WIDTH / max(pw, 1))
    sw, sh = max(2, round(pw * scale)), max(2, round(ph * scale))
    small = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    # Where the product reaches the floor: the bottom few percent of its height.
    band = max(1, round(0.05 * sh))
    foot = small[sh - band :].max(axis=0)
    squash_h = max(2, round(0.09 * sh))
    squashed = cv2.resize(small, (sw, squash_h), interpolation=cv2.INTER_AREA)
    sigma_contact = max(1.0, 0.035 * sw)
    sigma_wide = max(2.0, 0.09 * sw)
    sigma_tight = max(0.7, 0.01 * sw)
    push = round(0.04 * sw) * (1 if light_from == "left" else -1)
    pad_x = math.ceil(4 * sigma_wide) + abs(push) + 2
    pad_y = math.ceil(4 * max(sigma_contact, 0.4 * sigma_wide)) + squash_h + 2
    lw, lh = sw + 2 * pad_x, 2 * pad_y
    base_y = pad_y  # the product's base on the layer
    contact = np.zeros((lh, lw), np.float32)
    top = base_y - squash_h // 2
    contact[top : top + squash_h, pad_x + push : pad_x + push + sw] = squashed
    contact = cv2.GaussianBlur(
        contact, (0, 0), sigma_contact, sigmaY=sigma_contact * 0.6, borderType=cv2.BORDER_CONSTANT
    )
    line = np.zeros((lh, lw), np.float32)
    line[base_y - 1 : base_y + 1, pad_x : pad_x + sw] = foot
    tight = np.asarray(
        cv2.GaussianBlur(line, (0, 0), sigma_tight, borderType=cv2.BORDER_CONSTANT), np.float32
    )
    tight = tight / max(float(tight.max()), 1e-6)
    wide = np.asarray(
        cv2.GaussianBlur(
            line, (0, 0), sigma_wide, sigmaY=sigma_wide * 0.3, borderType=cv2.BORDER_CONSTANT
        ),
        np.float32,
    )
    wide = wide / max(float(wide.max()), 1e-6)
    # The silhouette's shadow is kept light: parts off the floor (a mug's handle) cast a
    # fainter, wider shadow than the base itself.
    opacity = 1.0 - (1.0 - 0.32 * contact) * (1.0 - 0.85 * tight) * (1.0 - 0.45 * wide)
    return ShadowLayer(
        opacity=np.asarray(np.clip(opacity, 0.0, 1.0), np.float32),
        offset=(-pad_x / scale, (sh - base_y) / scale),
        scale=scale,
    )


def _cast_shadow(
    scene: Image.Image,
    alpha: Image.Image,
    where: tuple[int, int],
    light_from: str,
    strength: float,
) -> None:
    """The product's shadow (`shadow_layer`) multiplied into ``scene`` around its base; the
    backdrop keeps its own colour in the shadow. The frame may crop it, nothing else."""
    w, h = scene.size
    layer = shadow_layer(np.asarray(alpha), light_from)
    lh, lw = layer.opacity.shape
    full_w = max(1, round(lw / layer.scale))
    full_h = max(1, round(lh / layer.scale))
    x0 = round(where[0] + layer.offset[0])
    y0 = round(where[1] + layer.offset[1])
    box = (max(0, x0), max(0, y0), min(w, x0 + full_w), min(h, y0 + full_h))
    if box[2] <= box[0] or box[3] <= box[1]:
        return
    opacity = cv2.resize(layer.opacity, (full_w, full_h), interpolation=cv2.INTER_LINEAR)
    opacity = opacity[box[1] - y0 : box[3] - y0, box[0] - x0 : box[2] - x0]
    region = np.asarray(scene.crop(box), np.float32)
    region *= (1.0 - strength * opacity)[..., None]
    scene.paste(_to_image(region), box[:2])
