"""Photos tests submit that the submission's checks take but the local engine can't use."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def backdrop_only_png(size: int = 300) -> bytes:
    """A backdrop with a soft fall-off of light and no product on it: not one flat colour,
    so the submission takes it (`image_checks.looks_blank`), but the local engine finds
    nothing on it and fails the job with `empty_image`."""
    column = np.linspace(215, 240, size).astype(np.uint8)
    pixels = np.repeat(np.repeat(column[:, None, None], size, axis=1), 3, axis=2)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()
