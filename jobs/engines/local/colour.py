"""Colour: 8-bit sRGB to CIE Lab (D65) as float32, by OpenCV."""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from jobs.engines.local.arrays import FloatArray, _row_strips


def _srgb_to_linear_lut() -> FloatArray:
    c = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


# The exact sRGB curve, as a table over the 256 levels. OpenCV's own sRGB path
# (COLOR_RGB2Lab on floats) approximates the curve with a spline, off by up to
# 0.5 Lab units; linearised here, its linear-RGB path stays within 0.03 of the
# textbook conversion (D65 white, CIE's epsilon and kappa).
_LINEAR_LUT: Final = _srgb_to_linear_lut()


def _u8_to_lab(rgb: NDArray[np.uint8]) -> FloatArray:
    """CIE Lab (D65) of 8-bit sRGB pixels, as float32 (H, W, 3): L in [0, 100]."""
    h, w, _ = rgb.shape
    lab = np.empty((h, w, 3), dtype=np.float32)
    # Strip by strip, the linear-light temporary stays small and in the CPU's
    # cache (OpenCV would copy a whole-image input converted in place).
    for rows in _row_strips(h, w):
        linear = cv2.LUT(np.ascontiguousarray(rgb[rows]), _LINEAR_LUT)
        cv2.cvtColor(linear, cv2.COLOR_LRGB2Lab, dst=lab[rows])
    return lab
