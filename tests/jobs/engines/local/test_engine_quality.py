"""The local engine's cut-outs against exact masks, over the whole quality set.

The set (`jobs.samples.quality_set`) is 44 synthetic product photos: mugs with handles,
a lamp with a thin stem, white on white, dark on dark, soft shadows, noisy, gradient and
coloured backdrops, landscape and portrait frames, lossless and JPEG at quality 80 and 70.
The score is the intersection over union of the engine's alpha (>= 50%) with the mask.
"""

from __future__ import annotations

import numpy as np

from jobs.engines.local import remove_background
from jobs.samples import SAMPLE_NAMES, quality_set


def _iou(alpha: np.ndarray, mask: np.ndarray) -> float:
    union = np.logical_or(alpha, mask).sum()
    return float(np.logical_and(alpha, mask).sum() / union) if union else 1.0


def test_the_quality_set_has_at_least_40_photos_of_every_scene() -> None:
    cases = quality_set()
    assert len(cases) >= 40
    assert {case.name for case in cases} == set(SAMPLE_NAMES)
    assert len({case.label for case in cases}) == len(cases)
    assert any(case.jpeg_quality for case in cases)
    assert any(case.width != case.height for case in cases)


def test_cut_outs_match_the_exact_masks_over_the_quality_set() -> None:
    scores: dict[str, float] = {}
    for case in quality_set():
        image, mask = case.render()
        alpha = np.asarray(remove_background(image))[..., 3] >= 128
        scores[case.label] = _iou(alpha, mask)
    worst = sorted(scores.items(), key=lambda item: item[1])[:5]
    report = ", ".join(f"{label}={score:.4f}" for label, score in worst)
    mean = sum(scores.values()) / len(scores)
    assert mean >= 0.95, f"mean IoU {mean:.4f}; worst: {report}"
    assert min(scores.values()) >= 0.85, f"worst: {report}"
