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
2. Smooth lightly (a binomial kernel, wider when the border is noisy) and
   convert to CIE Lab, so that colour distances are roughly perceptual.
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
   between them is its coverage. The band also takes in the faint pixels a
   little off the backdrop's colour next to it (JPEG's ringing and chroma
   bleed beside a strong outline), which would otherwise stay solid as specks
   of the old backdrop.
7. Clean up with connected components (computed on horizontal runs in NumPy:
   SciPy and OpenCV are not dependencies): drop specks much smaller than the
   product and faint blobs of a mottled backdrop, fill holes much smaller than
   the product, and keep real openings such as a mug handle.
8. Decontaminate edge colours by un-mixing the local backdrop
   (F = B + (C - B) / alpha), so the cut-out has no halo on a new background.

Photos above ``MAX_WORK_PIXELS`` are analysed at that size and the alpha is
scaled back up, which bounds the cost; their edges are then slightly softer.

Everything runs on one core in NumPy and Pillow, so the hot paths avoid whole-
image temporaries where they can: Lab conversion and the distance to the
backdrop model work on colour planes, strip by strip, so that intermediate
arrays stay in the CPU's cache; smoothing is done in 16-bit integer passes;
connected components stay as runs; dilations, the clean-up and the local means
only touch the boxes or the band along the outline where pixels can change.

``make_packshot`` crops the cut-out to the product, scales it to fit a square
canvas with a margin (never upscaling a small product by more than 2x, shrinking
the canvas instead) and composites it over a flat colour or transparency. On a
flat colour it composites first, at the photo's resolution, and scales the
result: the same picture as scaling the premultiplied cut-out, for less work.
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
_Int = TypeVar("_Int", np.uint16, np.int32)

# Analysis above this size costs time without changing the cut-out much.
MAX_WORK_PIXELS: Final = 1_600_000
# Fraction of clearly transparent pixels for an alpha channel to count as a cut-out.
MEANINGFUL_ALPHA_FRACTION: Final = 0.001
# Alpha above which a pixel counts as product when cropping a packshot.
BBOX_ALPHA_THRESHOLD: Final = 8
# Shadows dimmer than this (linear light factor) are too dark to be plausible.
_SHADOW_MIN_LIGHT: Final = 0.3
# Per-pixel stages run on strips of about this many pixels (see _row_strips).
_STRIP_PIXELS: Final = 32_768
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


_LAB_EPSILON: Final = np.float32(216.0 / 24389.0)
_LAB_KAPPA: Final = np.float32(24389.0 / 27.0)


def _row_strips(h: int, w: int) -> list[slice]:
    """Row ranges of about ``_STRIP_PIXELS`` pixels each.

    A chain of NumPy operations over a whole photo streams every temporary
    through main memory; run strip by strip, the temporaries stay in the CPU's
    cache, which makes such chains up to twice as fast.
    """
    rows = max(1, _STRIP_PIXELS // max(1, w))
    return [slice(y, min(h, y + rows)) for y in range(0, h, rows)]


def _u8_to_lab(rgb: NDArray[np.uint8]) -> FloatArray:
    """CIE Lab (D65) of 8-bit sRGB pixels, as float32 planes: (3, H, W)."""
    h, w, _ = rgb.shape
    lab = np.empty((3, h, w), dtype=np.float32)
    for rows in _row_strips(h, w):
        _u8_to_lab_into(rgb[rows], lab[:, rows])
    return lab


def _u8_to_lab_into(rgb: NDArray[np.uint8], lab: FloatArray) -> None:
    """Lab planes of a strip of ``rgb`` into ``lab`` (3, H, W)."""
    # Planes keep every step a contiguous pass over memory. (A matrix product
    # over (N, 3) rows would hand the work to BLAS, whose threads then fight
    # over the core when the process is pinned to one.)
    linear = [np.take(_LINEAR_LUT, rgb[..., k]) for k in range(3)]
    f = np.empty((3, *rgb.shape[:2]), dtype=np.float32)
    term = np.empty_like(f[0])
    for row, plane in enumerate(f):
        np.multiply(linear[0], _RGB_TO_XYZN[row, 0], out=plane)
        for k in (1, 2):
            np.multiply(linear[k], _RGB_TO_XYZN[row, k], out=term)
            plane += term
        dark = np.flatnonzero(plane <= _LAB_EPSILON)
        t = plane.ravel()[dark]
        np.cbrt(plane, out=plane)
        if dark.size:
            plane.ravel()[dark] = (_LAB_KAPPA * t + 16.0) / 116.0
    fx, fy, fz = f
    np.multiply(fy, 116.0, out=lab[0])
    lab[0] -= 16.0
    np.subtract(fx, fy, out=lab[1])
    lab[1] *= 500.0
    np.subtract(fy, fz, out=lab[2])
    lab[2] *= 200.0


def _smooth(rgb: NDArray[np.uint8], radius: float) -> NDArray[np.uint8]:
    """Gaussian smoothing of an (H, W, 3) image with standard deviation ``radius``.

    A binomial kernel of order m, made by m passes of [1, 1] along each axis, is
    a Gaussian of variance m / 4 for any practical purpose. Each pass is one
    16-bit addition over a strip of rows: on one core, two to three times faster
    than Pillow's kernel and Gaussian filters, which work pixel by pixel.
    """
    if radius > 2.0:
        # Past this the passes outnumber the constant cost of Pillow's box blurs.
        smoothed = Image.fromarray(rgb, "RGB").filter(ImageFilter.GaussianBlur(radius))
        return np.asarray(smoothed, dtype=np.uint8)
    # Light smoothing is the 3x3 binomial kernel, a Gaussian of radius ~0.85.
    order = 2 if radius <= 1.1 else 2 * round(2.0 * radius * radius)
    half = order // 2
    h, w, _ = rgb.shape
    out = np.empty_like(rgb)
    for rows in _row_strips(h, w):
        # The strip and the rows its kernel reaches, the image's edges repeated.
        reach = np.clip(np.arange(rows.start - half, rows.stop + half), 0, h - 1)
        block = np.pad(rgb[reach], ((0, 0), (half, half), (0, 0)), mode="edge")
        out[rows] = _binomial(block.astype(np.uint16), order)
    return out


def _binomial(block: NDArray[np.uint16], order: int) -> NDArray[np.uint8]:
    """``order`` passes of [1, 1] across, then down, an (H, W, C) block; the
    result is ``order`` pixels smaller along both axes."""
    # 255 * 2 ** 8 still fits in 16 bits: round back to 8 bits every 8 passes.
    carried = 0
    for axis in (1, 0):
        # A view with the filtered axis first, so one slice expression serves both.
        lines = np.moveaxis(block, axis, 0)
        for _ in range(order):
            lines = lines[:-1] + lines[1:]
            carried += 1
            if carried == 8:
                lines += 128
                lines >>= 8
                carried = 0
        block = np.moveaxis(lines, 0, axis)
    if carried:
        block += 1 << (carried - 1)
        block >>= carried
    return block.astype(np.uint8)


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


def _window_max(values: FloatArray, ys: IndexArray, xs: IndexArray, radius: int) -> FloatArray:
    """Maximum of ``values`` over the square window around each (y, x).

    Gathers each window, for when a few pixels are asked rather than the frame.
    """
    h, w = values.shape
    offsets = np.arange(-radius, radius + 1)
    out = np.empty(ys.size, dtype=values.dtype)
    # In chunks, so that the gathered windows stay a few megabytes at most.
    chunk = 16_384
    for start in range(0, ys.size, chunk):
        rows = np.clip(ys[start : start + chunk, None] + offsets, 0, h - 1)
        cols = np.clip(xs[start : start + chunk, None] + offsets, 0, w - 1)
        windows = values[rows[:, :, None], cols[:, None, :]]
        out[start : start + chunk] = windows.reshape(rows.shape[0], -1).max(axis=1)
    return out


def _dilate(mask: BoolArray, radius: int) -> BoolArray:
    """Square dilation, the window clipped at the image edges.

    Only the box around the True pixels can change, so only it is filtered.
    """
    out = np.zeros_like(mask)
    box = _bounding_box(mask, radius)
    if box is not None:
        out[box] = _max_filter(mask[box], radius)
    return out


def _erode(mask: BoolArray, radius: int) -> BoolArray:
    """Square erosion, the window clipped at the image edges; the dual of _dilate."""
    out = np.zeros_like(mask)
    box = _bounding_box(mask, radius)
    if box is not None:
        out[box] = ~_max_filter(~mask[box], radius)
    return out


def _bounding_box(mask: BoolArray, margin: int) -> tuple[slice, slice] | None:
    """The box around the True pixels, grown by ``margin`` within the image."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (
        slice(max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + margin + 1)),
        slice(max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + margin + 1)),
    )


@dataclass(frozen=True)
class _Components:
    """Connected components of a mask, kept as its horizontal runs.

    Runs are far fewer than pixels, so sizes, sums and selections are computed
    per run, and a per-pixel image is only painted for the runs asked for.
    """

    mask: BoolArray
    rows: IndexArray  # row of each run, in row-major order
    starts: IndexArray  # first column of each run
    ends: IndexArray  # one past its last column
    labels: IndexArray  # component of each run, in [0, count)
    count: int

    def sizes(self) -> FloatArray:
        """Pixels in each component."""
        lengths = (self.ends - self.starts).astype(np.float32)
        return np.bincount(self.labels, weights=lengths, minlength=self.count).astype(np.float32)

    def sums(self, values: FloatArray) -> FloatArray:
        """Sum of ``values`` over each component's pixels."""
        if self.count == 0:
            return np.zeros(0, dtype=np.float32)
        w = self.mask.shape[1]
        bounds = np.stack([self.rows * w + self.starts, self.rows * w + self.ends], axis=1).ravel()
        flat = values.ravel()
        # reduceat sums each [start, end) run and each gap between runs; a run
        # that ends the image has no index past it, and reduceat goes to the end.
        if bounds[-1] == flat.size:
            bounds = bounds[:-1]
        run_sums = np.add.reduceat(flat, bounds)[::2]
        return np.bincount(self.labels, weights=run_sums, minlength=self.count).astype(np.float32)

    def touching_border(self) -> BoolArray:
        """Components with a pixel on the image border."""
        h, w = self.mask.shape
        edge = (self.rows == 0) | (self.rows == h - 1) | (self.starts == 0) | (self.ends == w)
        touching = np.zeros(self.count, dtype=np.bool_)
        touching[self.labels[edge]] = True
        return touching

    def paint(self, selected: BoolArray) -> BoolArray:
        """The pixels of the ``selected`` components (a boolean per component)."""
        keep = selected[self.labels]
        lengths = self.ends - self.starts
        # Usually nearly all runs are kept or nearly all dropped: write whichever
        # pixels are fewer, the kept ones on a blank image or the dropped ones on
        # a copy of the mask.
        if 2 * int(lengths[keep].sum()) <= int(lengths.sum()):
            out = np.zeros(self.mask.shape, dtype=np.bool_)
            out.ravel()[self._pixels(keep)] = True
        else:
            out = self.mask.copy()
            out.ravel()[self._pixels(~keep)] = False
        return out

    def _pixels(self, runs: BoolArray) -> IndexArray:
        """Flat indices of the pixels of the chosen runs."""
        lengths = (self.ends - self.starts)[runs]
        firsts = (self.rows * self.mask.shape[1] + self.starts)[runs]
        # Each run's first index repeated along it, plus the position within it.
        before = np.cumsum(lengths) - lengths
        return np.repeat(firsts - before, lengths) + np.arange(int(lengths.sum()))


def _components(mask: BoolArray, *, diagonal: bool) -> _Components:
    """Connected components of ``mask`` (4- or 8-connected).

    Runs on adjacent rows that touch are joined, and the small run graph is
    resolved by hooking and pointer jumping.
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.bool_)
    padded[:, 1:-1] = mask
    # Each row is padded with False at both ends, so its changes pair up as
    # (start, end) in row-major order.
    changes = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    rows_all, cols_all = np.divmod(changes, w + 1)
    run_rows, run_starts, run_ends = rows_all[0::2], cols_all[0::2], cols_all[1::2]
    count = run_rows.size
    if count == 0:
        empty = np.zeros(0, dtype=np.intp)
        return _Components(mask, empty, empty, empty, empty, 0)

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
    # Roots are the smallest run of each component: number them 0, 1, 2, ...
    roots = labels == np.arange(count)
    number = np.cumsum(roots) - 1
    return _Components(mask, run_rows, run_starts, run_ends, number[labels], int(roots.sum()))


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

    def field(self, step: int = 1, rows: slice = slice(None)) -> FloatArray:
        """The model at the centre of every ``step``-th pixel of every ``step``-th
        row, as planes (C, H, W); ``rows`` selects rows of that grid.

        At pixel centres the curves need no interpolation, and every term of the
        patch varies with the row alone, the column alone, or with the product of
        the two positions, so each plane is a few broadcast sums.
        """
        h, w = self.left.shape[0], self.top.shape[0]
        u = (np.arange(0, w, step, dtype=np.float32) + 0.5) / w
        v = ((np.arange(0, h, step, dtype=np.float32)[rows] + 0.5) / h)[:, None]
        top, bottom = self.top[::step].T, self.bottom[::step].T
        left, right = self.left[::step][rows].T, self.right[::step][rows].T
        tl, tr, bl, br = (corner[:, None] for corner in self._corners())
        # (1 - v) top + v bottom + (1 - u) left + u right minus the bilinear
        # patch of the corners, grouped by what each term varies with.
        by_column = top - tl - u * (tr - tl)
        down = bottom - top - u * (br - tr - bl + tl)
        by_row = left - v.T * (bl - tl)
        across = right - left
        planes = np.empty((top.shape[0], v.shape[0], u.shape[0]), dtype=np.float32)
        term = np.empty_like(planes[0])
        # Copying a row into every row, then scaling or adding per row in place,
        # is several times faster than NumPy's general outer broadcasting.
        for k, plane in enumerate(planes):
            plane[...] = by_column[k]
            plane += by_row[k][:, None]
            term[...] = down[k]
            term *= v
            plane += term
            term[...] = u
            term *= across[k][:, None]
            plane += term
        return planes

    def distance(self, values: FloatArray) -> FloatArray:
        """Euclidean distance from each pixel of ``values`` (C, H, W) to the model."""
        _, h, w = values.shape
        dist = np.empty((h, w), dtype=np.float32)
        for rows in _row_strips(h, w):
            diff = self.field(rows=rows)
            np.subtract(values[:, rows], diff, out=diff)
            diff *= diff
            np.sqrt(diff.sum(axis=0), out=dist[rows])
        return dist

    def _corners(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Top-left, top-right, bottom-left, bottom-right: where two curves meet."""
        tl = (self.top[0] + self.left[0]) / 2
        tr = (self.top[-1] + self.right[0]) / 2
        bl = (self.bottom[0] + self.left[-1]) / 2
        br = (self.bottom[-1] + self.right[-1]) / 2
        return tl, tr, bl, br

    def at(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """The model at normalised positions (u across, v down, both in [0, 1])."""
        top, bottom = _interp_columns(self.top, u), _interp_columns(self.bottom, u)
        left, right = _interp_columns(self.left, v), _interp_columns(self.right, v)
        tl, tr, bl, br = self._corners()
        uu, vv = u[:, None], v[:, None]
        out = (1 - vv) * top + vv * bottom + (1 - uu) * left + uu * right
        out -= (1 - uu) * (1 - vv) * tl + uu * (1 - vv) * tr
        out -= (1 - uu) * vv * bl + uu * vv * br
        return np.asarray(out, dtype=np.float32)


def _band_pixels(h: int, w: int, band: int) -> tuple[IndexArray, IndexArray]:
    """(ys, xs) of the pixels within ``band`` of the border, in row-major order."""
    columns = np.arange(w)
    sides = np.concatenate([columns[:band], columns[w - band :]])
    middle = np.arange(band, h - band)
    ys = np.concatenate(
        [
            np.repeat(np.arange(band), w),
            np.repeat(middle, sides.size),
            np.repeat(np.arange(h - band, h), w),
        ]
    )
    xs = np.concatenate(
        [np.tile(columns, band), np.tile(sides, middle.size), np.tile(columns, band)]
    )
    return ys, xs


def _where(mask: BoolArray) -> tuple[IndexArray, IndexArray]:
    """(ys, xs) of the True pixels: np.nonzero, but several times faster in 2-D."""
    ys, xs = np.divmod(np.flatnonzero(mask), mask.shape[1])
    return ys, xs


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
    ys, xs = _band_pixels(h, w, band)
    flat = ys * w + xs
    # Gathered plane by plane: lab is a view of (3, H, W) planes.
    values = np.stack([plane.ravel()[flat] for plane in np.moveaxis(lab, -1, 0)], axis=1)
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
    off = values - np.take(profile, position, axis=0)
    deviation = np.sqrt(np.einsum("ij,ij->i", off, off))
    candidate = backdrop[position]
    spread = float(np.median(deviation[candidate])) if candidate.any() else 0.0
    ok = candidate & (deviation < 3.0 * spread + 1.5)
    inliers = np.zeros((h, w), dtype=np.bool_)
    inliers.ravel()[flat[ok]] = True
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
    # (position, channel, depth): the sort below then runs along contiguous rows.
    masked = np.where(ok[has][:, None, :], values[has].transpose(0, 2, 1), np.float32(np.inf))
    # Sorting pushes the excluded (infinite) entries to the end of each row, so
    # the median of the n valid ones sits at index (n - 1) // 2.
    masked.sort(axis=2)
    middle = ((ok[has].sum(axis=1) - 1) // 2)[:, None, None]
    curve = np.full((values.shape[0], values.shape[2]), np.nan, dtype=np.float32)
    curve[has] = np.take_along_axis(masked, middle, axis=2)[:, :, 0]
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


def _fit_backdrop(
    values: FloatArray | NDArray[np.uint8], inliers: BoolArray, band: int
) -> _Backdrop | None:
    """Border curves of ``values`` (H, W, C) from the inlier pixels of each band."""
    h, w = inliers.shape
    # Heavy smoothing: studio light varies over hundreds of pixels, while mottling
    # along the border must not be copied into the interior.
    smooth = max(1, (min(h, w) // 12) | 1)

    def curve(strip: FloatArray | NDArray[np.uint8], ok: BoolArray) -> FloatArray | None:
        # Only the bands are converted to float, not the whole image.
        return _robust_curve(strip.astype(np.float32, copy=False), ok, smooth)

    top = curve(values[:band].transpose(1, 0, 2), inliers[:band].T)
    bottom = curve(values[-band:].transpose(1, 0, 2), inliers[-band:].T)
    left = curve(values[:, :band], inliers[:, :band])
    right = curve(values[:, -band:], inliers[:, -band:])
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
    blurred = _smooth(rgb, radius)
    lab_planes = _u8_to_lab(blurred)
    lab = np.moveaxis(lab_planes, 0, -1)  # (H, W, 3) view, for code that reads the border
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


def _local_means(
    rgb: NDArray[np.uint8],
    weights: tuple[BoolArray, ...],
    ys: IndexArray,
    xs: IndexArray,
    radius: int,
) -> list[tuple[FloatArray, FloatArray]]:
    """For each mask in ``weights``: the mean colour of its pixels in the window
    around each (y, x), and their count.

    The query points line the product's outline, so the windows cover a thin
    band: sums are computed on blocks around the points (a strip of rows, split
    where the points leave wide gaps) rather than on their whole bounding box.
    """
    h, w = rgb.shape[:2]
    top, left = max(0, int(ys.min()) - radius), max(0, int(xs.min()) - radius)
    bottom, right = min(h, int(ys.max()) + radius + 1), min(w, int(xs.max()) + radius + 1)
    words = _pixel_words(rgb[top:bottom, left:right])
    # (py, px): the query points in a frame padded by ``radius`` on every side,
    # so that every window lies inside it.
    py, px = ys - top + radius, xs - left + radius
    rows = 64
    blocks = [
        (start, group)
        for start in range(int(py.min()), int(py.max()) + 1, rows)
        for group in _column_groups(np.flatnonzero((py >= start) & (py < start + rows)), px, radius)
    ]
    sums = np.zeros((len(weights), ys.size, 4), dtype=np.int32)
    padded = np.zeros((bottom - top + 2 * radius, right - left + 2 * radius), dtype=np.uint32)
    inside = padded[radius : radius + bottom - top, radius : radius + right - left]
    for k, weight in enumerate(weights):
        # The mask's pixels as whole 32-bit words: one pass instead of four.
        np.multiply(words, weight[top:bottom, left:right], out=inside)
        for start, (chosen, first, last) in blocks:
            # Window sums over the block reaching ``radius`` around its points;
            # down the columns first, in 16 bits (up to 257 bytes fit).
            block = padded[
                start - radius : start + rows + radius, first - radius : last + radius + 1
            ]
            channels = block.view(np.uint8).reshape(*block.shape, 4).astype(np.uint16)
            down = _window_sums(channels, radius, axis=0)
            both = _window_sums(down.astype(np.int32), radius, axis=1)
            at = (py[chosen] - start) * both.shape[1] + (px[chosen] - first)
            sums[k, chosen] = np.take(both.reshape(-1, 4), at, axis=0)
    results = []
    for k in range(len(weights)):
        count = sums[k, :, 3] // 255
        means = sums[k, :, :3] / np.maximum(count, 1)[:, None]
        results.append((means.astype(np.float32), count.astype(np.float32)))
    return results


def _column_groups(
    points: IndexArray, columns: IndexArray, radius: int
) -> list[tuple[IndexArray, int, int]]:
    """Split ``points`` where their ``columns`` leave wide gaps: (points, first
    column, last column) per group. Gaps not much wider than a window are
    bridged, as another block costs more than the pixels it would skip."""
    if points.size == 0:
        return []
    order = points[np.argsort(columns[points], kind="stable")]
    in_order = columns[order]
    breaks = np.flatnonzero(np.diff(in_order) > 2 * radius + 33) + 1
    return [
        (group, int(columns[group[0]]), int(columns[group[-1]]))
        for group in np.split(order, breaks)
    ]


def _window_sums(values: NDArray[_Int], radius: int, axis: int) -> NDArray[_Int]:
    """Sums over ``2 * radius + 1`` consecutive entries along ``axis``, where the
    window fits: that axis comes out ``2 * radius`` shorter.

    By doubling: sums over 1, 2, 4, ... entries, each two shifted copies of the
    previous added, then those that make up the width added at their offsets.
    A handful of passes whatever the radius, and unlike a cumulative sum, no
    partial sum outgrows the window's.
    """
    width = 2 * radius + 1
    lines = np.moveaxis(values, axis, 0)  # one slice expression for either axis
    n = lines.shape[0] - 2 * radius
    # The width is odd: its lowest bit is one entry. (Order "K" keeps the
    # memory layout, so the result is contiguous again once the axis is back.)
    total = lines[:n].copy(order="K")
    length, offset = 1, 1  # lines[i] sums ``length`` entries from i
    while 2 * length <= width:
        lines = lines[:-length] + lines[length:]
        length *= 2
        if width & length:
            total += lines[offset : offset + n]
            offset += length
    return np.moveaxis(total, 0, axis)


def _pixel_words(rgb: NDArray[np.uint8]) -> NDArray[np.uint32]:
    """Each pixel as one little-endian 32-bit word whose bytes are R, G, B, 255.

    Reading 4 bytes at a 3-byte stride takes each pixel plus the next pixel's
    red, which the OR then overwrites: one pass, where inserting a fourth
    channel with NumPy would copy byte by byte.
    """
    h, w, _ = rgb.shape
    flat = np.zeros(h * w * 3 + 1, dtype=np.uint8)
    flat[:-1] = rgb.reshape(-1)
    words = np.ndarray((h * w,), dtype="<u4", buffer=flat, strides=(3,))
    return (words | np.uint32(0xFF000000)).astype("<u4", copy=False).reshape(h, w)


def _shadow_backdrop(
    lab: FloatArray,
    model: _Backdrop,
    dist: FloatArray,
    lo: float,
    inliers: BoolArray,
    scale: float,
) -> BoolArray:
    """Soft shadows cast on the backdrop: pixels near the open backdrop, reached
    from it through shadow-like pixels without crossing an outline. ``lab`` is
    the blurred image as Lab planes, (3, H, W).

    Dimming linear light by k scales (L + 16, a, b) by k ** (1/3), so a shadow is
    a pixel parallel to the backdrop colour in that space and a little shorter.
    Shadows are soft, so this runs on every other pixel of the blurred image.
    """
    step = 2 if dist.size > 400_000 else 1
    # (L + 16, a, b) of the blurred image, p, and of the backdrop model, q.
    p0 = lab[0, ::step, ::step] + np.float32(16.0)
    p1, p2 = lab[1, ::step, ::step], lab[2, ::step, ::step]
    q0, q1, q2 = model.field(step)
    q0 += 16.0
    d = dist[::step, ::step]
    pq = p0 * q0
    pq += p1 * q1
    pq += p2 * q2
    qq = q0 * q0
    qq += q1 * q1
    qq += q2 * q2
    np.maximum(qq, 1e-6, out=qq)
    pp = p0 * p0
    pp += p1 * p1
    pp += p2 * p2
    s = pq / qq
    # |p - s q|^2 = |p|^2 - s (p . q): the squared part of p off the backdrop's axis.
    off_axis2 = pp - s * pq
    s_min = _SHADOW_MIN_LIGHT ** (1.0 / 3.0)
    like = (s >= s_min) & (s <= 1.0) & (off_axis2 < max(1.0, 0.8 * lo) ** 2)

    lum = p0
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
    darkening = np.maximum(q0 - lum, 0.0)
    size = max(scale, 0.5)
    soft = (grad < max(1.2 / size, 1.5 * g_noise)) | (grad < 0.12 * darkening / size)

    plain = d < lo
    candidates = like & soft & ~plain
    # Faint shading (a mottled backdrop, the fringe of a shadow) may spread anywhere
    # from the frame.
    faint = plain | (candidates & (d < 2.5 * lo))
    regions = _components(faint, diagonal=False)
    open_backdrop = regions.paint(regions.touching_border())
    # Deep shadows hug the product, so that flood may only travel a short way:
    # where a neutral product meets its own shadow with no visible outline, it
    # then eats a sliver of the product instead of all of it.
    limit = max(4, round(0.08 * min(dist.shape) / step))
    return _unpool(_grow(open_backdrop, candidates, limit), step, dist.shape) & (dist >= lo)


def _grow(seed: BoolArray, allowed: BoolArray, steps: int) -> BoolArray:
    """Pixels of ``allowed`` within ``steps`` 4-connected moves of ``seed``."""
    rows = np.flatnonzero(allowed.any(axis=1))
    if rows.size == 0:
        return np.zeros_like(allowed)
    cols = np.flatnonzero(allowed.any(axis=0))
    # Only the box around the allowed pixels (plus one for the seed) can change.
    top, bottom = max(0, int(rows[0]) - 1), int(rows[-1]) + 2
    left, right = max(0, int(cols[0]) - 1), int(cols[-1]) + 2
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
    parts = _components(hard, diagonal=True)
    sizes = parts.sizes()
    biggest = float(sizes.max())
    # Mottled backdrops leave blobs that barely clear the threshold; real parts of
    # a product stand out more, or are a sizeable share of it.
    faint = parts.sums(dist) < 2.0 * lo * np.maximum(sizes, 1)
    keep = (sizes >= max(0.0003 * total, 0.02 * biggest)) & ~(faint & (sizes < 0.1 * biggest))
    if not keep.any():
        return np.zeros_like(alpha)
    hard = parts.paint(keep)

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
    alpha8 = np.rint(alpha * 255.0).astype(np.uint8)  # alpha is within [0, 1]
    # Pillow joins the planes in C; np.dstack would copy pixel by pixel.
    cutout = Image.fromarray(colour, "RGB")
    cutout.putalpha(Image.fromarray(alpha8, "L"))
    return cutout


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
    resized = (new_w, new_h) != (pw, ph)
    dest = ((side - new_w) // 2, (side - new_h) // 2)
    # Enlarging, bicubic and Lanczos differ by under 0.1 level on average (PSNR
    # ~50 dB on the samples) and bicubic takes a third less time; shrinking
    # keeps Lanczos, whose wider kernel keeps fine detail from aliasing.
    resample = Image.Resampling.BICUBIC if fit > 1.0 else Image.Resampling.LANCZOS

    if color is None:
        if resized:
            product = product.resize((new_w, new_h), resample)
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        canvas.alpha_composite(product, dest=dest)
        return canvas
    # On a flat colour, compose first and resize after: resampling is linear and
    # the colour is constant, so this equals resizing the premultiplied cut-out
    # and compositing it, without resampling an alpha channel or converting to
    # and from premultiplied alpha on the large image (over twice as fast).
    flat = Image.new("RGB", product.size, color)
    flat.paste(product, (0, 0), product)
    if resized:
        flat = flat.resize((new_w, new_h), resample)
    canvas = Image.new("RGB", (side, side), color)
    canvas.paste(flat, dest)
    return canvas
