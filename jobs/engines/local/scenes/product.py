"""The product as it is laid on a scene (`product_layer`): cut out, cleaned of what would
show as dirt on a new backdrop (`product_alpha_clean`: specks, and faint or dashed rows
under its base; light flecks of the old backdrop along its foot mended), scaled and placed
inside the frame; and its tone matched to the scene (`_relight`) with its detail restored
by a blend mode (`_blend`, detail transfer).
"""

from __future__ import annotations

from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from jobs.engines.local.matte import remove_background
from jobs.engines.local.packshot import product_box
from jobs.engines.local.scenes.pixels import FloatArray
from jobs.engines.local.scenes.request import SceneRequest

# The smallest product, as a share of the canvas, that still reads as a product.
_MIN_SCALE: Final = 0.05


def _cut_out(image: Image.Image) -> Image.Image:
    """The product cut out, cleaned (`product_alpha_clean`) and cropped to its bounding
    box (RGBA)."""
    cutout = remove_background(image)
    alpha = product_alpha_clean(np.asarray(cutout.getchannel("A")))
    box = product_box(alpha)
    cutout.putalpha(Image.fromarray(alpha, "L"))
    return cutout.crop(box)


def _placement(
    product: tuple[int, int], req: SceneRequest
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The product's size and top-left corner on the canvas, kept inside the frame."""
    pw, ph = product
    scale = max(_MIN_SCALE, float(req.scale))
    fit = scale * min(req.width / pw, req.height / ph)
    nw, nh = max(1, round(pw * fit)), max(1, round(ph * fit))
    left = round(req.x_value / 100.0 * req.width - nw / 2)
    top = round(req.y_value / 100.0 * req.height - nh / 2)
    # A product cut by the frame is never what a shop wants: slide it back in.
    left = min(max(left, 0), max(0, req.width - nw))
    top = min(max(top, 0), max(0, req.height - nh))
    return (nw, nh), (left, top)


# A part of the product smaller than this share of its largest part is a leftover speck.
_SPECK_SHARE: Final = 0.01
# Alpha from which a pixel is surely product: a component without one is haze.
_SOLID_ALPHA: Final = 128


def product_alpha_clean(alpha: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The cut-out's alpha without what a shop would see as dirt once it is composed:

    - specks: parts (8-connected, alpha > 0) with no solid pixel, or whose solid core is
      under 1 % of the largest part's (JPEG noise, a bit of the old backdrop);
    - the faint or broken rows under the base: a last row much fainter or more broken than
      the one above it is the old floor's contact shadow, which shows as a dashed line
      under a sole on a new backdrop.
    """
    out = np.array(alpha, dtype=np.uint8, copy=True)
    strong = (out >= _SOLID_ALPHA).astype(np.uint8)
    n_strong, strong_labels, stats, _ = cv2.connectedComponentsWithStats(strong, connectivity=8)
    if n_strong <= 1:
        return out
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept_strong = np.flatnonzero(areas >= _SPECK_SHARE * areas.max()) + 1
    n_any, any_labels = cv2.connectedComponents((out > 0).astype(np.uint8), connectivity=8)
    if n_any > 2 or kept_strong.size < n_strong - 1:
        core = np.isin(strong_labels, kept_strong)
        keep = np.zeros(n_any, bool)
        keep[np.unique(any_labels[core])] = True
        keep[0] = False
        out[~keep[any_labels]] = 0
    _base_fringe_trim(out)
    return out


def _base_fringe_trim(alpha: NDArray[np.uint8]) -> None:
    """Clear, in place, the rows under the product's base that are much fainter or more
    broken than the row above (at most a few rows: a real base is never like that)."""
    rows = np.flatnonzero((alpha > 0).any(axis=1))
    if rows.size < 4:
        return
    limit = max(3, round(0.03 * rows.size))
    for _ in range(limit):
        bottom = int(rows[-1])
        if bottom - 1 < 0:
            return
        row, above = alpha[bottom], alpha[bottom - 1]
        if not above.any():
            return
        if not _row_is_fringe(row, above):
            return
        alpha[bottom] = 0
        rows = rows[:-1]
        if rows.size < 2:
            return


def _row_is_fringe(row: NDArray[np.uint8], above: NDArray[np.uint8]) -> bool:
    """Whether ``row`` is a leftover under ``above``: much fainter, or broken into dashes."""
    solid, solid_above = int((row >= _SOLID_ALPHA).sum()), int((above >= _SOLID_ALPHA).sum())
    if solid < 0.35 * solid_above:
        return True
    cols = np.flatnonzero(row > 0)
    span = int(cols[-1] - cols[0] + 1)
    filled = cols.size / span
    cols_above = np.flatnonzero(above > 0)
    filled_above = cols_above.size / int(cols_above[-1] - cols_above[0] + 1)
    return filled < 0.8 * filled_above


def _relight(
    colour: FloatArray, alpha: FloatArray, backdrop_mean: FloatArray, light_from: str
) -> FloatArray:
    """The product's tone matched to the scene: its white balance pulled toward the
    backdrop's light, its exposure toward the backdrop's key, and a soft fall-off of
    light across it from the light's side."""
    weight = alpha[..., None]
    total = max(float(alpha.sum()), 1.0)
    product_mean = (colour * weight).reshape(-1, 3).sum(axis=0) / total
    grey = float(backdrop_mean.mean())
    tint = np.clip((backdrop_mean / max(grey, 1.0)) ** 0.25, 0.88, 1.12)
    key = float(np.clip((grey / max(float(product_mean.mean()), 1.0)) ** 0.12, 0.85, 1.08))
    w = alpha.shape[1]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)
    falloff = 1.04 - 0.1 * (xs if light_from == "left" else 1.0 - xs)
    lit = colour * (tint * key)[None, None, :] * falloff[None, :, None]
    return np.asarray(np.clip(lit, 0, 255), np.float32)


def _blend(target: FloatArray, source: FloatArray, mode: str) -> FloatArray:
    """Detail transfer: the source's detail laid over the blurred target with ``mode``.

    Both are in [0, 1]. ``target`` is the relit product (what the scene looks like),
    ``source`` the product as photographed; the target is blurred first so only the
    source brings fine detail.
    """
    t = target
    s = source
    eps = 1e-3
    out: Any
    if mode == "add":
        out = s - _blur(s) + t
    elif mode == "multiply":
        out = s * t
    elif mode == "screen":
        out = 1 - (1 - s) * (1 - t)
    elif mode == "overlay":
        out = np.where(t < 0.5, 2 * s * t, 1 - 2 * (1 - s) * (1 - t))
    elif mode == "soft_light":
        out = (1 - 2 * t) * s * s + 2 * t * s
    elif mode == "hard_light":
        out = np.where(s < 0.5, 2 * s * t, 1 - 2 * (1 - s) * (1 - t))
    elif mode == "color_dodge":
        out = t / np.maximum(1 - s, eps)
    elif mode == "color_burn":
        out = 1 - (1 - t) / np.maximum(s, eps)
    elif mode == "difference":
        out = np.abs(t - s)
    elif mode == "exclusion":
        out = 0.5 - 2 * (t - 0.5) * (s - 0.5)
    elif mode == "divide":
        out = s / np.maximum(_blur(s), eps) * t
    else:
        raise ValueError(f"unknown blend mode {mode!r}")
    return np.asarray(out, np.float32)


def _blur(values: FloatArray, radius: float = 1.5) -> FloatArray:
    """Gaussian blur of [0, 1] colours; through 8 bits, which the blur hides anyway."""
    image = Image.fromarray(np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    blurred = image.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred, np.float32) / 255.0


def product_layer(image: Image.Image, req: SceneRequest) -> tuple[Image.Image, tuple[int, int]]:
    """The product of ``image`` cut out, cleaned and scaled as it is laid on the scene
    (RGBA), and its top-left corner on the canvas."""
    product = _cut_out(image)
    (nw, nh), where = _placement(product.size, req)
    if (nw, nh) != product.size:
        product = product.resize((nw, nh), Image.Resampling.LANCZOS)
        # Lanczos rings: a faint line can appear a pixel off a hard edge. Clean again.
        product.putalpha(
            Image.fromarray(product_alpha_clean(np.asarray(product.getchannel("A"))), "L")
        )
    return _outline_specks_mend(product), where


# Outline pixels this far (in luminance, 0-255) from the product just inside them are
# specks of the old backdrop the cut-out kept.
_SPECK_CONTRAST: Final = 70.0


def _outline_specks_mend(product: Image.Image) -> Image.Image:
    """The cut-out with light specks of its old backdrop along the outline of its foot
    recoloured from the product just inside: a light fleck at a dark mug's foot shows on
    any new backdrop. Thin parts (a lamp's stem) have no inside to borrow from and are
    left alone."""
    rgba = np.array(product, dtype=np.uint8)
    alpha = rgba[..., 3]
    # The outline band is 4 px deep: flecks left by the matte are a few pixels across.
    inside = cv2.erode((alpha >= 250).astype(np.uint8), np.ones((9, 9), np.uint8))
    outline = (alpha > 0) & (inside == 0)
    if not outline.any() or not inside.any():
        return product
    rgb = rgba[..., :3].astype(np.float32)
    window = (21, 21)
    count = cv2.boxFilter(inside.astype(np.float32), -1, window, normalize=False)
    local = cv2.boxFilter(rgb * inside[..., None], -1, window, normalize=False)
    local = local / np.maximum(count, 1.0)[..., None]
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    lighter = (rgb - local) @ luma
    # Only light flecks near the foot: there the old floor shows through, while a dark
    # rim along a product's side is its own shading.
    foot = np.zeros_like(outline)
    foot[round(0.85 * alpha.shape[0]) :] = True
    specks = outline & foot & (count >= 12) & (lighter > _SPECK_CONTRAST)
    if not specks.any():
        return product
    rgba[..., :3][specks] = np.clip(local[specks] + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")
