"""Checks for image bytes, whether fetched from a URL or uploaded.

Everything is decided from the bytes themselves, never from a file name or a
``Content-Type`` header: a GIF renamed ``photo.jpg`` is still a GIF and is refused.

Only JPEG, PNG and WebP are accepted. GIF is deliberately left out: product photos
are not GIFs, animated GIFs would silently lose all but one frame, and the 256
colour palette makes poor input for the image engines.

Pillow is only ever allowed to parse the allowed formats, and the pixel count is
checked from the header before any pixel is decoded, so a small file declaring a
gigantic canvas (a decompression bomb) is refused without allocating it.

Every failure is an :class:`ImageError` with a stable ``code`` and a ``message``
that can be shown to a shop owner as is.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from productstudio.errors import CodedError

__all__ = [
    "ALLOWED_FORMATS",
    "ImageError",
    "ImageInfo",
    "inspect_image",
    "open_image",
    "thumbnail_jpeg",
]

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})

_ORIENTATION_TAG = 0x0112
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk and its CRC
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # the ones that rotate by 90°

# Formats we can name in an error message without asking Pillow to parse them.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
)
# ISO media "ftyp" brands, as iPhones and newer Android phones write them.
_FTYP_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"mif1": "HEIF",
    b"avif": "AVIF",
}
_DISPLAY_NAMES = {"WEBP": "WebP"}


class ImageError(CodedError):
    """The bytes are not an acceptable image; ``message`` is for the shop owner."""


@dataclass(frozen=True)
class ImageInfo:
    """What we learnt about an accepted image.

    ``width`` and ``height`` are as displayed, i.e. after the EXIF orientation.
    """

    format: str
    width: int
    height: int
    byte_size: int
    sha256: str
    mime_type: str


def inspect_image(
    data: bytes,
    *,
    max_pixels: int = 50_000_000,
    allowed_formats: frozenset[str] = ALLOWED_FORMATS,
    decode: bool = True,
) -> ImageInfo:
    """Check that ``data`` is a complete image we accept and describe it.

    With ``decode=False`` the pixels are not decoded (a 2000 x 2000 PNG costs ~30 ms to
    decode): the headers are checked, and the file's completeness from its structure
    (PNG chunk checksums, JPEG's end marker, WebP's RIFF length). That is for images we
    only store, from a source we pay (Segmind's outputs); what a user sends is decoded.

    Raises :class:`ImageError` with code ``empty``, ``not_an_image``,
    ``format_not_allowed`` or ``too_many_pixels``.
    """
    with _opened(data, max_pixels, allowed_formats) as image:
        image_format = _format_of(image)
        width, height = image.size
        if decode:
            _decode(image)
        else:
            _check_complete(image_format, data)
        if _orientation(image, loaded=decode) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
    return ImageInfo(
        format=image_format,
        width=width,
        height=height,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        mime_type=Image.MIME.get(image_format, "application/octet-stream"),
    )


def open_image(data: bytes, *, max_pixels: int = 50_000_000) -> Image.Image:
    """Open ``data`` with the same checks as :func:`inspect_image`, upright and loaded.

    The EXIF orientation is applied, so the result looks as the photo was shot.
    """
    with _opened(data, max_pixels, ALLOWED_FORMATS) as image:
        _decode(image)
        try:
            upright = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError) as exc:
            raise _not_an_image() from exc
        upright.load()
        return upright


@contextmanager
def _opened(data: bytes, max_pixels: int, allowed_formats: frozenset[str]) -> Iterator[Image.Image]:
    """Open ``data`` (headers only) and enforce the format and pixel limits."""
    if not data:
        raise ImageError("empty", "The file is empty.")
    # Pillow's own bomb check warns, then raises at twice its limit; both must stop us.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Only the allowed plugins get to parse untrusted bytes.
            image = Image.open(io.BytesIO(data), formats=sorted(allowed_formats))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(max_pixels) from None
        except UnidentifiedImageError:
            raise _unidentified(data, allowed_formats) from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise _not_an_image() from exc
        with image:
            if _format_of(image) not in allowed_formats:
                raise _format_not_allowed(_format_of(image), allowed_formats)
            width, height = image.size
            if width * height > max_pixels:
                raise _too_many_pixels(max_pixels)
            yield image


def _format_of(image: Image.Image) -> str:
    # Cameras write "MPO" (a JPEG with extra pictures appended); the first picture is a
    # plain JPEG, which is all anyone downstream reads.
    return "JPEG" if image.format == "MPO" else str(image.format)


def _decode(image: Image.Image) -> None:
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Truncated or corrupt data ends up here ("image file is truncated").
        raise _not_an_image() from exc


def _check_complete(image_format: str, data: bytes) -> None:
    if image_format == "PNG":
        try:
            # verify() must come straight after open; `image` has been read from since.
            with Image.open(io.BytesIO(data), formats=["PNG"]) as fresh:
                fresh.verify()  # every chunk's CRC, up to IEND
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise _not_an_image() from exc
        if not data.endswith(_PNG_END):
            raise _not_an_image()
    elif image_format == "JPEG":
        if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
            raise _not_an_image()
    elif image_format == "WEBP" and (
        len(data) < 12 or int.from_bytes(data[4:8], "little") + 8 > len(data)
    ):
        raise _not_an_image()


def _orientation(image: Image.Image, *, loaded: bool = True) -> int:
    if not loaded and image.format == "PNG" and "exif" not in image.info:
        # A PNG's EXIF may follow its pixels, and getexif() would decode them all to
        # find it; one that comes before them (as the spec asks) is in `info` already.
        return 1
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except (OSError, ValueError, SyntaxError, TypeError):
        # A broken EXIF block should not sink an otherwise fine photo.
        return 1


def _unidentified(data: bytes, allowed_formats: frozenset[str]) -> ImageError:
    name = _sniff(data)
    if name is not None and name not in allowed_formats:
        return _format_not_allowed(name, allowed_formats)
    return _not_an_image()


def _sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12])
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def _not_an_image() -> ImageError:
    return ImageError("not_an_image", "This file isn't a picture we can read, or it is damaged.")


def _format_not_allowed(name: str, allowed_formats: frozenset[str]) -> ImageError:
    message = f"{_DISPLAY_NAMES.get(name, name)} images aren't supported."
    allowed = sorted(_DISPLAY_NAMES.get(f, f) for f in allowed_formats)
    if allowed:
        listed = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if allowed[1:] else allowed)
        message += f" Please use a {listed} image."
    return ImageError("format_not_allowed", message)


def _too_many_pixels(max_pixels: int) -> ImageError:
    megapixels = max_pixels / 1_000_000
    return ImageError(
        "too_many_pixels",
        f"The image has too many pixels (the limit is {megapixels:g} megapixels).",
    )


def upright_bytes(data: bytes, *, max_pixels: int = 50_000_000) -> bytes:
    """The image with its EXIF orientation applied, in its own format; `data` if upright.

    Stored inputs are upright, so Segmind and the local engine see what the shop sees,
    whether or not they read EXIF themselves.
    """
    with _opened(data, max_pixels, ALLOWED_FORMATS) as image:
        if _orientation(image) in (1, 0):
            return data
        fmt = _format_of(image)
    upright = open_image(data, max_pixels=max_pixels)
    exif = upright.getexif()
    exif.pop(_ORIENTATION_TAG, None)
    out = io.BytesIO()
    options: dict[str, object] = {"exif": exif.tobytes()}
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0)
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
    elif fmt == "WEBP":
        options.update(quality=95)
    upright.save(out, format=fmt, **options)
    return out.getvalue()


THUMBNAIL_SIDE = 480
# Light enough for tiles, and the JPEG stays a few tens of kilobytes.
THUMBNAIL_QUALITY = 80


def thumbnail_jpeg(
    data: bytes, *, longest_side: int = THUMBNAIL_SIDE, max_pixels: int = 50_000_000
) -> bytes:
    """A small upright JPEG of ``data`` (at most ``longest_side`` on its longest side),
    transparency laid on white, for galleries that should never send full images.

    Made to be cheap, as every stored image gets one: a JPEG is decoded at a reduced
    scale (``draft``), and any image is first shrunk by an integer factor (a box
    average) before the last, small resampling.
    """
    with _opened(data, max_pixels, ALLOWED_FORMATS) as image:
        width, height = image.size
        scale = min(1.0, longest_side / max(width, height))
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        if _format_of(image) == "JPEG":
            # The DCT scales down by 1/2..1/8 while decoding: most pixels are never made.
            # Either orientation fits: the EXIF rotation is applied after.
            side = max(target)
            image.draft("RGB", (side, side) if width == height else target)
        _decode(image)
        try:
            upright = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError) as exc:
            raise _not_an_image() from exc
    if upright.mode not in ("RGB", "RGBA", "L", "LA"):
        upright = upright.convert("RGBA" if _has_alpha(upright) else "RGB")
    upright.thumbnail((longest_side, longest_side), Image.Resampling.BILINEAR, reducing_gap=1.0)
    if upright.mode in ("RGBA", "LA"):
        rgba = upright.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        upright = Image.alpha_composite(white, rgba)
    if upright.mode != "RGB":
        upright = upright.convert("RGB")
    out = io.BytesIO()
    upright.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
