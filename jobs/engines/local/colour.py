"""Colour: 8-bit sRGB to CIE Lab (D65), as float32 planes, strip by strip."""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from jobs.engines.local.arrays import FloatArray, _row_strips


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
