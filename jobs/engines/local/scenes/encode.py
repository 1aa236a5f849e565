"""A composite encoded in the job's format (`encode`): JPEG and WebP at the job's
quality, PNG lossless; any other format is refused with an error naming the field.
"""

from __future__ import annotations

import io

from PIL import Image

from jobs.engines.local.errors import EngineError


def encode(image: Image.Image, *, image_format: str, quality: int) -> bytes:
    """The image in the job's format: JPEG and WebP at ``quality``, PNG lossless."""
    out = io.BytesIO()
    fmt = image_format.lower()
    if fmt in ("jpeg", "jpg"):
        image.convert("RGB").save(out, format="JPEG", quality=quality, optimize=True)
    elif fmt == "webp":
        image.save(out, format="WEBP", quality=quality, method=4)
    elif fmt == "png":
        # Level 6 is zlib's default balance; `optimize` would triple the time for ~5 %.
        image.save(out, format="PNG", compress_level=6)
    else:
        raise EngineError(
            "invalid_format", f"image_format: {image_format!r} is not jpeg, png or webp."
        )
    return out.getvalue()
