"""Array helpers of the local engine, on OpenCV and NumPy.

Strips of rows (so that chains of NumPy operations stay in the CPU's cache),
Gaussian smoothing, square dilation and erosion, connected components, growth
through allowed pixels, and window means around chosen points (from an integral
image). OpenCV runs on the caller's thread only (see ``cv2.setNumThreads`` below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

# Workers run one task per process, each process pinned to its share of the cores:
# OpenCV's own thread pool would oversubscribe them (every worker's pool fighting
# over the same cores) for no gain. Each call then runs on its caller's thread,
# and still releases the GIL.
cv2.setNumThreads(1)

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int32]
IndexArray = NDArray[np.intp]

# Per-pixel stages run on strips of about this many pixels (see _row_strips).
_STRIP_PIXELS: Final = 32_768


# Window means (see _local_means) read integral images of bands of this many rows.
_LOCAL_BAND_ROWS: Final = 128


def _row_strips(h: int, w: int) -> list[slice]:
    """Row ranges of about ``_STRIP_PIXELS`` pixels each.

    A chain of NumPy operations over a whole photo streams every temporary
    through main memory; run strip by strip, the temporaries stay in the CPU's
    cache, which makes such chains up to twice as fast.
    """
    rows = max(1, _STRIP_PIXELS // max(1, w))
    return [slice(y, min(h, y + rows)) for y in range(0, h, rows)]


def _smooth(rgb: NDArray[np.uint8], radius: float) -> NDArray[np.uint8]:
    """Gaussian smoothing of an (H, W, 3) image with standard deviation ``radius``,
    the image's edges repeated."""
    # Light smoothing is the 3x3 binomial kernel [1 2 1] / 4 (OpenCV's fixed
    # kernel for that size and no sigma), a Gaussian of radius ~0.7.
    size, sigma = ((3, 3), 0.0) if radius <= 1.1 else ((0, 0), radius)
    smoothed = cv2.GaussianBlur(rgb, size, sigma, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(smoothed, dtype=np.uint8)


def _u8(mask: BoolArray) -> NDArray[np.uint8]:
    """A boolean mask as the 0/1 bytes OpenCV takes, without a copy when contiguous."""
    return np.ascontiguousarray(mask).view(np.uint8)


# -- morphology and connected components ---------------------------------------------


def _square(radius: int) -> NDArray[np.uint8]:
    """The structuring element of a square window of ``2 * radius + 1`` pixels."""
    return np.ones((2 * radius + 1, 2 * radius + 1), dtype=np.uint8)


def _window_max(values: FloatArray, ys: IndexArray, xs: IndexArray, radius: int) -> FloatArray:
    """Maximum of ``values`` over the square window around each (y, x), the
    window clipped at the image edges.

    Only the box holding the points' windows is dilated.
    """
    if ys.size == 0:
        return np.zeros(0, dtype=values.dtype)
    h, w = values.shape
    top, left = max(0, int(ys.min()) - radius), max(0, int(xs.min()) - radius)
    bottom, right = min(h, int(ys.max()) + radius + 1), min(w, int(xs.max()) + radius + 1)
    # OpenCV's default border for dilation never wins the maximum: a clipped window.
    box = cv2.dilate(values[top:bottom, left:right], _square(radius))
    return np.asarray(box[ys - top, xs - left], dtype=values.dtype)


def _dilate(mask: BoolArray, radius: int) -> BoolArray:
    """Square dilation, the window clipped at the image edges."""
    if radius <= 0:
        return mask.copy()
    return cv2.dilate(_u8(mask), _square(radius)).view(np.bool_)


def _erode(mask: BoolArray, radius: int) -> BoolArray:
    """Square erosion, the window clipped at the image edges."""
    if radius <= 0:
        return mask.copy()
    return cv2.erode(_u8(mask), _square(radius)).view(np.bool_)


def _bounding_box(mask: BoolArray, margin: int) -> tuple[slice, slice] | None:
    """The box around the True pixels, grown by ``margin`` within the image."""
    x, y, bw, bh = cv2.boundingRect(_u8(mask))
    if bw == 0:
        return None
    h, w = mask.shape
    return (
        slice(max(0, y - margin), min(h, y + bh + margin)),
        slice(max(0, x - margin), min(w, x + bw + margin)),
    )


@dataclass(frozen=True)
class _Components:
    """Connected components of a mask, as labelled by OpenCV.

    (Labelling alone is several times faster than with OpenCV's statistics, which
    gather boxes and centroids the engine does not use.)
    """

    labels: IntArray  # (H, W): 0 off the mask, 1 + the component's index on it
    count: int

    def sizes(self) -> FloatArray:
        """Pixels in each component."""
        return self.sums(None)

    def sums(self, values: FloatArray | None) -> FloatArray:
        """Sum of ``values`` (or the count of pixels) over each component."""
        # By strips: bincount copies its labels to 64 bits and its weights to
        # float64, 8 bytes a pixel each over a whole image.
        h, w = self.labels.shape
        totals = np.zeros(self.count + 1, dtype=np.float64)
        for rows in _row_strips(h, w):
            weights = None if values is None else values[rows].ravel()
            totals += np.bincount(
                self.labels[rows].ravel(), weights=weights, minlength=self.count + 1
            )
        return totals[1:].astype(np.float32)

    def touching_border(self) -> BoolArray:
        """Components with a pixel on the image border."""
        edge = (self.labels[0], self.labels[-1], self.labels[:, 0], self.labels[:, -1])
        touching = np.zeros(self.count + 1, dtype=np.bool_)
        touching[np.concatenate(edge)] = True
        return touching[1:]

    def paint(self, selected: BoolArray) -> BoolArray:
        """The pixels of the ``selected`` components (a boolean per component)."""
        lookup = np.zeros(self.count + 1, dtype=np.bool_)
        lookup[1:] = selected
        out = np.empty(self.labels.shape, dtype=np.bool_)
        # By strips: np.take copies 32-bit indices to 64 bits first.
        for rows in _row_strips(*self.labels.shape):
            np.take(lookup, self.labels[rows], out=out[rows])
        return out


def _components(mask: BoolArray, *, diagonal: bool) -> _Components:
    """Connected components of ``mask`` (4- or 8-connected)."""
    count, labels = cv2.connectedComponents(
        _u8(mask), connectivity=8 if diagonal else 4, ltype=cv2.CV_32S
    )
    return _Components(np.asarray(labels, dtype=np.int32), count - 1)


def _unpool(mask: BoolArray, factor: int, shape: tuple[int, int]) -> BoolArray:
    """Each pixel of ``mask`` repeated over ``factor`` x ``factor``, cut to ``shape``."""
    h, w = mask.shape
    big = cv2.resize(_u8(mask), (w * factor, h * factor), interpolation=cv2.INTER_NEAREST)
    return big[: shape[0], : shape[1]].view(np.bool_)


def _where(mask: BoolArray) -> tuple[IndexArray, IndexArray]:
    """(ys, xs) of the True pixels: np.nonzero, but several times faster in 2-D."""
    ys, xs = np.divmod(np.flatnonzero(mask), mask.shape[1])
    return ys, xs


def _dilate_1d(flags: BoolArray, radius: int) -> BoolArray:
    """Dilation of a circular sequence: its ends wrapped round, then dilated."""
    if radius <= 0:
        return flags.copy()
    reach = min(radius, flags.size)
    wrapped = np.concatenate([flags[-reach:], flags, flags[:reach]])[None, :]
    grown = cv2.dilate(_u8(wrapped), np.ones((1, 2 * radius + 1), dtype=np.uint8))
    return grown[0, reach : reach + flags.size].view(np.bool_)


def _grow(seed: BoolArray, allowed: BoolArray, steps: int) -> BoolArray:
    """Pixels of ``allowed`` within ``steps`` 4-connected moves of ``seed``."""
    # Only the box around the allowed pixels (plus one for the seed) can change.
    box = _bounding_box(allowed, 1)
    out = np.zeros_like(allowed)
    if box is None:
        return out
    ok = _u8(allowed[box])
    reached: NDArray[np.uint8] = _u8(seed[box])
    through = cv2.bitwise_or(ok, reached)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    count = cv2.countNonZero(reached)
    for _ in range(steps):
        reached = np.asarray(cv2.bitwise_and(cv2.dilate(reached, cross), through), np.uint8)
        # Growth only adds pixels: the same count means nothing moved.
        grown_count = cv2.countNonZero(reached)
        if grown_count == count:
            break
        count = grown_count
    out[box] = cv2.bitwise_and(reached, ok).view(np.bool_)
    return out


# -- window sums and means around chosen points --------------------------------------


def _local_means(
    rgb: NDArray[np.uint8],
    weights: tuple[BoolArray, ...],
    ys: IndexArray,
    xs: IndexArray,
    radius: int,
) -> list[tuple[FloatArray, FloatArray]]:
    """For each mask in ``weights``: the mean colour of its pixels in the window
    around each (y, x), clipped at the image edges, and their count.

    Window sums are four reads of an integral image. It is taken over bands of
    rows around the points (their columns' span only), so it stays a few
    megabytes: 16 bytes per pixel for a whole photo would dwarf the rest. The
    sums stay in 32 bits: 255 per pixel and channel overflows only past 8
    megapixels, and the matte is computed on fewer (MAX_WORK_PIXELS).
    """
    h, w = rgb.shape[:2]
    left, right = max(0, int(xs.min()) - radius), min(w, int(xs.max()) + radius + 1)
    sums = np.zeros((len(weights), ys.size, 4), dtype=np.int32)
    rows = _LOCAL_BAND_ROWS
    for start in range(int(ys.min()), int(ys.max()) + 1, rows):
        chosen = np.flatnonzero((ys >= start) & (ys < start + rows))
        if chosen.size == 0:
            continue
        top, bottom = max(0, start - radius), min(h, start + rows + radius)
        py, px = ys[chosen], xs[chosen]
        # Each window's corners in the integral image, whose first row and column are 0.
        y0, y1 = np.maximum(py - radius, top) - top, np.minimum(py + radius + 1, bottom) - top
        x0, x1 = np.maximum(px - radius, left) - left, np.minimum(px + radius + 1, right) - left
        # A fourth channel of 255 counts the pixels once masked.
        band = np.ascontiguousarray(rgb[top:bottom, left:right])
        rgba = cv2.cvtColor(band, cv2.COLOR_RGB2RGBA)
        for k, weight in enumerate(weights):
            masked = cv2.bitwise_and(rgba, rgba, mask=_u8(weight[top:bottom, left:right]))
            table = cv2.integral(masked, sdepth=cv2.CV_32S)
            sums[k, chosen] = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    results = []
    for k in range(len(weights)):
        count = sums[k, :, 3] // 255
        means = sums[k, :, :3] / np.maximum(count, 1)[:, None]
        results.append((means.astype(np.float32), count.astype(np.float32)))
    return results
