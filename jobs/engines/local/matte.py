"""The matte: thresholding against the backdrop model, soft alpha at the edges,
clean-up and colour decontamination, and ``remove_background`` that runs them
(steps 1 to 8 of the package docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from jobs import image_checks
from jobs.engines.local.arrays import (
    BoolArray,
    FloatArray,
    IndexArray,
    IntArray,
    _bounding_box,
    _components,
    _dilate,
    _erode,
    _local_means,
    _smooth,
    _where,
    _window_max,
)
from jobs.engines.local.backdrop import (
    _Backdrop,
    _band_width,
    _border_inliers,
    _fit_backdrop,
    _shadow_backdrop,
)
from jobs.engines.local.colour import _u8_to_lab
from jobs.engines.local.errors import EngineError
from jobs.engines.local.normalise import _has_meaningful_alpha, _normalise
from jobs.engines.local.refine import (
    MIN_SALIENT_SHARE,
    PLAIN_AGREEMENT,
    PLAIN_TEXTURE,
    border_texture,
    decontaminate,
    grabcut_alpha,
    plain_combine,
    salient_share,
    shadow_like,
    upsample,
)
from jobs.engines.local.saliency import PLAIN_INPUT_PIXELS, saliency

# Analysis above this size costs time without changing the cut-out much.
MAX_WORK_PIXELS: Final = 1_600_000


def _noise_sigma(rgb: NDArray[np.uint8], band: int) -> float:
    """Per-channel noise of the border, from differences of horizontal neighbours."""
    strip = np.concatenate([rgb[:band], rgb[-band:]], axis=0).astype(np.float32)
    if strip.shape[1] < 2:
        return 0.0
    diff = np.abs(np.diff(strip, axis=1))
    return float(np.median(diff)) * 1.4826 / math.sqrt(2.0)


def _threshold(dist: FloatArray, inliers: BoolArray) -> float:
    """Distance below which a pixel is backdrop, from the spread along the border.

    The tail of the backdrop's distances covers sensor noise; a multiple of their
    median covers mottled backdrops, whose extremes the inlier test trims.
    """
    border_d = dist[inliers]
    if border_d.size == 0:
        return 1.5
    tail = float(np.quantile(border_d, 0.995))
    typical = float(np.median(border_d))
    return max(1.5, 1.25 * tail, 4.5 * typical)


@dataclass(frozen=True)
class _Matte:
    """Alpha at the analysed resolution and what the backdrop looks like behind it."""

    alpha: FloatArray  # (h, w) in [0, 1]
    model: _Backdrop | None  # sRGB backdrop model, None when it could not be fitted
    flat: FloatArray  # (3,) backdrop colour to use without a model
    local_index: IntArray  # (h, w): row of the local measurements for edge pixels, else -1
    local_backdrop: FloatArray  # (n, 3): backdrop colour measured next to edge pixels
    local_product: FloatArray  # (n, 3): product colour measured next to them, NaN if none

    def _local_rows(self, ys: IndexArray, xs: IndexArray, shape: tuple[int, int]) -> IntArray:
        height, width = shape
        h, w = self.alpha.shape
        wy = np.minimum((ys * h) // height, h - 1)
        wx = np.minimum((xs * w) // width, w - 1)
        return np.asarray(self.local_index[wy, wx], dtype=np.int32)

    def backdrop_at(self, ys: IndexArray, xs: IndexArray, shape: tuple[int, int]) -> FloatArray:
        """Backdrop colour behind pixels (ys, xs) of an image of ``shape`` (h, w)."""
        height, width = shape
        if self.model is None:
            colours = np.broadcast_to(self.flat, (ys.size, 3)).copy()
        else:
            u = ((xs + 0.5) / width).astype(np.float32)
            v = ((ys + 0.5) / height).astype(np.float32)
            colours = self.model.at(u, v)
        rows = self._local_rows(ys, xs, shape)
        measured = rows >= 0
        colours[measured] = self.local_backdrop[rows[measured]]
        return colours

    def product_at(self, ys: IndexArray, xs: IndexArray, shape: tuple[int, int]) -> FloatArray:
        """Nearby solid product colour for pixels (ys, xs); NaN where unknown."""
        colours = np.full((ys.size, 3), np.nan, dtype=np.float32)
        rows = self._local_rows(ys, xs, shape)
        measured = rows >= 0
        colours[measured] = self.local_product[rows[measured]]
        return colours


def _empty_matte(alpha: FloatArray, model: _Backdrop | None, flat: FloatArray) -> _Matte:
    nothing = np.zeros((0, 3), np.float32)
    no_local = np.full(alpha.shape, -1, dtype=np.int32)
    return _Matte(alpha, model, flat, no_local, nothing, nothing)


def _compute_matte(rgb: NDArray[np.uint8]) -> _Matte:
    """Steps 2 to 7 of the package docstring, at the resolution of ``rgb``."""
    h, w, _ = rgb.shape
    band = _band_width(h, w)
    scale = max(0.25, min(h, w) / 1000.0)
    sigma = _noise_sigma(rgb, band)
    radius = max(1.0, scale) * float(np.clip(0.6 + 0.35 * sigma, 0.8, 2.5))
    blurred = _smooth(rgb, radius)
    lab = _u8_to_lab(blurred)
    lab_planes = np.moveaxis(lab, -1, 0)  # (3, H, W) view, for code that works per plane
    inliers = _border_inliers(lab, band)
    lab_model = _fit_backdrop(lab, inliers, band)
    rgb_model = _fit_backdrop(blurred, inliers, band)
    if lab_model is None or rgb_model is None:
        # No border pixel looks like backdrop: the product fills the frame.
        flat = rgb.reshape(-1, 3).mean(axis=0).astype(np.float32)
        return _empty_matte(np.ones((h, w), np.float32), None, flat)
    dist = lab_model.distance(lab_planes)
    lo = _threshold(dist, inliers)

    shadow = _shadow_backdrop(lab_planes, lab_model, dist, lo, inliers, scale)
    backdrop = (dist < lo) | shadow
    # The band of uncertain pixels must be wider than the blur's footprint.
    reach = max(2, round(2 * scale), math.ceil(radius) + 1)
    # The flood stops a few pixels short of the product, on the far side of the
    # outline's steep slope: widen the band where the two meet.
    margin = reach + max(2, round(5 * scale))
    # Within ``reach`` of plain backdrop; eroding the rest touches fewer pixels.
    near = ~_erode(dist >= lo, reach) | _dilate(shadow, margin)
    # JPEG rings beside a strong outline: pixels a little off the backdrop's colour,
    # a few pixels thick. Left solid they would be specks of the old backdrop on the
    # new one; in the band they are unmixed like any edge pixel.
    near |= _dilate((dist < max(3.0 * lo, 10.0)) & ~_erode(dist >= lo, 3 * reach), reach)
    alpha = (~near).astype(np.float32)
    flat = rgb_model.top.mean(axis=0)

    ys, xs = _where(near & ~backdrop)
    if ys.size == 0:
        alpha[shadow] = 0.0
        return _empty_matte(_clean(alpha, dist, lo, scale), rgb_model, flat)

    # The blur smears thin parts into their neighbours: unmix the raw pixels.
    (bg_local, bg_n), (fg_local, fg_n) = _local_means(rgb, (backdrop, ~near), ys, xs, margin + 1)
    colour = rgb[ys, xs].astype(np.float32)
    axis = fg_local - bg_local
    length2 = np.einsum("ij,ij->i", axis, axis)
    # Linear unmixing: an edge pixel lies on the segment from the local backdrop
    # to the local product colour, and its position along it is its coverage.
    estimate = np.einsum("ij,ij->i", colour - bg_local, axis) / np.maximum(length2, 1e-6)
    valid = (bg_n > 0) & (fg_n > 0) & (length2 > 16.0)
    if not valid.all():
        # Thin parts with no solid interior nearby: fall back to distance ratios.
        bad = ~valid
        local_max = _window_max(dist, ys[bad], xs[bad], reach + 1)
        estimate[bad] = dist[ys[bad], xs[bad]] / (0.92 * np.maximum(local_max, 2 * lo))
    # A slight stretch around 0.5 sends the noise of nearly clear or nearly solid
    # pixels to exactly 0 or 1, so no faint film or pinholes line the outline.
    alpha[ys, xs] = np.clip((estimate - 0.1) / 0.8, 0.0, 1.0)
    alpha[shadow] = 0.0

    has_bg = bg_n > 0
    local_index = np.full((h, w), -1, dtype=np.int32)
    local_index[ys[has_bg], xs[has_bg]] = np.arange(int(has_bg.sum()), dtype=np.int32)
    product = np.where((fg_n > 0)[:, None], fg_local, np.nan).astype(np.float32)
    return _Matte(
        _clean(alpha, dist, lo, scale),
        rgb_model,
        flat,
        local_index,
        bg_local[has_bg],
        product[has_bg],
    )


def _clean(alpha: FloatArray, dist: FloatArray, lo: float, scale: float) -> FloatArray:
    """Drop specks, fill pinholes, snap the interior, confine the soft edge."""
    hard = alpha >= 0.5
    total = hard.size
    if not hard.any():
        return np.zeros_like(alpha)

    # Specks: components far smaller than the product and than the frame.
    parts = _components(hard, diagonal=True)
    sizes = parts.sizes()
    biggest = float(sizes.max())
    # Mottled backdrops leave blobs that barely clear the threshold; real parts of
    # a product stand out more, or are a sizeable share of it.
    keep = sizes >= max(0.0003 * total, 0.02 * biggest)
    doubtful = keep & (sizes < 0.1 * biggest)
    if doubtful.any():
        faint = parts.sums(dist) < 2.0 * lo * np.maximum(sizes, 1)
        keep &= ~(faint & doubtful)
    if not keep.any():
        return np.zeros_like(alpha)
    hard = parts.paint(keep)
    del parts  # its labels take 4 bytes a pixel

    # The rest happens in the box around the product, grown by at least one
    # pixel: outside it there is no hole and nothing survives, and backdrop
    # touching its edge is connected to the image's border.
    grow = max(1, round(2 * scale))
    box = _bounding_box(hard, grow)
    assert box is not None  # some component is kept
    hard = hard[box]

    # Holes: enclosed backdrop much smaller than the product is a highlight or a
    # speck of noise, not a real opening like a handle.
    product_area = float(sizes[keep].sum())
    gaps = _components(~hard, diagonal=False)
    small = gaps.sizes() < 0.01 * product_area
    holes = gaps.paint(small & ~gaps.touching_border())
    del gaps
    filled = hard | holes

    # Alpha is within [0, 1], so products and maxima with the masks select and
    # set without branching on every pixel.
    out = np.zeros_like(alpha)
    inside = out[box]
    np.multiply(alpha[box], _dilate(filled, grow), out=inside)
    np.maximum(inside, holes | _erode(filled, 1), out=inside)
    return out


def _decontaminate(rgb: NDArray[np.uint8], alpha: FloatArray, matte: _Matte) -> NDArray[np.uint8]:
    """Un-mix the backdrop from semi-transparent edge pixels so no halo remains."""
    out = rgb.copy()
    ys, xs = _where((alpha > 0.02) & (alpha < 0.98))
    if ys.size == 0:
        return out
    bg = matte.backdrop_at(ys, xs, alpha.shape)
    a = alpha[ys, xs][:, None]
    fg = bg + (rgb[ys, xs].astype(np.float32) - bg) / np.maximum(a, 0.15)
    # The division amplifies noise and any error in the backdrop estimate most
    # where alpha is small; those pixels lean on the nearby solid product colour
    # instead, which is what they barely show anyway.
    product = matte.product_at(ys, xs, alpha.shape)
    known = np.isfinite(product).all(axis=1)
    fg[known] = a[known] * fg[known] + (1.0 - a[known]) * product[known]
    out[ys, xs] = np.clip(np.rint(fg), 0, 255).astype(np.uint8)
    return out


def _shadow_like(rgb: NDArray[np.uint8], model: _Backdrop) -> BoolArray:
    """Pixels of ``rgb`` a shadow on the fitted backdrop could explain."""
    backdrop = np.clip(np.rint(np.moveaxis(model.field(1), 0, -1)), 0, 255).astype(np.uint8)
    return shadow_like(_u8_to_lab(rgb), _u8_to_lab(np.ascontiguousarray(backdrop)))


def remove_background(image: Image.Image) -> Image.Image:
    """Cut the product out of its background; returns RGBA with a soft alpha.

    An input whose alpha channel already has transparent pixels is returned as
    RGBA unchanged. A blank image yields a fully transparent alpha: whether that
    is an error is the caller's decision. A photo where the model finds nothing
    salient and whose background is textured (a lawn, a wall) raises
    ``EngineError("no_product")``.
    """
    normalised = _normalise(image)
    if normalised.mode == "RGBA":
        if _has_meaningful_alpha(normalised):
            return normalised.copy()
        normalised = normalised.convert("RGB")
    width, height = normalised.size
    # The submission refuses these already (`images.inspect_image`); a job made before
    # that check, or a direct call, still meets the same rule here.
    if (small := image_checks.too_small(width, height)) is not None:
        raise EngineError(small.code, small.message)
    rgb = np.asarray(normalised, dtype=np.uint8)

    pixels = width * height
    if pixels > MAX_WORK_PIXELS:
        factor = math.sqrt(pixels / MAX_WORK_PIXELS)
        work_size = (max(4, round(width / factor)), max(4, round(height / factor)))
        work = np.asarray(normalised.resize(work_size, Image.Resampling.BOX), dtype=np.uint8)
    else:
        work = rgb

    matte: _Matte | None = None
    # The border's texture decides the refinement, and so the model's input size. On
    # a textured border the colour matte has nothing to stand on: it is not computed.
    if border_texture(work) > PLAIN_TEXTURE:
        prob = saliency(work)
        if salient_share(prob) < MIN_SALIENT_SHARE:
            raise EngineError(
                "no_product",
                "No product was found in the image: nothing in it stands out from "
                "its background. Photograph the product against a plain backdrop.",
            )
        alpha = grabcut_alpha(work, prob)
    else:
        matte = _compute_matte(work)
        alpha = matte.alpha
        # A blank photo (nothing off the backdrop) and a product filling the frame (no
        # backdrop at all) keep the colour matte's clear outcomes, and so does a tiny
        # product the model does not see.
        if matte.model is not None and alpha.max() > 0.0:
            prob = saliency(work, PLAIN_INPUT_PIXELS)
            full_size = salient_share(prob) < MIN_SALIENT_SHARE
            if full_size:
                # A small product is a few pixels of the small map: look again at the
                # full size before trusting the colour matte alone.
                prob = saliency(work)
            if salient_share(prob) >= MIN_SALIENT_SHARE:
                shadowy = _shadow_like(work, matte.model)
                combined, agreement = plain_combine(alpha, upsample(prob, alpha.shape), shadowy)
                if agreement < PLAIN_AGREEMENT and not full_size:
                    # The small map may have missed a pale part: look again at full
                    # size before giving up on the colour matte.
                    prob = saliency(work)
                    combined, agreement = plain_combine(alpha, upsample(prob, alpha.shape), shadowy)
                if agreement < PLAIN_AGREEMENT:
                    matte = None
                    alpha = grabcut_alpha(work, prob)
                else:
                    alpha = combined

    if work is not rgb:
        alpha_img = Image.fromarray(alpha, "F").resize((width, height), Image.Resampling.BILINEAR)
        alpha = np.clip(np.asarray(alpha_img, dtype=np.float32), 0.0, 1.0)

    colour = decontaminate(rgb, alpha) if matte is None else _decontaminate(rgb, alpha, matte)
    alpha8 = np.rint(alpha * 255.0).astype(np.uint8)  # alpha is within [0, 1]
    # Pillow joins the planes in C; np.dstack would copy pixel by pixel.
    cutout = Image.fromarray(colour, "RGB")
    cutout.putalpha(Image.fromarray(alpha8, "L"))
    return cutout
