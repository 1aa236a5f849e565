"""Refinement of the model's coarse probability map into a cut-out's alpha.

The model (``saliency``) decides *what* the product is, at about 224 x 224. Two ways
turn that into precise edges, chosen by how plain the photo's background is:

- On a plain backdrop, the colour matte (``matte``) already has precise, unmixed soft
  edges, drops cast shadows and keeps openings such as a mug's handle. The model only
  corrects what it keeps: components the model does not find salient are dropped,
  and product the colour matte lost to a backdrop of nearly its colour is restored
  where the model is confident.
- On a cluttered background (wood, brick, grass, a room) the colour matte has nothing
  to stand on. OpenCV's GrabCut runs on the product's box with a margin, at a bounded
  working size, seeded from the map and a colour posterior (histograms of the product
  and the nearby background): probable product where the model and the colour agree,
  so thin parts the model saw faintly are kept and background it filled in (a ring's
  opening) is not; salient scenery cut by the frame is sure background when a whole
  object stands apart from it. A guided filter (built on ``cv2.boxFilter``) gives
  the mask soft edges that follow the photo, and edge colours are unmixed from a
  local estimate of the background, so no halo of the old background remains.
"""

from __future__ import annotations

from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from jobs.engines.local.saliency import input_size

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]

# The map at or above this is the product; a photo where less than this share of the
# map is product and whose border is textured shows no product at all.
SALIENT: Final = 0.5
MIN_SALIENT_SHARE: Final = 0.003
# Border texture (median gradient of the downscaled grey border, 0..255 per pixel)
# below which a backdrop is plain enough for the colour matte.
PLAIN_TEXTURE: Final = 0.9
# On a plain backdrop the colour matte is trusted unless it agrees this badly with
# the model (the model also takes in cast shadows, so agreement is rarely perfect).
PLAIN_AGREEMENT: Final = 0.6
# GrabCut runs on the product's box (grown by this share of its longer side and 2% of
# the frame's), at most this long and this large: its cost grows with the area.
CROP_MARGIN: Final = 0.15
GRABCUT_SIDE: Final = 640
GRABCUT_PIXELS: Final = 400 * 300
GRABCUT_ITERATIONS: Final = 2
# Seeds: probable product where the map is at least SEED_PROB and the colour posterior
# says product; sure product only where the map is near 1 and the colour is clearly
# the product's (a ring's opening the model filled is neither).
SEED_PROB: Final = 0.5
SURE_POST: Final = 0.9
# The model sees a shaded or thin part of a product only faintly (a ring's dark side
# at about 0.4): where the map is at least BAND_PROB and the colour posterior is
# clearly the product's (at least BAND_POST), it is probable product too.
BAND_PROB: Final = 0.3
BAND_POST: Final = 0.9
# After GrabCut, a thick region of the product whose smoothed colour posterior is
# below DROP_POST is background seen through an opening the model filled.
DROP_POST: Final = 0.25
OPEN_UNITS: Final = 1
SMOOTH_UNITS: Final = 0.5
# Rounds of re-weighting the product's colour histogram by its own posterior.
POSTERIOR_ROUNDS: Final = 3
# A shadow dims the backdrop's light to at least this share (as in ``backdrop``), and
# its colour stays within this many Lab units of the backdrop's axis (JPEG noise).
SHADOW_MIN_LIGHT: Final = 0.3
SHADOW_OFF_AXIS: Final = 3.0
# Where the matte keeps a shadow-like pixel the model sees below this, it is the cast
# shadow under the product's base, not product.
SHADOW_PROB: Final = 0.8
# ... and lies at the product's foot: below the top of this share of its height at
# the bottom of the model's mask.
BASE_BAND: Final = 0.1


def shadow_like(lab: FloatArray, backdrop_lab: FloatArray) -> BoolArray:
    """Pixels whose colour a shadow on the backdrop could explain: (L + 16, a, b)
    parallel to the local backdrop's and no longer (dimming linear light by k scales
    it by k ** (1/3)). ``lab`` and ``backdrop_lab`` are (H, W, 3) CIE Lab."""
    p = lab.astype(np.float32).copy()
    q = backdrop_lab.astype(np.float32).copy()
    p[..., 0] += 16.0
    q[..., 0] += 16.0
    pq = np.einsum("hwc,hwc->hw", p, q)
    qq = np.maximum(np.einsum("hwc,hwc->hw", q, q), 1e-6)
    s = pq / qq
    off = p - s[..., None] * q
    off2 = np.einsum("hwc,hwc->hw", off, off)
    low = SHADOW_MIN_LIGHT ** (1.0 / 3.0)
    return np.asarray((s >= low) & (s <= 1.0) & (off2 <= SHADOW_OFF_AXIS**2))


def upsample(prob: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """The map at ``shape`` (h, w), bilinearly."""
    h, w = shape
    return np.asarray(cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)


def salient_share(prob: FloatArray) -> float:
    return float((prob >= SALIENT).mean())


def border_texture(rgb: NDArray[np.uint8]) -> float:
    """How textured the background along the border is, at the model's scale: the
    median gradient over a band along the border.

    Downscaling to about the model's input size averages sensor noise and JPEG
    blocks away, so a noisy studio sweep reads as plain and brick, grass or wood as
    textured. The median ignores a product's outline where it touches the band.
    """
    h, w = rgb.shape[:2]
    sw, sh = input_size(w, h)
    grey = cv2.cvtColor(cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    grad = cv2.magnitude(gx, gy) / 8.0
    band = max(2, min(sh, sw) // 16)
    ring = np.ones((sh, sw), bool)
    ring[band:-band, band:-band] = False
    # The frame's outermost pixel has a one-sided gradient: leave it out.
    ring[0, :] = ring[-1, :] = False
    ring[:, 0] = ring[:, -1] = False
    return float(np.median(grad[ring]))


def _enclosed(mask: BoolArray) -> BoolArray:
    """Pixels outside ``mask`` that do not reach the frame's border: its holes."""
    count, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    edge = np.unique(
        np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).astype(np.int64)
    )
    outside = np.zeros(count, bool)
    outside[edge] = True
    holes = ~outside[labels]
    holes &= ~mask
    return np.asarray(holes)


def plain_combine(
    alpha: FloatArray, prob: FloatArray, shadowy: BoolArray | None = None
) -> tuple[FloatArray, float]:
    """The colour matte corrected by the model; and how well the two agree.

    ``prob`` is the map at the matte's size; ``shadowy`` marks pixels a shadow on the
    backdrop could explain (``shadow_like``): at the foot of the model's mask, those
    the model does not clearly see as product are dropped (the colour matte's flood
    of shadow stops short under a pale base). Agreement is the intersection over union
    of the corrected matte and the model's mask, leaving out the matte's holes (the
    model tends to fill a ring's opening, the colour matte rightly keeps it).
    """
    if shadowy is not None:
        # With no outline between a pale base and its shadow, the matte keeps a grey
        # rim the model sees only at its blurred edge. Only at the foot: a pale
        # product's own shading higher up (a mug's handle, seen faintly) is
        # shadow-like too.
        rows = np.nonzero((prob >= SALIENT).any(axis=1))[0]
        foot = rows[-1] - BASE_BAND * (rows[-1] - rows[0]) if rows.size else alpha.shape[0]
        rim = shadowy & (prob < SHADOW_PROB)
        rim[: max(0, int(foot))] = False
        if rim.any():
            alpha = np.where(rim, 0.0, alpha).astype(np.float32)
    hard = alpha >= 0.5
    salient = prob >= SALIENT
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        hard.astype(np.uint8), connectivity=8
    )
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    sums = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=count)
    mean_prob = sums / np.maximum(areas, 1.0)
    seen = np.bincount(labels.ravel(), weights=salient.ravel(), minlength=count)
    # The model sees a pale part of a product only faintly (a pink bottle on teal):
    # a component goes only when the model sees almost none of it.
    keep = (mean_prob >= 0.35) | (seen >= 0.1 * areas)
    keep[0] = False
    out = alpha.copy()
    if count > 1 and keep[1:].any():
        dropped = ~keep[labels] & hard
        # A kept part's soft edge lies outside its hard component: clear only around
        # the dropped ones.
        out[cv2.dilate(dropped.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] *= 0.0
        out[keep[labels]] = alpha[keep[labels]]
        hard = keep[labels]

    # Product the colour matte lost to a backdrop of nearly its colour: confident
    # model pixels outside the matte that connect to the open backdrop (an enclosed
    # hole of the matte is a real opening).
    holes = _enclosed(hard)
    confident = cv2.erode((prob >= 0.9).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    lost = confident & ~hard & ~holes
    # A cast shadow the matte rightly dropped is a thin band along the product's
    # base, where the model is often confident too; lost product is a thick piece.
    # Small misses are more often a shadow or reflection the matte rightly dropped.
    # (The opening only shrinks ``lost``: skip it when too little is lost anyway.)
    least = 0.2 * max(1, int(hard.sum()))
    if lost.sum() >= least:
        thick = max(5, round(0.05 * float(np.sqrt(max(1, int(hard.sum()))))))
        ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thick, thick))
        lost = cv2.morphologyEx(lost.astype(np.uint8), cv2.MORPH_OPEN, ellipse) > 0
    if lost.sum() >= least:
        soft = np.clip((prob - 0.3) / 0.4, 0.0, 1.0)
        reach = cv2.dilate(lost.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        reach &= ~holes
        out[reach] = np.maximum(out[reach], soft[reach])
        hard = out >= 0.5
        holes = _enclosed(hard)

    both = hard & salient
    either = (hard | salient) & ~holes
    agreement = float(both.sum() / either.sum()) if either.any() else 1.0
    return out, agreement


def _box(values: FloatArray, radius: int) -> FloatArray:
    return np.asarray(
        cv2.boxFilter(values, -1, (2 * radius + 1, 2 * radius + 1), normalize=True), np.float32
    )


def guided_filter(guide: FloatArray, src: FloatArray, radius: int, eps: float) -> FloatArray:
    """He, Sun and Tang's guided filter with a grey guide: ``src`` smoothed except where
    ``guide`` has edges, so a blocky mask takes the photo's outline."""
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = np.asarray(cov / (var + eps), np.float32)
    b = np.asarray(mean_p - a * mean_i, np.float32)
    return _box(a, radius) * guide + _box(b, radius)


def _product_box(prob: FloatArray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) at ``shape`` around what the map finds salient, with a
    margin of background for GrabCut's colour model; the whole frame when nothing is."""
    h, w = shape
    ys, xs = np.nonzero(prob >= 0.3)
    if ys.size == 0:
        return 0, h, 0, w
    ph, pw = prob.shape
    top, bottom = ys.min() / ph * h, (ys.max() + 1) / ph * h
    left, right = xs.min() / pw * w, (xs.max() + 1) / pw * w
    margin = CROP_MARGIN * max(bottom - top, right - left) + 0.02 * max(h, w)
    return (
        max(0, int(top - margin)),
        min(h, int(np.ceil(bottom + margin))),
        max(0, int(left - margin)),
        min(w, int(np.ceil(right + margin))),
    )


def grabcut_alpha(rgb: NDArray[np.uint8], prob: FloatArray) -> FloatArray:
    """Alpha at the size of ``rgb`` from GrabCut seeded by the map, with soft edges.

    GrabCut runs on the product's box with a margin of background, at up to
    ``GRABCUT_SIDE`` and ``GRABCUT_PIXELS``: a small product is cut at a finer scale
    than the whole frame would allow, for the same cost, and the background's colour
    model learns the background near the product.
    """
    h, w = rgb.shape[:2]
    top, bottom, left, right = _product_box(prob, (h, w))
    crop = np.ascontiguousarray(rgb[top:bottom, left:right])
    frame_edges = (top == 0, bottom == h, left == 0, right == w)
    p_crop = upsample(prob, (h, w))[top:bottom, left:right]
    alpha = np.zeros((h, w), np.float32)
    alpha[top:bottom, left:right] = _grabcut_crop(crop, p_crop, frame_edges)
    return alpha


def _grabcut_crop(
    rgb: NDArray[np.uint8], prob_full: FloatArray, frame_edges: tuple[bool, bool, bool, bool]
) -> FloatArray:
    h, w = rgb.shape[:2]
    factor = min(1.0, GRABCUT_SIDE / max(h, w), float(np.sqrt(GRABCUT_PIXELS / (h * w))))
    gw, gh = max(8, round(w * factor)), max(8, round(h * factor))
    small = np.asarray(cv2.resize(rgb, (gw, gh), interpolation=cv2.INTER_AREA), np.uint8)
    p = np.asarray(cv2.resize(prob_full, (gw, gh), interpolation=cv2.INTER_AREA), np.float32)

    unit = max(1, round(min(gw, gh) / 100))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * unit + 1, 2 * unit + 1))
    product = (p >= SALIENT).astype(np.uint8)
    sure_fg = cv2.erode((p >= 0.97).astype(np.uint8), kernel, iterations=2) > 0
    near = cv2.dilate(product, kernel, iterations=3) > 0
    mask = np.full((gh, gw), cv2.GC_BGD, np.uint8)
    mask[near] = cv2.GC_PR_BGD
    # Faint map values far from the product are still probable background, so that a
    # thin part the model half-saw can join the product.
    mask[p >= 0.1] = cv2.GC_PR_BGD
    scenery = _scenery(p, frame_edges)
    if scenery is not None:
        grown = cv2.dilate(scenery.astype(np.uint8), kernel, iterations=2) > 0
        p = np.where(grown, 0.0, p).astype(np.float32)
        sure_fg &= ~grown
        mask[grown] = cv2.GC_BGD
    post = _colour_posterior(small, p, near)
    mask[(p >= SEED_PROB) & (post >= 0.5)] = cv2.GC_PR_FGD
    mask[(p >= BAND_PROB) & (post >= BAND_POST)] = cv2.GC_PR_FGD
    mask[sure_fg & (post >= SURE_POST)] = cv2.GC_FGD
    seeded = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if not seeded.any() or (mask == cv2.GC_BGD).sum() < 64:
        hard = p >= SALIENT
    else:
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        cv2.setRNGSeed(0)
        cv2.grabCut(bgr, mask, (0, 0, gw, gh), bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
        hard = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        # Background seen through an opening the model filled (a ring's): a thick
        # region inside the product whose colour is the background's.
        smooth = _box(post, max(1, round(SMOOTH_UNITS * unit)))
        alien = (hard & (smooth < DROP_POST)).astype(np.uint8)
        blob = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (OPEN_UNITS * unit + 1,) * 2)
        hard &= ~(cv2.morphologyEx(alien, cv2.MORPH_OPEN, blob) > 0)
    hard = _keep_salient_parts(hard, p, frame_edges)

    # Soft edges at the working size: the mask scaled up, then a guided filter on the
    # photo's grey levels snaps it to the outline.
    up = cv2.resize(hard.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1.0 / 255.0)
    radius = max(2, round(2 / factor))
    alpha = guided_filter(grey, np.asarray(up, np.float32), radius, 1e-3)
    # Stretch so nearly clear or nearly solid pixels become exactly 0 or 1.
    return np.clip((alpha - 0.1) / 0.8, 0.0, 1.0).astype(np.float32)


def _scenery(p: FloatArray, frame_edges: tuple[bool, bool, bool, bool]) -> BoolArray | None:
    """Salient parts of the map cut by the frame (a person, a tripod, the table under a
    cup) when a whole salient object stands apart from them: that one is the product,
    they are scenery. None when there is no such object."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (p >= SALIENT).astype(np.uint8), connectivity=8
    )
    if count <= 2:
        return None
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    sums = np.bincount(labels.ravel(), weights=p.ravel(), minlength=count)
    mean_prob = sums / np.maximum(areas, 1.0)
    touching = _touches_frame(stats, p.shape, frame_edges)
    if not touching.any():
        return None
    # A fragment of salient texture is not a product standing apart.
    whole = ~touching & (mean_prob >= 0.6) & (areas >= 0.3 * areas[touching].max())
    whole[0] = False
    if not whole.any():
        return None
    return np.asarray(touching[labels])


def _touches_frame(
    stats: NDArray[Any], shape: tuple[int, ...], frame_edges: tuple[bool, bool, bool, bool]
) -> BoolArray:
    """Per component of ``cv2.connectedComponentsWithStats``, whether it reaches an edge
    of the frame (``frame_edges``: which of the array's top, bottom, left and right
    edges are the frame's); never the background label 0."""
    h, w = shape[:2]
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right = x + stats[:, cv2.CC_STAT_WIDTH]
    bottom = y + stats[:, cv2.CC_STAT_HEIGHT]
    at_top, at_bottom, at_left, at_right = frame_edges
    touching = (
        ((y == 0) & at_top)
        | ((bottom == h) & at_bottom)
        | ((x == 0) & at_left)
        | ((right == w) & at_right)
    )
    touching[0] = False
    return np.asarray(touching)


def _colour_posterior(small: NDArray[np.uint8], p: FloatArray, near: BoolArray) -> FloatArray:
    """Per pixel, the probability that its colour is the product's rather than the
    nearby background's, from colour histograms (16 levels a channel).

    The background's histogram counts the clear pixels around the outline; the
    product's counts pixels by the map's confidence, re-weighted a few rounds by its
    own posterior, so background the model took in (a ring's opening, the gaps between
    a chair's slats) stops teaching it, while a thin part the model saw only faintly
    still counts if its colour is the product's.
    """
    levels = 16
    q = (small // (256 // levels)).astype(np.int32)
    index = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]
    fg_w = np.clip((p - 0.3) / 0.4, 0.0, 1.0)
    bg_w = ((p < 0.3) & near).astype(np.float32)
    if bg_w.sum() < 64:
        bg_w = (p < 0.3).astype(np.float32)
    n = levels**3
    flat = index.ravel()
    hb = np.bincount(flat, weights=bg_w.ravel(), minlength=n)
    hb = (hb + 0.1) / (hb.sum() + 0.1 * n)
    ratio = np.ones(n)
    for _ in range(POSTERIOR_ROUNDS):
        hf = np.bincount(flat, weights=(fg_w * ratio[index]).ravel(), minlength=n)
        hf = (hf + 0.1) / (hf.sum() + 0.1 * n)
        ratio = hf / (hf + hb)
    return ratio[index].astype(np.float32)


def _keep_salient_parts(
    hard: BoolArray, prob: FloatArray, frame_edges: tuple[bool, bool, bool, bool]
) -> BoolArray:
    """Drop components the model does not see as product, and fill small pinholes."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        hard.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return hard
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    sums = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=count)
    mean_prob = sums / np.maximum(areas, 1.0)
    keep = (mean_prob >= 0.35) & (areas >= 0.01 * areas[1:].max())
    keep[0] = False
    # Something else salient cut by the frame (a person, a table's cup, a tripod) is
    # scenery when a whole salient object stands apart from it: that one is the product.
    h, w = hard.shape
    touching = _touches_frame(stats, (h, w), frame_edges)
    whole = keep & ~touching & (mean_prob >= 0.6) & (areas >= 0.003 * h * w)
    if whole.any():
        keep &= ~touching
    kept = keep[labels]
    holes = _enclosed(kept)
    _, hole_labels, hole_stats, _ = cv2.connectedComponentsWithStats(
        holes.astype(np.uint8), connectivity=4
    )
    small = hole_stats[:, cv2.CC_STAT_AREA] < 0.002 * max(1, int(kept.sum()))
    small[0] = False
    return np.asarray(kept | small[hole_labels])


def decontaminate(rgb: NDArray[np.uint8], alpha: FloatArray) -> NDArray[np.uint8]:
    """Un-mix the local background from semi-transparent edge pixels.

    The background behind an edge pixel is the mean of nearby clear pixels, the
    product's colour the mean of nearby solid ones (normalised box filters); the pixel
    is then ``a F + (1 - a) B`` solved for F, leaning on the product's mean where
    alpha is small and the division would amplify noise.
    """
    edge = (alpha > 0.02) & (alpha < 0.98)
    if not edge.any():
        return rgb.copy()
    h, w = alpha.shape
    radius = max(3, round(min(h, w) / 100))
    # The filters only matter within ``radius`` of an edge pixel: work on the edges'
    # box grown by the radius (the same values; a small product's edges cover a small
    # part of the frame).
    rows, cols = np.nonzero(edge.any(axis=1))[0], np.nonzero(edge.any(axis=0))[0]
    top, bottom = max(0, rows[0] - radius - 1), min(h, rows[-1] + radius + 2)
    left, right = max(0, cols[0] - radius - 1), min(w, cols[-1] + radius + 2)
    out = rgb.copy()
    out[top:bottom, left:right] = _unmix(
        rgb[top:bottom, left:right], alpha[top:bottom, left:right], radius
    )
    return out


def _unmix(rgb: NDArray[np.uint8], alpha: FloatArray, radius: int) -> NDArray[np.uint8]:
    edge = (alpha > 0.02) & (alpha < 0.98)
    colour = rgb.astype(np.float32)
    clear = (alpha <= 0.02).astype(np.float32)
    solid = (alpha >= 0.98).astype(np.float32)
    weight_b = _box(clear, radius)
    weight_f = _box(solid, radius)
    out = rgb.copy()
    ys, xs = np.nonzero(edge)
    a = alpha[ys, xs][:, None]
    background = (
        np.asarray(cv2.boxFilter(colour * clear[..., None], -1, (2 * radius + 1,) * 2))[ys, xs]
        / np.maximum(weight_b[ys, xs], 1e-6)[:, None]
    )
    foreground = (
        np.asarray(cv2.boxFilter(colour * solid[..., None], -1, (2 * radius + 1,) * 2))[ys, xs]
        / np.maximum(weight_f[ys, xs], 1e-6)[:, None]
    )
    has_b = (weight_b[ys, xs] > 1e-3)[:, None]
    has_f = (weight_f[ys, xs] > 1e-3)[:, None]
    pixel = colour[ys, xs]
    unmixed = background + (pixel - background) / np.maximum(a, 0.15)
    unmixed = np.where(has_b, unmixed, pixel)
    blended = a * unmixed + (1.0 - a) * foreground
    fg = np.where(has_f, blended, unmixed)
    out[ys, xs] = np.clip(np.rint(fg), 0, 255).astype(np.uint8)
    return out
