"""Refinement of the model's map: GrabCut on cluttered backgrounds, driven by
hand-made maps (no model), and the colour matte's corrections on a plain backdrop."""

from __future__ import annotations

import io

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from jobs.engines.local import remove_background
from jobs.engines.local.refine import grabcut_alpha
from jobs.samples import render_sample


def _textured(h: int, w: int, seed: int = 3) -> NDArray[np.uint8]:
    """A brownish, blotchy background, textured at several scales like brick or wood."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, (h // 8, w // 8)).astype(np.float32)
    blotches = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0.0, 6.0, (h, w)).astype(np.float32)
    base = np.array([120.0, 80.0, 65.0], np.float32)
    rgb = base + (12.0 * blotches + grain)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _map(mask: NDArray[np.bool_], value: float, size: tuple[int, int]) -> NDArray[np.float32]:
    """A coarse, blurred map at ``size`` (w, h) from a mask, as the model would give."""
    small = cv2.resize(mask.astype(np.float32) * value, size, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(small, (5, 5), 1.0), np.float32)


def test_background_seen_through_an_opening_the_model_filled_is_left_out() -> None:
    h, w = 600, 600
    rgb = _textured(h, w)
    ring = np.zeros((h, w), np.uint8)
    cv2.ellipse(ring, (300, 300), (90, 130), 0, 0, 360, 1, thickness=14)
    rgb[ring > 0] = (215, 170, 60)
    disk = np.zeros((h, w), np.uint8)
    cv2.ellipse(disk, (300, 300), (97, 137), 0, 0, 360, 1, thickness=-1)
    # The model fills the opening as confidently as the ring itself.
    prob = _map(disk > 0, 0.98, (224, 224))

    alpha = grabcut_alpha(rgb, prob)

    assert alpha[ring > 0].mean() > 0.9
    opening = np.zeros((h, w), np.uint8)
    cv2.ellipse(opening, (300, 300), (60, 100), 0, 0, 360, 1, thickness=-1)
    assert alpha[opening > 0].mean() < 0.1


def test_a_thin_stem_the_model_sees_only_faintly_stays_with_the_product() -> None:
    h, w = 480, 640
    rgb = _textured(h, w, seed=5)
    shade = np.zeros((h, w), bool)
    shade[100:180, 260:380] = True
    stem = np.zeros((h, w), bool)
    stem[180:400, 316:324] = True
    rgb[shade | stem] = (60, 60, 70)
    prob = np.maximum(_map(shade, 0.8, (288, 224)), _map(stem, 0.6, (288, 224)))

    alpha = grabcut_alpha(rgb, prob)

    assert alpha[shade].mean() > 0.9
    assert alpha[190:390, 318:322].mean() > 0.8
    assert alpha[300:320, 100:200].max() == 0.0


def test_the_white_mugs_cast_shadow_under_its_base_is_left_out_of_the_cut_out() -> None:
    # The colour matte's flood of shadow stops short under a pale base, and the
    # model counts the shadow as part of the mug: nothing below the mug may stay.
    photo, mask = render_sample("white-mug-off-white", width=800, height=800)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    jpeg = Image.open(io.BytesIO(buffer.getvalue()))

    alpha = np.asarray(remove_background(jpeg))[..., 3]

    bottom = int(np.nonzero(mask.any(axis=1))[0].max())
    assert int((alpha[bottom + 1 :] >= 128).sum()) == 0
    # The mug's body (which the model restores where the matte lost it) stays.
    assert (alpha[mask] >= 128).mean() > 0.97
