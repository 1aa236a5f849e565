"""The backdrop model: which border pixels are backdrop, the Coons patch fitted to
them, and the soft shadows cast on the backdrop (steps 3 and 5 of the package
docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from jobs.engines.local.arrays import (
    BoolArray,
    FloatArray,
    IndexArray,
    IntArray,
    _components,
    _dilate_1d,
    _grow,
    _row_strips,
    _unpool,
)

# Shadows dimmer than this (linear light factor) are too dark to be plausible.
_SHADOW_MIN_LIGHT: Final = 0.3


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
    values = lab.reshape(-1, 3)[flat]
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
    # Central differences, |next - previous| along each axis; the mirrored border
    # makes them 0 on the image's edges.
    grad = np.abs(cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=1, borderType=cv2.BORDER_REFLECT_101))
    gx = np.abs(cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=1, borderType=cv2.BORDER_REFLECT_101))
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
