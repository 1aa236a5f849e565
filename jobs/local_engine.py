"""The local engine: background removal and packshots on the CPU, with no network
and no model weights.

Product photos for small shops are mostly taken against a backdrop: a white
sheet, a grey card, a coloured wall, a studio sweep. This engine assumes that and
separates the product from its backdrop by colour and by simple image structure,
not by learned semantics. It is fast (a 1-megapixel photo takes a few tenths of a
second) and predictable, and it fails on cluttered scenes, where a model would be
needed.

Approach (``remove_background``):

1. Normalise the input to 8-bit RGB (palette, CMYK, 16-bit, grey and LA inputs
   are converted; EXIF orientation is applied). An input whose alpha channel
   already has transparent pixels is returned as-is: it has been cut out before.
2. Smooth lightly (more when the border is noisy) and convert to CIE Lab, so
   that colour distances are roughly perceptual.
3. Estimate the backdrop from a band along the image border; nothing assumes
   white. The band's most common colour (preferring colours seen on several
   sides) seeds a robust fit of increasing order that separates backdrop pixels
   from product pixels touching the edge. The medians of the backdrop pixels
   across each side give four border curves, and a Coons patch (transfinite
   interpolation) fills the interior from them, which reproduces vertical or
   horizontal studio sweeps of any profile and linear gradients exactly.
4. Threshold each pixel's Lab distance to that model at a level read from the
   border itself (its noise tail and its mottling), so nothing is hand-tuned per
   photo.
5. Soft shadows are a darker copy of the backdrop: dimming linear light scales
   (L + 16, a, b) uniformly, and a blurred shadow changes slowly from pixel to
   pixel. Such pixels reached from the open backdrop become backdrop. A
   product's sharp outline stops that flood, and deep shadow may only be
   entered a short way, so a grey product is not eaten as its own shadow.
6. Pixels within a few pixels of the backdrop get a soft alpha by linear
   unmixing: the pixel is a mix of the local backdrop and the local product
   colour (means over nearby pixels of each), and its position on the segment
   between them is its coverage.
7. Clean up with connected components (computed on horizontal runs in NumPy:
   SciPy and OpenCV are not dependencies): drop specks much smaller than the
   product and faint blobs of a mottled backdrop, fill holes much smaller than
   the product, and keep real openings such as a mug handle.
8. Decontaminate edge colours by un-mixing the local backdrop
   (F = B + (C - B) / alpha), so the cut-out has no halo on a new background.

Photos above ``MAX_WORK_PIXELS`` are analysed at that size and the alpha is
scaled back up, which bounds the cost; their edges are then slightly softer.

``make_packshot`` crops the cut-out to the product, scales it to fit a square
canvas with a margin (never upscaling a small product by more than 2x, shrinking
the canvas instead) and composites it over a flat colour or transparency.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter, ImageOps

__all__ = ["EngineError", "make_packshot", "parse_color", "remove_background"]

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int32]
IndexArray = NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)

# Analysis above this size costs time without changing the cut-out much.
MAX_WORK_PIXELS: Final = 1_600_000
# Fraction of clearly transparent pixels for an alpha channel to count as a cut-out.
MEANINGFUL_ALPHA_FRACTION: Final = 0.001
# Alpha above which a pixel counts as product when cropping a packshot.
BBOX_ALPHA_THRESHOLD: Final = 8
# Shadows dimmer than this (linear light factor) are too dark to be plausible.
_SHADOW_MIN_LIGHT: Final = 0.3
_BINOMIAL_3X3: Final = ImageFilter.Kernel((3, 3), (1, 2, 1, 2, 4, 2, 1, 2, 1), scale=16)
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


class EngineError(Exception):
    """A failure the caller can show to the user: ``code`` is stable, ``message`` is prose."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- colour -------------------------------------------------------------------------


def parse_color(value: str) -> tuple[int, int, int] | None:
    """Parse "#RGB", "#RRGGBB" or "transparent" (returned as None)."""
    if not isinstance(value, str):
        raise EngineError("invalid_color", f"Colour must be text, not {type(value).__name__}.")
    text = value.strip()
    if text.lower() == "transparent":
        return None
    if not _HEX_COLOR.fullmatch(text):
        raise EngineError(
            "invalid_color",
            f"{value!r} is not a colour: use #RGB, #RRGGBB or 'transparent'.",
        )
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def _srgb_to_linear_lut() -> FloatArray:
    c = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


_LINEAR_LUT: Final = _srgb_to_linear_lut()
# sRGB (D65) to XYZ, with each row divided by the D65 white so white maps to 1.
_RGB_TO_XYZN: Final = (
    np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    / np.array([[0.95047], [1.0], [1.08883]])
).astype(np.float32)


def _linear_to_lab(linear: FloatArray) -> FloatArray:
    r, g, b = linear[..., 0], linear[..., 1], linear[..., 2]
    m = _RGB_TO_XYZN
    eps = 216.0 / 24389.0
    kappa = 24389.0 / 27.0
    lab = np.empty(linear.shape, dtype=np.float32)
    fs = []
    for row in range(3):
        t = m[row, 0] * r + m[row, 1] * g + m[row, 2] * b
        f = np.cbrt(t)
        dark = t <= eps
        if dark.any():
            f[dark] = (kappa * t[dark] + 16.0) / 116.0
        fs.append(f)
    fx, fy, fz = fs
    lab[..., 0] = 116.0 * fy - 16.0
    lab[..., 1] = 500.0 * (fx - fy)
    lab[..., 2] = 200.0 * (fy - fz)
    return lab


def _u8_to_lab(rgb: NDArray[np.uint8]) -> FloatArray:
    return _linear_to_lab(_LINEAR_LUT[rgb])


# -- input normalisation ----------------------------------------------------------


def _apply_orientation(image: Image.Image) -> Image.Image:
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        # A broken EXIF block must not sink the job: keep the pixels as stored.
        return image
    if orientation in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def _high_bit_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale to 8-bit RGB; Pillow would clip at 255 instead."""
    values = np.asarray(image)
    if image.mode == "F":
        top = float(np.nanmax(values)) if values.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0
        grey = np.nan_to_num(values.astype(np.float64)) * scale
    else:
        grey = values.astype(np.float64)
        if grey.size and grey.max() > 255:
            grey = grey * (255.0 / 65535.0)
    grey8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return Image.fromarray(grey8, "L").convert("RGB")


def _normalise(image: Image.Image) -> Image.Image:
    """8-bit 'RGB', or 'RGBA' when the input has transparency of its own."""
    image = _apply_orientation(image)
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode == "P":
        palette = image.palette
        has_alpha = "transparency" in image.info or (palette is not None and palette.mode == "RGBA")
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode in ("LA", "La", "PA", "RGBa"):
        return image.convert("RGBA")
    if mode.startswith("I") or mode == "F":
        return _high_bit_to_rgb(image)
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise EngineError(
            "unsupported_image", f"Images in mode {mode!r} are not supported."
        ) from exc


def _has_meaningful_alpha(image: Image.Image) -> bool:
    alpha = np.asarray(image.getchannel("A"))
    return bool((alpha < 128).mean() >= MEANINGFUL_ALPHA_FRACTION)


# -- morphology and connected components (NumPy only) --------------------------------


def _max_filter(values: NDArray[_T], radius: int) -> NDArray[_T]:
    """Square maximum filter (dilation for booleans), separable, edges replicated."""
    if radius <= 0:
        return values
    out = values.copy()
    for axis in (0, 1):
        src = out.copy()
        n = src.shape[axis]
        for shift in range(1, min(radius, n - 1) + 1):
            lo: list[slice] = [slice(None), slice(None)]
            hi: list[slice] = [slice(None), slice(None)]
            lo[axis], hi[axis] = slice(0, n - shift), slice(shift, n)
            np.maximum(out[tuple(lo)], src[tuple(hi)], out=out[tuple(lo)])
            np.maximum(out[tuple(hi)], src[tuple(lo)], out=out[tuple(hi)])
    return out


def _dilate(mask: BoolArray, radius: int) -> BoolArray:
    return _max_filter(mask, radius)


def _erode(mask: BoolArray, radius: int) -> BoolArray:
    return ~_max_filter(~mask, radius)


def _label(mask: BoolArray, *, diagonal: bool) -> tuple[IntArray, int]:
    """Connected components of ``mask``; returns (labels, count).

    Works on horizontal runs rather than pixels: runs on adjacent rows that
    touch are joined, and the small run graph is resolved by hooking and
    pointer jumping. Label values lie in [0, count); ``count`` marks pixels
    outside the mask, so arrays of size ``count + 1`` can be indexed by labels.
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(step == 1)
    _, run_ends = np.nonzero(step == -1)  # exclusive; row-major order pairs them up
    count = run_rows.size
    if count == 0:
        return np.zeros((h, w), dtype=np.int32), 0

    # Runs on row y + 1 that touch run r form a contiguous range of that row.
    width = w + 2
    start_keys = run_rows * width + run_starts
    end_keys = run_rows * width + run_ends
    slack = 1 if diagonal else 0
    below = (run_rows + 1) * width
    first = np.searchsorted(end_keys, below + run_starts - slack, side="right")
    last = np.searchsorted(start_keys, below + run_ends, side="right" if diagonal else "left")
    n_pairs = np.maximum(last - first, 0)
    a = np.repeat(np.arange(count), n_pairs)
    offsets = np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    b = np.repeat(first, n_pairs) + (np.arange(a.size) - offsets)

    labels = np.arange(count)
    while a.size:
        la, lb = labels[a], labels[b]
        differ = la != lb
        if not differ.any():
            break
        smaller = np.minimum(la[differ], lb[differ])
        np.minimum.at(labels, la[differ], smaller)
        np.minimum.at(labels, lb[differ], smaller)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped

    marks = np.zeros(h * w, dtype=np.int32)
    marks[run_rows * w + run_starts] = 1
    run_of_pixel = np.cumsum(marks) - 1
    flat = np.where(mask.ravel(), labels[np.maximum(run_of_pixel, 0)], count)
    return flat.astype(np.int32).reshape(h, w), count


def _border_labels(labels: IntArray) -> IntArray:
    return np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])


def _unpool(mask: BoolArray, factor: int, shape: tuple[int, int]) -> BoolArray:
    big = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
    return big[: shape[0], : shape[1]]


# -- backdrop model ----------------------------------------------------------------


def _interp_columns(samples: FloatArray, at: FloatArray) -> FloatArray:
    """Curve ``samples`` (N, C), taken at pixel centres of N pixels, evaluated at ``at``."""
    n = samples.shape[0]
    where = (np.arange(n, dtype=np.float32) + 0.5) / n
    cols = [np.interp(at, where, samples[:, c]) for c in range(samples.shape[1])]
    return np.stack(cols, axis=-1).astype(np.float32)


@dataclass(frozen=True)
class _Backdrop:
    """Four border curves (values along the image edges) joined by a Coons patch."""

    top: FloatArray  # (W, C)
    bottom: FloatArray  # (W, C)
    left: FloatArray  # (H, C)
    right: FloatArray  # (H, C)

    def field(self, step: int = 4) -> FloatArray:
        """The model at every pixel; evaluated coarsely, it is smooth anyway."""
        h, w = self.left.shape[0], self.top.shape[0]
        hs, ws = max(2, -(-h // step)), max(2, -(-w // step))
        u = (np.arange(ws, dtype=np.float32) + 0.5) / ws
        v = (np.arange(hs, dtype=np.float32) + 0.5) / hs
        grid_u = np.broadcast_to(u[None, :], (hs, ws)).ravel()
        grid_v = np.broadcast_to(v[:, None], (hs, ws)).ravel()
        coarse = self.at(grid_u, grid_v).reshape(hs, ws, -1)
        return _resize_channels(coarse.astype(np.float32), (w, h))

    def at(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """The model at normalised positions (u across, v down, both in [0, 1])."""
        top, bottom = _interp_columns(self.top, u), _interp_columns(self.bottom, u)
        left, right = _interp_columns(self.left, v), _interp_columns(self.right, v)
        ends = np.array([0.0, 1.0], dtype=np.float32)
        top_ends, bottom_ends = _interp_columns(self.top, ends), _interp_columns(self.bottom, ends)
        left_ends, right_ends = _interp_columns(self.left, ends), _interp_columns(self.right, ends)
        tl = (top_ends[0] + left_ends[0]) / 2
        tr = (top_ends[1] + right_ends[0]) / 2
        bl = (bottom_ends[0] + left_ends[1]) / 2
        br = (bottom_ends[1] + right_ends[1]) / 2
        uu, vv = u[:, None], v[:, None]
        out = (1 - vv) * top + vv * bottom + (1 - uu) * left + uu * right
        out -= (1 - uu) * (1 - vv) * tl + uu * (1 - vv) * tr
        out -= (1 - uu) * vv * bl + uu * vv * br
        return np.asarray(out, dtype=np.float32)


def _resize_channels(values: FloatArray, size: tuple[int, int]) -> FloatArray:
    if (values.shape[1], values.shape[0]) == size:
        return values
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(values[..., c]), "F").resize(
                size, Image.Resampling.BILINEAR
            ),
            dtype=np.float32,
        )
        for c in range(values.shape[2])
    ]
    return np.stack(channels, axis=-1)


def _band_mask(h: int, w: int, band: int) -> BoolArray:
    in_band = np.zeros((h, w), dtype=np.bool_)
    in_band[:band] = in_band[-band:] = True
    in_band[:, :band] = in_band[:, -band:] = True
    return in_band


def _band_width(h: int, w: int) -> int:
    return max(2, min(h, w) // 50)


def _quadratic_terms(u: FloatArray, v: FloatArray) -> FloatArray:
    return np.stack([np.ones_like(u), u, v, u * u, v * v, u * v], axis=-1)


def _perimeter_positions(h: int, w: int, ys: IndexArray, xs: IndexArray, band: int) -> IndexArray:
    """Position along the perimeter (clockwise from the top-left) of band pixels."""
    return np.select(
        [ys < band, ys >= h - band, xs >= w - band],
        [xs, w + h + (w - 1 - xs), w + ys],
        default=2 * w + h + (h - 1 - ys),
    )


def _circular_runs(flags: BoolArray) -> IntArray:
    """Label runs of True in a circular sequence (-1 where False)."""
    n = flags.size
    starts = flags & ~np.roll(flags, 1)
    labels = np.cumsum(starts) - 1
    if flags.all():
        return np.zeros(n, dtype=np.int32)
    if flags[0] and flags[-1]:
        # Positions before the first start continue the run that ends the sequence.
        labels[labels == -1] = labels[-1]
    return np.where(flags, labels, -1).astype(np.int32)


def _border_inliers(lab: FloatArray, band: int) -> BoolArray:
    """Border-band pixels that look like backdrop; False outside the band.

    Walk the perimeter: a product touching the edge shows up as a jump in colour
    where its outline crosses the border, while a backdrop, even a studio sweep,
    changes gradually. The perimeter splits at jumps into stretches; the stretch
    holding the most common border colour (preferring colours seen on several
    sides, as a backdrop surrounds the product) is backdrop, and so are other
    stretches that continue its colour trend.
    """
    h, w, _ = lab.shape
    in_band = _band_mask(h, w, band)
    ys, xs = np.nonzero(in_band)
    values = lab[ys, xs]
    position = _perimeter_positions(h, w, ys, xs, band)
    sides = np.select([ys < band, ys >= h - band, xs < band], [0, 1, 2], default=3)

    # The colour of each perimeter position: the median across the band's depth.
    top = np.median(lab[:band], axis=0)
    right = np.median(lab[:, w - band :], axis=1)
    bottom = np.median(lab[h - band :], axis=0)[::-1]
    left = np.median(lab[:, :band], axis=1)[::-1]
    profile = np.concatenate([top, right, bottom, left]).astype(np.float32)
    n = profile.shape[0]
    u_pos = np.concatenate([np.arange(w), np.full(h, w - 1), np.arange(w)[::-1], np.zeros(h)])
    v_pos = np.concatenate([np.zeros(w), np.arange(h), np.full(w, h - 1), np.arange(h)[::-1]])
    design = _quadratic_terms(
        ((u_pos + 0.5) / w).astype(np.float32), ((v_pos + 0.5) / h).astype(np.float32)
    )

    # Colour cells of 3 Lab units: a backdrop's noise stays within a few of them.
    step = max(1, ys.size // 8_000)
    sample = values[::step]
    cells = np.floor(sample / 3.0).astype(np.int64) + 64
    keys = (cells[:, 0] * 128 + cells[:, 1]) * 128 + cells[:, 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    seen_on = np.zeros((unique.size, 4), dtype=np.bool_)
    seen_on[inverse, sides[::step]] = True
    best = int(np.argmax(np.bincount(inverse) * seen_on.sum(axis=1)))
    centre = sample[inverse == best].mean(axis=0)

    # Jumps: compare positions a few apart so blurred outlines still register.
    k = max(2, round(3 * min(h, w) / 1000))
    jump = np.linalg.norm(np.roll(profile, -k, axis=0) - np.roll(profile, k, axis=0), axis=1)
    limit = max(3.0, 6.0 * float(np.median(jump)))
    calm = ~_dilate_1d(jump > limit, k)
    runs = _circular_runs(calm)
    near_centre = np.linalg.norm(profile - centre, axis=1) < 6.0
    backdrop = np.zeros(n, dtype=np.bool_)
    if runs.max() >= 0:
        votes = np.bincount(runs[near_centre & (runs >= 0)], minlength=int(runs.max()) + 1)
        seed = int(np.argmax(votes)) if votes.max() > 0 else -1
        if seed >= 0:
            backdrop = runs == seed
            # Other stretches count if they share the common colour or continue the
            # seed's colour trend (a plane: higher orders extrapolate wildly).
            plane = design[:, :3]
            coef = np.linalg.lstsq(plane[backdrop], profile[backdrop], rcond=None)[0]
            residual = np.linalg.norm(profile - plane @ coef, axis=1)
            scale = float(np.median(residual[backdrop]))
            # Tight tolerances: a pale product against a pale backdrop differs by
            # only a few units.
            tolerance = 3.0 * scale + 2.5
            from_centre = np.linalg.norm(profile - centre, axis=1)
            for run in range(int(runs.max()) + 1):
                member = runs == run
                if (
                    np.median(from_centre[member]) < tolerance
                    or np.median(residual[member]) < tolerance
                ):
                    backdrop |= member
    if not backdrop.any():
        backdrop = near_centre

    # Pixels deep in the band may still be product where the outline runs along it.
    deviation = np.linalg.norm(values - profile[position], axis=1)
    candidate = backdrop[position]
    spread = float(np.median(deviation[candidate])) if candidate.any() else 0.0
    ok = candidate & (deviation < 3.0 * spread + 1.5)
    inliers = np.zeros((h, w), dtype=np.bool_)
    inliers[ys[ok], xs[ok]] = True
    return inliers


def _dilate_1d(flags: BoolArray, radius: int) -> BoolArray:
    out = flags.copy()
    for shift in range(1, radius + 1):
        out |= np.roll(flags, shift) | np.roll(flags, -shift)
    return out


def _robust_curve(values: FloatArray, ok: BoolArray, smooth: int) -> FloatArray | None:
    """Median across the band (axis 1) of inlier pixels, gaps interpolated, smoothed."""
    has = ok.any(axis=1)
    if not has.any():
        return None
    masked = np.where(ok[has][..., None], values[has], np.inf)
    # Sorting pushes the excluded (infinite) entries to the end of each row, so
    # the median of the n valid ones sits at index (n - 1) // 2.
    masked.sort(axis=1)
    middle = ((ok[has].sum(axis=1) - 1) // 2)[:, None, None]
    curve = np.full((values.shape[0], values.shape[2]), np.nan, dtype=np.float32)
    curve[has] = np.take_along_axis(masked, middle, axis=1)[:, 0, :]
    idx = np.arange(values.shape[0])
    for c in range(curve.shape[1]):
        curve[:, c] = np.interp(idx, idx[has], curve[has, c])
    if smooth > 1:
        kernel = np.ones(smooth, dtype=np.float32) / smooth
        pad = smooth // 2
        # Odd reflection keeps a linear trend going past the ends.
        padded = np.pad(curve, ((pad, pad), (0, 0)), mode="reflect", reflect_type="odd")
        curve = np.stack(
            [np.convolve(padded[:, c], kernel, mode="valid") for c in range(curve.shape[1])],
            axis=-1,
        ).astype(np.float32)
    return curve


def _fit_backdrop(values: FloatArray, inliers: BoolArray, band: int) -> _Backdrop | None:
    """Border curves of ``values`` from the inlier pixels of each band."""
    h, w = inliers.shape
    # Heavy smoothing: studio light varies over hundreds of pixels, while mottling
    # along the border must not be copied into the interior.
    smooth = max(1, (min(h, w) // 12) | 1)
    top = _robust_curve(values[:band].transpose(1, 0, 2), inliers[:band].T, smooth)
    bottom = _robust_curve(values[-band:].transpose(1, 0, 2), inliers[-band:].T, smooth)
    left = _robust_curve(values[:, :band], inliers[:, :band], smooth)
    right = _robust_curve(values[:, -band:], inliers[:, -band:], smooth)
    present = [c for c in (top, bottom, left, right) if c is not None]
    if not present:
        return None
    # A side entirely covered by the product borrows the mean of the others.
    fallback = np.mean([c.mean(axis=0) for c in present], axis=0).astype(np.float32)
    return _Backdrop(
        top if top is not None else np.tile(fallback, (w, 1)),
        bottom if bottom is not None else np.tile(fallback, (w, 1)),
        left if left is not None else np.tile(fallback, (h, 1)),
        right if right is not None else np.tile(fallback, (h, 1)),
    )


# -- the matte ---------------------------------------------------------------------


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
    """Steps 2 to 7 of the module docstring, at the resolution of ``rgb``."""
    h, w, _ = rgb.shape
    band = _band_width(h, w)
    scale = max(0.25, min(h, w) / 1000.0)
    sigma = _noise_sigma(rgb, band)
    radius = max(1.0, scale) * float(np.clip(0.6 + 0.35 * sigma, 0.8, 2.5))
    source = Image.fromarray(rgb, "RGB")
    # A 3x3 binomial kernel is a Gaussian of radius ~0.85 at a fraction of the cost.
    smoothing = _BINOMIAL_3X3 if radius <= 1.1 else ImageFilter.GaussianBlur(radius)
    blurred = np.asarray(source.filter(smoothing), dtype=np.uint8)
    lab = _u8_to_lab(blurred)
    inliers = _border_inliers(lab, band)
    lab_model = _fit_backdrop(lab, inliers, band)
    rgb_model = _fit_backdrop(blurred.astype(np.float32), inliers, band)
    if lab_model is None or rgb_model is None:
        # No border pixel looks like backdrop: the product fills the frame.
        flat = rgb.reshape(-1, 3).mean(axis=0).astype(np.float32)
        return _empty_matte(np.ones((h, w), np.float32), None, flat)
    bg_lab = lab_model.field()
    diff = lab - bg_lab
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff)).astype(np.float32)
    lo = _threshold(dist, inliers)

    shadow = _shadow_backdrop(lab, bg_lab, dist, lo, inliers, scale)
    backdrop = (dist < lo) | shadow
    # The band of uncertain pixels must be wider than the blur's footprint.
    reach = max(2, round(2 * scale), math.ceil(radius) + 1)
    # The flood stops a few pixels short of the product, on the far side of the
    # outline's steep slope: widen the band where the two meet.
    margin = reach + max(2, round(5 * scale))
    near = _dilate(dist < lo, reach) | _dilate(shadow, margin)
    alpha = (~near).astype(np.float32)
    flat = rgb_model.top.mean(axis=0)

    ys, xs = np.nonzero(near & ~backdrop)
    if ys.size == 0:
        alpha[shadow] = 0.0
        return _empty_matte(_clean(alpha, dist, lo, scale), rgb_model, flat)

    # The blur smears thin parts into their neighbours: unmix the raw pixels.
    bg_local, bg_n = _local_means(rgb, backdrop, ys, xs, margin + 1)
    fg_local, fg_n = _local_means(rgb, ~near, ys, xs, margin + 1)
    colour = rgb[ys, xs].astype(np.float32)
    axis = fg_local - bg_local
    length2 = np.einsum("ij,ij->i", axis, axis)
    # Linear unmixing: an edge pixel lies on the segment from the local backdrop
    # to the local product colour, and its position along it is its coverage.
    unmixed = np.einsum("ij,ij->i", colour - bg_local, axis) / np.maximum(length2, 1e-6)
    valid = (bg_n > 0) & (fg_n > 0) & (length2 > 16.0)
    if valid.all():
        estimate = unmixed
    else:
        # Thin parts with no solid interior nearby: fall back to distance ratios.
        local_max = _max_filter(dist, reach + 1)[ys, xs]
        ratio = dist[ys, xs] / (0.92 * np.maximum(local_max, 2 * lo))
        estimate = np.where(valid, unmixed, ratio)
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


def _local_means(
    values: NDArray[np.uint8], weight: BoolArray, ys: IndexArray, xs: IndexArray, radius: int
) -> tuple[FloatArray, FloatArray]:
    """Mean of ``values`` over ``weight`` pixels in the window around each (y, x)."""
    h, w = weight.shape
    # Only the region around the query points matters.
    top, left = max(0, int(ys.min()) - radius), max(0, int(xs.min()) - radius)
    bottom, right = min(h, int(ys.max()) + radius + 1), min(w, int(xs.max()) + radius + 1)
    sub_w = weight[top:bottom, left:right]
    x0 = np.clip(xs - radius - left, 0, right - left)
    x1 = np.clip(xs + radius + 1 - left, 0, right - left)
    rows = (ys - top)[:, None] + np.arange(-radius, radius + 1)[None, :]
    inside = (rows >= 0) & (rows < bottom - top)
    rows = np.clip(rows, 0, bottom - top - 1)
    prefix = np.zeros((bottom - top, right - left + 1), dtype=np.int32)

    def window_sum(plane: NDArray[np.uint8] | BoolArray) -> NDArray[np.int32]:
        # Row prefix sums, then the window's rows gathered per query point: far
        # cheaper than a full 2-D integral image when only edge pixels are asked.
        np.cumsum(plane, axis=1, dtype=np.int32, out=prefix[:, 1:])
        spans = prefix[rows, x1[:, None]] - prefix[rows, x0[:, None]]
        return np.asarray(np.where(inside, spans, 0).sum(axis=1), dtype=np.int32)

    count = window_sum(sub_w)
    sub_v = values[top:bottom, left:right]
    sums = np.stack([window_sum(sub_v[..., c] * sub_w) for c in range(values.shape[2])], -1)
    means = sums / np.maximum(count, 1)[:, None]
    return means.astype(np.float32), count.astype(np.float32)


def _shadow_backdrop(
    lab: FloatArray,
    bg_lab: FloatArray,
    dist: FloatArray,
    lo: float,
    inliers: BoolArray,
    scale: float,
) -> BoolArray:
    """Soft shadows cast on the backdrop: pixels near the open backdrop, reached
    from it through shadow-like pixels without crossing an outline.

    Dimming linear light by k scales (L + 16, a, b) by k ** (1/3), so a shadow is
    a pixel parallel to the backdrop colour in that space and a little shorter.
    Shadows are soft, so this runs on every other pixel of the blurred image.
    """
    step = 2 if dist.size > 400_000 else 1
    p = lab[::step, ::step] + np.array([16.0, 0.0, 0.0], np.float32)
    q = bg_lab[::step, ::step] + np.array([16.0, 0.0, 0.0], np.float32)
    d = dist[::step, ::step]
    qq = np.maximum(np.einsum("ijk,ijk->ij", q, q), 1e-6)
    s = np.einsum("ijk,ijk->ij", p, q) / qq
    resid = p - s[..., None] * q
    off_axis = np.sqrt(np.einsum("ijk,ijk->ij", resid, resid))
    s_min = _SHADOW_MIN_LIGHT ** (1.0 / 3.0)
    like = (s >= s_min) & (s <= 1.0) & (off_axis < max(1.0, 0.8 * lo))

    lum = p[..., 0]
    grad = np.zeros_like(lum)
    grad[1:-1, :] = np.abs(lum[2:, :] - lum[:-2, :])
    gx = np.zeros_like(lum)
    gx[:, 1:-1] = np.abs(lum[:, 2:] - lum[:, :-2])
    np.maximum(grad, gx, out=grad)
    grad /= 2.0 * step  # per full-resolution pixel
    border_grad = grad[inliers[::step, ::step]]
    g_noise = float(np.quantile(border_grad, 0.99)) if border_grad.size else 0.0
    # A soft shadow changes slowly: in its faint tail by little per pixel, in its
    # core by a small fraction of its depth per pixel. An outline fails both.
    # In small images shadows get as sharp as outlines; do not relax beyond that.
    darkening = np.maximum(q[..., 0] - lum, 0.0)
    size = max(scale, 0.5)
    soft = (grad < max(1.2 / size, 1.5 * g_noise)) | (grad < 0.12 * darkening / size)

    plain = d < lo
    candidates = like & soft & ~plain
    # Faint shading (a mottled backdrop, the fringe of a shadow) may spread anywhere
    # from the frame.
    faint = plain | (candidates & (d < 2.5 * lo))
    labels, count = _label(faint, diagonal=False)
    touching = np.zeros(count + 1, dtype=np.bool_)
    touching[_border_labels(labels)] = True
    touching[count] = False
    open_backdrop = touching[labels]
    # Deep shadows hug the product, so that flood may only travel a short way:
    # where a neutral product meets its own shadow with no visible outline, it
    # then eats a sliver of the product instead of all of it.
    limit = max(4, round(0.08 * min(dist.shape) / step))
    return _unpool(_grow(open_backdrop, candidates, limit), step, dist.shape) & (dist >= lo)


def _grow(seed: BoolArray, allowed: BoolArray, steps: int) -> BoolArray:
    """Pixels of ``allowed`` within ``steps`` 4-connected moves of ``seed``."""
    ys, xs = np.nonzero(allowed)
    if ys.size == 0:
        return np.zeros_like(allowed)
    # Only the box around the allowed pixels (plus one for the seed) can change.
    top, bottom = max(0, int(ys.min()) - 1), int(ys.max()) + 2
    left, right = max(0, int(xs.min()) - 1), int(xs.max()) + 2
    ok = allowed[top:bottom, left:right]
    reached = seed[top:bottom, left:right].copy()
    for _ in range(steps):
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= ok | reached
        if np.array_equal(grown, reached):
            break
        reached = grown
    out = np.zeros_like(allowed)
    out[top:bottom, left:right] = reached & ok
    return out


def _clean(alpha: FloatArray, dist: FloatArray, lo: float, scale: float) -> FloatArray:
    """Drop specks, fill pinholes, snap the interior, confine the soft edge."""
    hard = alpha >= 0.5
    total = hard.size
    if not hard.any():
        return np.zeros_like(alpha)

    # Specks: components far smaller than the product and than the frame.
    labels, count = _label(hard, diagonal=True)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[count] = 0
    biggest = float(sizes.max())
    # Mottled backdrops leave blobs that barely clear the threshold; real parts of
    # a product stand out more, or are a sizeable share of it.
    mean_dist = np.bincount(labels.ravel(), weights=dist.ravel(), minlength=count + 1)
    faint = mean_dist < 2.0 * lo * np.maximum(sizes, 1)
    keep_comp = (sizes >= max(0.0003 * total, 0.02 * biggest)) & ~(faint & (sizes < 0.1 * biggest))
    hard &= keep_comp[labels]
    if not hard.any():
        return np.zeros_like(alpha)

    # Holes: enclosed backdrop much smaller than the product is a highlight or a
    # speck of noise, not a real opening like a handle.
    product_area = float(hard.sum())
    labels, count = _label(~hard, diagonal=False)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    enclosed = np.ones(count + 1, dtype=np.bool_)
    enclosed[_border_labels(labels)] = False
    enclosed[count] = False
    holes = (enclosed & (sizes < 0.01 * product_area))[labels]
    filled = hard | holes

    out = np.where(_dilate(filled, max(1, round(2 * scale))), alpha, 0.0).astype(np.float32)
    out[holes] = 1.0
    out[_erode(filled, 1)] = 1.0
    return out


def _decontaminate(rgb: NDArray[np.uint8], alpha: FloatArray, matte: _Matte) -> NDArray[np.uint8]:
    """Un-mix the backdrop from semi-transparent edge pixels so no halo remains."""
    out = rgb.copy()
    ys, xs = np.nonzero((alpha > 0.02) & (alpha < 0.98))
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


# -- public API --------------------------------------------------------------------


def remove_background(image: Image.Image) -> Image.Image:
    """Cut the product out of its backdrop; returns RGBA with a soft alpha.

    An input whose alpha channel already has transparent pixels is returned as
    RGBA unchanged. A blank image yields a fully transparent alpha: whether that
    is an error is the caller's decision.
    """
    normalised = _normalise(image)
    if normalised.mode == "RGBA":
        if _has_meaningful_alpha(normalised):
            return normalised.copy()
        normalised = normalised.convert("RGB")
    width, height = normalised.size
    if width < 4 or height < 4:
        raise EngineError("image_too_small", "The image is too small to process.")
    rgb = np.asarray(normalised, dtype=np.uint8)

    pixels = width * height
    if pixels > MAX_WORK_PIXELS:
        factor = math.sqrt(pixels / MAX_WORK_PIXELS)
        work_size = (max(4, round(width / factor)), max(4, round(height / factor)))
        work = np.asarray(normalised.resize(work_size, Image.Resampling.BOX), dtype=np.uint8)
        matte = _compute_matte(work)
        alpha_img = Image.fromarray(matte.alpha, "F").resize(
            (width, height), Image.Resampling.BILINEAR
        )
        alpha = np.clip(np.asarray(alpha_img, dtype=np.float32), 0.0, 1.0)
    else:
        matte = _compute_matte(rgb)
        alpha = matte.alpha

    colour = _decontaminate(rgb, alpha, matte)
    alpha8 = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([colour, alpha8]), "RGBA")


def make_packshot(
    image: Image.Image,
    *,
    background_color: str = "#FFFFFF",
    size: int = 2000,
    margin: float = 0.08,
    remove_bg: bool = True,
) -> Image.Image:
    """A square, centred product shot on a flat colour (RGB) or transparency (RGBA)."""
    color = parse_color(background_color)
    if not isinstance(size, int) or size < 16:
        raise EngineError("invalid_size", "The packshot size must be at least 16 pixels.")
    if not 0.0 <= margin < 0.5:
        raise EngineError("invalid_margin", "The margin must be between 0 and 0.5.")

    if remove_bg:
        cutout = remove_background(image)
    else:
        normalised = _normalise(image)
        cutout = normalised.convert("RGBA") if normalised.mode != "RGBA" else normalised

    alpha = np.asarray(cutout.getchannel("A"))
    rows = np.flatnonzero((alpha > BBOX_ALPHA_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((alpha > BBOX_ALPHA_THRESHOLD).any(axis=0))
    if rows.size == 0:
        raise EngineError("empty_image", "No product could be found in the image: it looks blank.")
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    product = cutout.crop(box)
    pw, ph = product.size

    usable = 1.0 - 2.0 * margin
    fit = size * usable / max(pw, ph)
    if fit > 2.0:
        # Small product: upscaling further would only show blur, so shrink the canvas.
        side = max(256, min(size, round(max(pw, ph) * 2.0 / usable)))
        fit = min(2.0, side * usable / max(pw, ph))
    else:
        side = size
    new_w, new_h = max(1, round(pw * fit)), max(1, round(ph * fit))
    if (new_w, new_h) != (pw, ph):
        product = product.resize((new_w, new_h), Image.Resampling.LANCZOS)

    fill = (0, 0, 0, 0) if color is None else (*color, 255)
    canvas = Image.new("RGBA", (side, side), fill)
    canvas.alpha_composite(product, dest=((side - new_w) // 2, (side - new_h) // 2))
    return canvas if color is None else canvas.convert("RGB")
