"""The local engine's array primitives, which OpenCV computes, against plain definitions.

Each primitive is checked on small random inputs against a slow, obvious NumPy
version of what the engine relies on (windows clipped at the image edges,
4- or 8-connectivity, growth by a bounded number of steps).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from skimage.color import rgb2lab

from jobs.engines.local.arrays import (
    _components,
    _dilate,
    _erode,
    _grow,
    _local_means,
    _smooth,
    _where,
    _window_max,
)
from jobs.engines.local.colour import _u8_to_lab

Mask = NDArray[np.bool_]


def _random_mask(seed: int, shape: tuple[int, int] = (23, 31), p: float = 0.3) -> Mask:
    return np.random.default_rng(seed).random(shape) < p


def _window(shape: tuple[int, int], y: int, x: int, radius: int) -> tuple[slice, slice]:
    h, w = shape
    return (
        slice(max(0, y - radius), min(h, y + radius + 1)),
        slice(max(0, x - radius), min(w, x + radius + 1)),
    )


def test_opencv_runs_on_the_calling_thread_only() -> None:
    assert cv2.getNumThreads() == 1


def test_lab_conversion_matches_scikit_image_within_a_few_hundredths() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, :] = np.linspace(0, 255, 64).astype(np.uint8)[:, None]  # greys, white and black
    expected = rgb2lab(rgb)  # D65, sRGB curve
    lab = _u8_to_lab(rgb)
    assert lab.shape == (64, 64, 3)
    assert float(np.abs(lab - expected).max()) < 0.05


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_dilation_and_erosion_clip_their_window_at_the_image_edges(radius: int) -> None:
    mask = _random_mask(radius, p=0.15)
    dilated, eroded = _dilate(mask, radius), _erode(~mask, radius)
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            window = _window(mask.shape, y, x, radius)
            assert dilated[y, x] == mask[window].any()
            assert eroded[y, x] == (~mask)[window].all()


def test_the_window_maximum_around_chosen_points_is_clipped_at_the_edges() -> None:
    values = np.random.default_rng(1).random((20, 27), dtype=np.float32)
    ys, xs = _where(_random_mask(2, values.shape, p=0.1))
    got = _window_max(values, ys, xs, 3)
    want = [values[_window(values.shape, y, x, 3)].max() for y, x in zip(ys, xs, strict=True)]
    assert np.array_equal(got, np.asarray(want, dtype=np.float32))


@pytest.mark.parametrize("diagonal", [False, True])
def test_components_join_diagonal_neighbours_only_when_asked(diagonal: bool) -> None:
    mask = np.zeros((5, 6), dtype=np.bool_)
    mask[1, 1] = mask[2, 2] = True  # touching by a corner
    mask[4, 5] = True  # on the border, alone
    parts = _components(mask, diagonal=diagonal)
    assert parts.count == (2 if diagonal else 3)
    assert sorted(parts.sizes().tolist()) == ([1.0, 2.0] if diagonal else [1.0, 1.0, 1.0])
    on_border = parts.paint(parts.touching_border())
    assert on_border.sum() == 1 and on_border[4, 5]
    values = np.arange(30, dtype=np.float32).reshape(5, 6)
    assert sorted(parts.sums(values).tolist()) == sorted(
        [float(values[parts.paint(np.arange(parts.count) == k)].sum()) for k in range(parts.count)]
    )


def test_growth_stops_after_the_given_number_of_steps_and_at_disallowed_pixels() -> None:
    allowed = np.ones((7, 12), dtype=np.bool_)
    allowed[:, 6] = False  # a wall
    seed = np.zeros_like(allowed)
    seed[3, 0] = True
    grown = _grow(seed, allowed, 3)
    ys, xs = np.nonzero(grown)
    # Manhattan distance from the seed: 4-connected steps, never past the wall.
    assert set(zip(ys.tolist(), xs.tolist(), strict=True)) == {
        (y, x) for y in range(7) for x in range(6) if abs(y - 3) + x <= 3
    }
    assert not _grow(seed, allowed, 100)[:, 6:].any()


def test_window_means_count_only_the_masked_pixels_inside_the_image() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (18, 25, 3), dtype=np.uint8)
    weight = _random_mask(4, (18, 25), p=0.5)
    ys, xs = np.array([0, 5, 17, 9]), np.array([0, 12, 24, 3])
    [(means, counts)] = _local_means(rgb, (weight,), ys, xs, 4)
    for k, (y, x) in enumerate(zip(ys, xs, strict=True)):
        window = _window(weight.shape, int(y), int(x), 4)
        chosen = rgb[window][weight[window]]
        assert counts[k] == len(chosen)
        assert np.allclose(means[k], chosen.mean(axis=0), atol=1e-3)


def test_light_smoothing_is_the_three_by_three_binomial_kernel() -> None:
    rgb = np.random.default_rng(5).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    padded = np.pad(rgb.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    kernel = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    want = sum(
        kernel[dy, dx] * padded[dy : dy + 9, dx : dx + 11] for dy in range(3) for dx in range(3)
    )
    assert np.abs(_smooth(rgb, 0.9).astype(np.float64) - want).max() <= 0.5 + 1e-9
