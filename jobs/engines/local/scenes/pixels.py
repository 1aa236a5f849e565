"""Small image helpers shared by the scene modules: colours as float arrays, value and
fractal noise, arrays to and from Pillow images, a cheap upscale of smooth fields, and the
coefficients of Pillow's perspective transform. Nothing here knows about backdrops or
products.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

FloatArray = NDArray[np.float32]
RGB = tuple[int, int, int]


def _rgb(colour: RGB) -> FloatArray:
    return np.array(colour, dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> FloatArray:
    """Value noise in [0, 1] of ``size`` (w, h) with about ``cells`` cells across."""
    w, h = size
    gx = max(2, cells)
    gy = max(2, round(cells * h / max(w, 1)))
    grid = rng.random((gy + 1, gx + 1), dtype=np.float32)
    img = Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _fbm(rng: np.random.Generator, size: tuple[int, int], cells: int, octaves: int) -> FloatArray:
    """Fractal noise: octaves of value noise, each twice as fine and half as strong."""
    total = np.zeros((size[1], size[0]), np.float32)
    weight = 1.0
    norm = 0.0
    for octave in range(octaves):
        total += weight * _smooth_noise(rng, size, cells * 2**octave)
        norm += weight
        weight *= 0.5
    return total / norm


def _to_image(values: NDArray[np.floating[Any]]) -> Image.Image:
    return Image.fromarray(np.clip(values + 0.5, 0, 255).astype(np.uint8), "RGB")


def _upscale(image: Image.Image | NDArray[np.floating[Any]], size: tuple[int, int]) -> Image.Image:
    # Bilinear is enough for fields this smooth, at half bicubic's cost.
    small = image if isinstance(image, Image.Image) else _to_image(image)
    return small.resize(size, Image.Resampling.BILINEAR)


def _perspective_coefficients(
    dst: list[tuple[float, float]], src: list[tuple[float, float]]
) -> list[float]:
    """Pillow's PERSPECTIVE coefficients mapping output points ``dst`` to input ``src``."""
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    solution = np.linalg.solve(np.array(rows, np.float64), np.array(rhs, np.float64))
    return [float(c) for c in solution]
