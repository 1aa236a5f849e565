"""The local engine's cut-outs against exact masks, over the three quality sets.

* synthetic (`jobs.samples.quality_set`): the eleven painted sample scenes (mugs with
  handles, a thin lamp stem, white on white, dark on dark, noisy, gradient and coloured
  backdrops) and six products added after the engine was tuned (a ring, a white mug on
  off-white, headphones, a wine glass, a watch on its strap, a chair); four variants each:
  landscape and portrait frames, lossless and JPEG at quality 80 and 70.
* real backgrounds (`jobs.quality_photos.real_background_set`): the same products
  composited on scikit-image's photographs, split into tuning photos and held-out photos
  that nothing may be tuned on.

The score is the intersection over union of the engine's alpha (>= 50%) with the mask;
the targets are issue 20's, printed per photo by `bench.local_engine_quality`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from jobs.engines.local import remove_background
from jobs.quality_photos import (
    HELD_OUT_PHOTOS,
    TUNING_PHOTOS,
    RealBackgroundCase,
    real_background_set,
)
from jobs.samples import (
    ALL_SAMPLE_NAMES,
    SAMPLE_NAMES,
    UNSEEN_SAMPLE_NAMES,
    QualityCase,
    quality_set,
)

MIN_IOU = 0.85


def _iou(alpha: NDArray[np.bool_], mask: NDArray[np.bool_]) -> float:
    union = np.logical_or(alpha, mask).sum()
    return float(np.logical_and(alpha, mask).sum() / union) if union else 1.0


def _assert_targets(cases: Sequence[QualityCase | RealBackgroundCase], mean_target: float) -> None:
    scores: dict[str, float] = {}
    for case in cases:
        image, mask = case.render()
        alpha = np.asarray(remove_background(image).getchannel("A")) >= 128
        scores[case.label] = _iou(alpha, mask)
    worst = sorted(scores.items(), key=lambda item: item[1])[:5]
    report = ", ".join(f"{label}={score:.4f}" for label, score in worst)
    mean = sum(scores.values()) / len(scores)
    assert mean >= mean_target, f"mean IoU {mean:.4f} < {mean_target}; worst: {report}"
    assert min(scores.values()) >= MIN_IOU, f"a photo below {MIN_IOU}; worst: {report}"


def _touches_all_four_borders(mask: NDArray[np.bool_]) -> bool:
    return bool(mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any())


def test_the_synthetic_set_has_every_scene_and_every_unseen_product_in_four_variants() -> None:
    cases = quality_set()
    assert len(cases) == 4 * len(ALL_SAMPLE_NAMES) == 68
    assert {case.name for case in cases} == set(SAMPLE_NAMES) | set(UNSEEN_SAMPLE_NAMES)
    assert {"ring", "white-mug-off-white"} <= set(UNSEEN_SAMPLE_NAMES)
    assert not set(UNSEEN_SAMPLE_NAMES) & set(SAMPLE_NAMES)
    assert [case.unseen for case in cases].count(True) == 4 * len(UNSEEN_SAMPLE_NAMES)
    assert len({case.label for case in cases}) == len(cases)
    assert any(case.jpeg_quality for case in cases)
    assert any(case.width != case.height for case in cases)


@pytest.mark.parametrize("name", UNSEEN_SAMPLE_NAMES)
def test_every_unseen_product_has_a_mask_inside_its_frame(name: str) -> None:
    case = next(case for case in quality_set() if case.name == name)
    image, mask = case.render()
    assert image.size == (case.width, case.height)
    assert mask.shape == (case.height, case.width)
    assert 0.02 < mask.mean() < 0.6
    assert not _touches_all_four_borders(mask)


def test_the_real_background_set_is_split_by_photo_into_tuning_and_held_out() -> None:
    everything = real_background_set()
    tuning = real_background_set("tuning")
    held_out = real_background_set("held_out")
    assert 40 <= len(everything) <= 60
    assert len(tuning) + len(held_out) == len(everything)
    assert {case.photo for case in tuning} == set(TUNING_PHOTOS)
    assert {case.photo for case in held_out} == set(HELD_OUT_PHOTOS)
    assert all(case.held_out for case in held_out) and not any(case.held_out for case in tuning)
    assert len({case.label for case in everything}) == len(everything)
    # Old and new products alike, lossless and JPEG, with and without a contact shadow.
    assert {case.name for case in everything} == set(ALL_SAMPLE_NAMES)
    assert {case.jpeg_quality for case in everything} == {None, 80, 70}
    assert {case.shadow for case in everything} == {True, False}
    with pytest.raises(ValueError, match="split"):
        real_background_set("everything")  # type: ignore[arg-type]


def test_every_real_background_photo_has_its_size_and_a_product_inside_the_frame() -> None:
    shapes: set[str] = set()
    for case in real_background_set():
        image, mask = case.render()
        assert image.mode == "RGB"
        assert image.size == (case.width, case.height), case.label
        assert 0.3e6 <= case.width * case.height <= 1.5e6, case.label
        assert mask.shape == (case.height, case.width), case.label
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        span = max((rows[-1] - rows[0] + 1) / case.height, (cols[-1] - cols[0] + 1) / case.width)
        assert 0.18 <= span <= 0.72, f"{case.label}: product spans {span:.2f} of the frame"
        assert not _touches_all_four_borders(mask), case.label
        shapes.add(
            "square"
            if case.width == case.height
            else "landscape"
            if case.width > case.height
            else "portrait"
        )
    assert shapes == {"square", "landscape", "portrait"}


def test_the_product_is_painted_over_the_photo_and_the_shadow_only_darkens_the_photo() -> None:
    case = next(case for case in real_background_set() if case.shadow and not case.jpeg_quality)
    plain = dataclasses.replace(case, shadow=False)
    shaded, mask = case.render()
    unshaded, same_mask = plain.render()
    assert np.array_equal(mask, same_mask)
    difference = np.asarray(shaded, np.int16) - np.asarray(unshaded, np.int16)
    outside = difference[~mask]
    assert outside.max() <= 1  # same noise, so only rounding: the shadow never brightens
    assert outside.min() < -20  # and it does darken the photo somewhere
    assert Image.fromarray(mask).getbbox() is not None


def test_cut_outs_match_the_exact_masks_over_the_synthetic_set() -> None:
    _assert_targets(quality_set(), 0.97)


# Issue 20 is open until these hold: strict, so the mark must go the day they pass.
_NOT_YET = pytest.mark.xfail(
    strict=True, reason="issue 20: the real-background targets are not reached yet"
)


@_NOT_YET
def test_cut_outs_match_the_exact_masks_on_the_tuning_photos() -> None:
    _assert_targets(real_background_set("tuning"), 0.95)


@_NOT_YET
def test_cut_outs_match_the_exact_masks_on_the_held_out_photos() -> None:
    _assert_targets(real_background_set("held_out"), 0.95)
