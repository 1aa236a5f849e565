"""Input normalisation: any image Pillow opens to 8-bit 'RGB', or 'RGBA' when it
has transparency of its own (EXIF orientation applied, high bit depths scaled)."""

from __future__ import annotations

from typing import Final

import numpy as np
from PIL import Image, ImageOps

from jobs.engines.local.errors import EngineError

# Fraction of clearly transparent pixels for an alpha channel to count as a cut-out.
MEANINGFUL_ALPHA_FRACTION: Final = 0.001


def _apply_orientation(image: Image.Image) -> Image.Image:
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        # A broken EXIF block must not sink the job: keep the pixels as stored.
        return image
    if orientation in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def _high_bit_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale to 8-bit RGB; Pillow would clip at 255 instead."""
    # float32 is exact for 16-bit levels, and 8-bit output needs no more.
    grey = np.asarray(image).astype(np.float32)
    if image.mode == "F":
        np.nan_to_num(grey, copy=False)
        if grey.size and float(grey.max()) <= 1.0:
            grey *= 255.0
    elif grey.size and grey.max() > 255:
        grey *= 255.0 / 65535.0
    np.rint(grey, out=grey)
    np.clip(grey, 0, 255, out=grey)
    return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")


def _normalise(image: Image.Image) -> Image.Image:
    """8-bit 'RGB', or 'RGBA' when the input has transparency of its own."""
    image = _apply_orientation(image)
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode == "P":
        palette = image.palette
        has_alpha = "transparency" in image.info or (palette is not None and palette.mode == "RGBA")
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode in ("LA", "La", "PA", "RGBa"):
        return image.convert("RGBA")
    if mode.startswith("I") or mode == "F":
        return _high_bit_to_rgb(image)
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise EngineError(
            "unsupported_image", f"Images in mode {mode!r} are not supported."
        ) from exc


def _has_meaningful_alpha(image: Image.Image) -> bool:
    alpha = np.asarray(image.getchannel("A"))
    return bool((alpha < 128).mean() >= MEANINGFUL_ALPHA_FRACTION)
