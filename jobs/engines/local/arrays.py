"""Array helpers of the local engine, in NumPy only (SciPy and OpenCV are not dependencies).

Strips of rows (so that chains of operations stay in the CPU's cache), smoothing,
square dilation and erosion, connected components kept as horizontal runs, growth
through allowed pixels, and window sums and means around chosen points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeVar

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
_T = TypeVar("_T", bound=np.generic)
_Int = TypeVar("_Int", np.uint16, np.int32)

# Per-pixel stages run on strips of about this many pixels (see _row_strips).
_STRIP_PIXELS: Final = 32_768


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
        weights = None if values is None else values.ravel()
        totals = np.bincount(self.labels.ravel(), weights=weights, minlength=self.count + 1)
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
        return np.take(lookup, self.labels)


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
