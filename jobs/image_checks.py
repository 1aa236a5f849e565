"""Whether a decoded photo has anything to work on: big enough, and not blank.

The submission (`images.inspect_image` with ``content=True``) refuses such a photo before
any job exists. The local engine shares the size rule (`too_small`) and the blank message,
for a photo that still reaches it (a large PNG is not decoded at submission, say): it finds
a blank photo when its cut-out comes back empty. Pure: Pillow and numpy only, no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image

# The shortest side a photo may have: below it there is no product to cut out, and the
# local engine's filters have nothing to stand on.
MIN_SIDE: Final = 16

# Alpha above which a pixel is visible: the product of a cut-out (the packshot's crop
# and the scenes' product layer count from it too).
VISIBLE_ALPHA: Final = 8

# A photo is blank when, brought down to at most this many pixels on its longest side
# (box averages, so sensor and JPEG noise cancel out), every channel stays within
# BLANK_SPREAD levels: one flat colour. Any real product, even a white mug on white,
# spreads wider than that at its outline and shadow.
_BLANK_SIDE: Final = 128
BLANK_SPREAD: Final = 10

BLANK_MESSAGE: Final = "No product could be found in the image: it looks blank."


@dataclass(frozen=True)
class Problem:
    """Why a photo can't be worked on: a stable ``code`` and a ``message`` for the shop."""

    code: str
    message: str


def too_small(width: int, height: int) -> Problem | None:
    """A problem when either side is under `MIN_SIDE` pixels."""
    if width >= MIN_SIDE and height >= MIN_SIDE:
        return None
    return Problem(
        "image_too_small",
        f"The image is too small to process: {width} by {height} pixels; a photo needs "
        f"at least {MIN_SIDE} pixels on each side.",
    )


def looks_blank(image: Image.Image) -> bool:
    """Whether the photo shows nothing: fully transparent, or one flat colour.

    A photo with transparency of its own is a cut-out: its alpha is the product, so it
    is blank only when no pixel is visible (a white product on transparency is not).
    """
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
        if int(alpha.max()) <= VISIBLE_ALPHA:
            return True
        if int(alpha.min()) < 128:
            return False
    high_bit = image.mode.startswith("I") or image.mode == "F"
    # 16-bit and float greyscale keep their levels: converted to RGB they would clip at 255
    # and a photo would look flat white.
    work = image.convert("F" if high_bit else "RGB") if image.mode not in ("RGB", "F") else image
    longest = max(work.size)
    if longest > _BLANK_SIDE:
        factor = -(-longest // _BLANK_SIDE)
        work = work.reduce(factor)
    pixels = np.asarray(work, dtype=np.float64).reshape(work.size[0] * work.size[1], -1)
    spread = float((pixels.max(axis=0) - pixels.min(axis=0)).max())
    if high_bit:
        top = float(pixels.max())
        # On the 8-bit scale: 16-bit levels, or a float image in [0, 1].
        spread *= 255.0 / (65535.0 if top > 255.0 else 1.0 if top <= 1.0 else 255.0)
    return spread <= BLANK_SPREAD
