"""Packshots: the cut-out cropped to the product, scaled onto a square canvas with a
margin, over a flat colour or transparency; and the colours a caller may ask for."""

from __future__ import annotations

import re
from typing import Final

import numpy as np
from PIL import Image

from jobs.engines.local.errors import EngineError
from jobs.engines.local.matte import remove_background
from jobs.engines.local.normalise import _normalise

# Alpha above which a pixel counts as product when cropping a packshot.
BBOX_ALPHA_THRESHOLD: Final = 8
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def parse_color(value: str) -> tuple[int, int, int] | None:
    """Parse "#RGB", "#RRGGBB" or "transparent" (returned as None)."""
    if not isinstance(value, str):
        raise EngineError("invalid_color", f"Colour must be text, not {type(value).__name__}.")
    text = value.strip()
    if text.lower() == "transparent":
        return None
    if not _HEX_COLOR.fullmatch(text):
        raise EngineError(
            "invalid_color",
            f"{value!r} is not a colour: use #RGB, #RRGGBB or 'transparent'.",
        )
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def make_packshot(
    image: Image.Image,
    *,
    background_color: str = "#FFFFFF",
    size: int = 2000,
    margin: float = 0.08,
    remove_bg: bool = True,
) -> Image.Image:
    """A square, centred product shot on a flat colour (RGB) or transparency (RGBA)."""
    color = parse_color(background_color)
    if not isinstance(size, int) or size < 16:
        raise EngineError("invalid_size", "The packshot size must be at least 16 pixels.")
    if not 0.0 <= margin < 0.5:
        raise EngineError("invalid_margin", "The margin must be between 0 and 0.5.")

    if remove_bg:
        cutout = remove_background(image)
    else:
        normalised = _normalise(image)
        cutout = normalised.convert("RGBA") if normalised.mode != "RGBA" else normalised

    alpha = np.asarray(cutout.getchannel("A"))
    rows = np.flatnonzero((alpha > BBOX_ALPHA_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((alpha > BBOX_ALPHA_THRESHOLD).any(axis=0))
    if rows.size == 0:
        raise EngineError("empty_image", "No product could be found in the image: it looks blank.")
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    product = cutout.crop(box)
    pw, ph = product.size

    usable = 1.0 - 2.0 * margin
    fit = size * usable / max(pw, ph)
    if fit > 2.0:
        # Small product: upscaling further would only show blur, so shrink the canvas.
        side = max(256, min(size, round(max(pw, ph) * 2.0 / usable)))
        fit = min(2.0, side * usable / max(pw, ph))
    else:
        side = size
    new_w, new_h = max(1, round(pw * fit)), max(1, round(ph * fit))
    resized = (new_w, new_h) != (pw, ph)
    dest = ((side - new_w) // 2, (side - new_h) // 2)
    # Enlarging, bicubic and Lanczos differ by under 0.1 level on average (PSNR
    # ~50 dB on the samples) and bicubic takes a third less time; shrinking
    # keeps Lanczos, whose wider kernel keeps fine detail from aliasing.
    resample = Image.Resampling.BICUBIC if fit > 1.0 else Image.Resampling.LANCZOS

    if color is None:
        if resized:
            product = product.resize((new_w, new_h), resample)
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        canvas.alpha_composite(product, dest=dest)
        return canvas
    # On a flat colour, compose first and resize after: resampling is linear and
    # the colour is constant, so this equals resizing the premultiplied cut-out
    # and compositing it, without resampling an alpha channel or converting to
    # and from premultiplied alpha on the large image (over twice as fast).
    flat = Image.new("RGB", product.size, color)
    flat.paste(product, (0, 0), product)
    if resized:
        flat = flat.resize((new_w, new_h), resample)
    canvas = Image.new("RGB", (side, side), color)
    canvas.paste(flat, dest)
    return canvas
