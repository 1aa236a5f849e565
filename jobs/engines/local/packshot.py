"""Packshots: the cut-out cropped to the product, scaled onto a square canvas with a
margin, over a flat colour or transparency; and the colours a caller may ask for.

Every packshot is ``size`` x ``size`` (2000 x 2000 for Bria's packshot, as its page
says), whatever the photo: the canvas never shrinks. The product's bounding box (its
pixels with alpha above ``BBOX_ALPHA_THRESHOLD``) is centred on the canvas, and its
longer side always spans ``1 - 2 * margin`` of the canvas: the same share for every
product, so a shop's listing lines up. The default margin, 0.075 of the canvas on each
side, makes that share 85 % (1700 px of 2000): the least Amazon's image rules ask a
product to fill, while leaving the clear band other marketplaces' thumbnails crop
into. A small product is enlarged to fill that span with Lanczos; :class:`Packshot`
says by how much, and ``Packshot.notice`` words it for the shop when the result will
look soft (enlarged more than ``SOFT_UPSCALE`` times).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from jobs import image_checks
from jobs.engines.local.errors import EngineError
from jobs.engines.local.matte import remove_background
from jobs.engines.local.normalise import _normalise

# Alpha above which a pixel counts as product when cropping a packshot.
BBOX_ALPHA_THRESHOLD: Final = image_checks.VISIBLE_ALPHA
# Enlarged up to 2x, each photo pixel covers at most 2 x 2 output pixels and Lanczos
# keeps edges and print crisp at full size; beyond that, the interpolated detail
# shows as softness when a marketplace zooms in. It also gives the shop a simple
# rule: the product at least half the span it gets in the packshot (850 px for 2000).
SOFT_UPSCALE: Final = 2.0
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


@dataclass(frozen=True)
class Packshot:
    """A packshot and how much its product was scaled to make it."""

    image: Image.Image
    # Output pixels per photo pixel of the product: above 1, the product was enlarged.
    upscale: float
    # The product's longer side in the photo, and on the packshot, in pixels.
    product_side: int
    target_side: int

    @property
    def soft(self) -> bool:
        return self.upscale > SOFT_UPSCALE

    @property
    def notice(self) -> str:
        """For the shop when the result will look soft; empty otherwise."""
        return self.soft_notice()

    def soft_notice(self, *, reduced_to: int | None = None) -> str:
        """For the shop when the result will look soft; empty otherwise.

        `reduced_to`: the longest side the photo was reduced to before the engine saw
        it (a large photo is worked on smaller): then the product's size in pixels says
        nothing to the shop, and its share of the photo does.
        """
        if not self.soft:
            return ""
        # A factor just over the threshold never reads as "2.0x".
        factor = max(round(self.upscale, 1), SOFT_UPSCALE + 0.1)
        side = self.image.width
        sharp = math.ceil(self.target_side / SOFT_UPSCALE)
        enlarged = f"{factor:.1f}x to fill the {side} x {side} packshot, so it may look soft."
        if reduced_to:
            share = math.ceil(100 * sharp / reduced_to)
            return (
                f"The product is small in the photo: large photos are worked on at "
                f"{reduced_to} px, where it is {self.product_side} px across: it was "
                f"enlarged {enlarged} A photo in which the product spans at least {share} % "
                "of the longest side gives a sharp result."
            )
        return (
            f"The photo is small: the product ({self.product_side} px across) was enlarged "
            f"{enlarged} A photo in which the product is at least {sharp} px across gives "
            "a sharp result."
        )


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


def product_box(alpha: NDArray[np.uint8]) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the pixels more than BBOX_ALPHA_THRESHOLD
    opaque; ``EngineError("empty_image")`` when there are none (nothing was cut out)."""
    solid = alpha > BBOX_ALPHA_THRESHOLD
    rows = np.flatnonzero(solid.any(axis=1))
    cols = np.flatnonzero(solid.any(axis=0))
    if rows.size == 0:
        raise EngineError("empty_image", image_checks.BLANK_MESSAGE)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def render_packshot(
    image: Image.Image,
    *,
    background_color: str = "#FFFFFF",
    size: int = 2000,
    margin: float = 0.075,
    remove_bg: bool = True,
) -> Packshot:
    """A ``size`` x ``size`` centred product shot on a flat colour (RGB) or
    transparency (RGBA), with the factor its product was scaled by."""
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

    product = cutout.crop(product_box(np.asarray(cutout.getchannel("A"))))
    pw, ph = product.size

    target = max(1, round(size * (1.0 - 2.0 * margin)))
    fit = target / max(pw, ph)
    # The longer side gets exactly `target`; the shorter one keeps the aspect ratio,
    # at least a pixel, so a thin strip stays a thin line and never disappears.
    new_w = target if pw >= ph else max(1, round(pw * fit))
    new_h = target if ph > pw else max(1, round(ph * fit))
    resized = (new_w, new_h) != (pw, ph)
    dest = ((size - new_w) // 2, (size - new_h) // 2)
    # Lanczos both ways: enlarging, its wider kernel keeps edges crisper than bicubic
    # (which matters most when the photo is small); shrinking, it keeps fine detail
    # from aliasing.
    resample = Image.Resampling.LANCZOS

    if color is None:
        if resized:
            product = _resize_premultiplied(product, (new_w, new_h))
        canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        canvas.alpha_composite(product, dest=dest)
        return Packshot(canvas, fit, max(pw, ph), target)
    # On a flat colour, compose first and resize after: resampling is linear and
    # the colour is constant, so this equals resizing the premultiplied cut-out
    # and compositing it, without resampling an alpha channel or converting to
    # and from premultiplied alpha on the large image (over twice as fast).
    flat = Image.new("RGB", product.size, color)
    flat.paste(product, (0, 0), product)
    if resized:
        flat = flat.resize((new_w, new_h), resample)
    canvas = Image.new("RGB", (size, size), color)
    canvas.paste(flat, dest)
    return Packshot(canvas, fit, max(pw, ph), target)


def _resize_premultiplied(product: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``product`` (RGBA) resized with its colour weighted by its alpha, in floating point.

    Resampling colour and alpha apart would mix the colour of transparent pixels (often
    black) into the soft edge: a dark fringe. Pillow premultiplies too, but in 8 bits,
    which leaves the edge's faint pixels up to 40 levels off once divided back; in
    float they keep the product's colour. Lanczos (OpenCV's 8 x 8 kernel) to enlarge;
    area averaging to shrink, which unlike OpenCV's Lanczos does not alias.
    """
    rgba = np.asarray(product, dtype=np.float32)
    rgba[..., :3] *= rgba[..., 3:4] * np.float32(1 / 255)
    enlarging = size[0] > product.width or size[1] > product.height
    interpolation = cv2.INTER_LANCZOS4 if enlarging else cv2.INTER_AREA
    out = np.asarray(cv2.resize(rgba, size, interpolation=interpolation), dtype=np.float32)
    np.clip(out, 0.0, 255.0, out=out)
    # Only the soft edge needs dividing back: opaque pixels are their own colour, and
    # pixels that round to transparent keep their (near zero) premultiplied colour.
    alpha = out[..., 3]
    ys, xs = np.nonzero((alpha >= 0.5) & (alpha < 254.5))
    scale = np.float32(255.0) / alpha[ys, xs]
    out[ys, xs, :3] = np.minimum(out[ys, xs, :3] * scale[:, None], np.float32(255.0))
    out += np.float32(0.5)
    return Image.fromarray(out.astype(np.uint8), "RGBA")


def encode_packshot(image: Image.Image, *, quality: int = 92) -> bytes:
    """A packshot's file: PNG when it is transparent, else JPEG at ``quality``.

    The JPEG keeps full-resolution colour (4:4:4): with the usual 4:2:0, the colour of
    each 16 x 16 block is averaged with the product's and spread back out, so white
    around the product decodes to 248-254 instead of 255 (and a flat blue beside a red
    product strays by up to 32 levels). At 4:4:4, every 8 x 8 block clear of the
    product decodes to the exact colour (white exactly 255; other colours within
    JPEG's rounding of 1 level).
    Without `optimize` (Huffman tables fitted to the image): on a 2000 x 2000 packshot
    it saves a fifth to a third of the bytes (about 240 to 195 KB) but takes 30 ms,
    more than the whole encoding, and a packshot has a time budget (bench.local_engine).
    """
    out = io.BytesIO()
    if image.mode == "RGBA":
        # Level 6 is zlib's default balance; `optimize` would triple the time for ~5 %.
        image.save(out, format="PNG", compress_level=6)
    else:
        image.convert("RGB").save(out, format="JPEG", quality=quality, subsampling=0)
    return out.getvalue()


def make_packshot(image: Image.Image, **options: Any) -> Image.Image:
    """The image of :func:`render_packshot` (same options), for callers that need only
    the picture."""
    return render_packshot(image, **options).image
