"""Checks for image bytes, whether fetched from a URL or uploaded.

Everything is decided from the bytes themselves, never from a file name or a
``Content-Type`` header: a GIF renamed ``photo.jpg`` is still a GIF and is refused.

Only JPEG, PNG and WebP are accepted. GIF is deliberately left out: product photos
are not GIFs, animated GIFs would silently lose all but one frame, and the 256
colour palette makes poor input for the image engines.

Pillow is only ever allowed to parse the allowed formats, and the pixel count is
checked from the header before any pixel is decoded, so a small file declaring a
gigantic canvas (a decompression bomb) is refused without allocating it.

Memory stays bounded per image. An image over ``large_pixels`` ("large") is never
decoded in full where it is accepted: its integrity is checked from its structure and a
bounded decode (a JPEG at 1/8 scale, which still reads all its data; a PNG's compressed
pixel stream inflated a piece at a time and counted; a WebP's RIFF chunks). Where its
pixels are needed, a JPEG is decoded at reduced scale (``draft``) and any image is
brought down to the working size at once, with at most ``large_decodes`` large images
being decoded at a time in a process.

Every failure is an :class:`ImageError` with a stable ``code`` and a ``message``
that can be shown to a shop owner as is.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from jobs import image_checks
from productstudio.lib.errors import CodedError

__all__ = [
    "ALLOWED_FORMATS",
    "ImageError",
    "ImageInfo",
    "Thumbnail",
    "inspect_image",
    "is_large",
    "open_image",
    "thumbnail",
    "thumbnail_of",
]

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})

# The defaults of the IMAGE_* settings (productstudio/settings.py passes them in).
LARGE_PIXELS = 16_000_000
LARGE_DECODES = 1

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
    large_pixels: int = LARGE_PIXELS,
    large_decodes: int = LARGE_DECODES,
    content: bool = False,
) -> ImageInfo:
    """Check that ``data`` is a complete image we accept and describe it.

    With ``content``, a photo too small or blank to work on is refused too (see
    `image_checks`), from the pixels the check decodes anyway: a large JPEG's eighth-scale
    decode does; a large PNG or WebP, never decoded here, is judged by its size only.

    With ``decode=False`` the pixels are not decoded (a 2000 x 2000 PNG costs ~30 ms to
    decode): the headers are checked, and the file's completeness from its structure
    (PNG chunk checksums, JPEG's end marker, WebP's RIFF length). That is for images we
    only store, from a source we pay (Segmind's outputs); what a user sends is decoded,
    in full up to ``large_pixels``, and above that with a bounded decode (see the module).

    Raises :class:`ImageError` with code ``empty``, ``not_an_image``,
    ``format_not_allowed`` or ``too_many_pixels``; with ``content``, also
    ``image_too_small`` or ``empty_image``.
    """
    with _opened(data, max_pixels, allowed_formats) as image:
        image_format = _format_of(image)
        width, height = image.size
        if content and (small := image_checks.too_small(width, height)) is not None:
            raise ImageError(small.code, small.message)
        large = decode and width * height > large_pixels
        if large:
            _check_bounded(
                image, image_format, data, large_pixels=large_pixels, large_decodes=large_decodes
            )
        elif decode:
            _decode(image)
        else:
            _check_complete(image_format, data)
        pixels_at_hand = decode and (not large or image_format == "JPEG")
        if content and pixels_at_hand and image_checks.looks_blank(image):
            raise ImageError("empty_image", image_checks.BLANK_MESSAGE)
        if _orientation(image, loaded=decode and not large, data=data) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
    return ImageInfo(
        format=image_format,
        width=width,
        height=height,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        mime_type=Image.MIME.get(image_format, "application/octet-stream"),
    )


def open_image(
    data: bytes,
    *,
    max_pixels: int = 50_000_000,
    max_side: int | None = None,
    large_pixels: int = LARGE_PIXELS,
    large_decodes: int = LARGE_DECODES,
) -> Image.Image:
    """Open ``data`` with the same checks as :func:`inspect_image`, upright and loaded.

    The EXIF orientation is applied, so the result looks as the photo was shot. With
    ``max_side``, the result is at most that on its longest side, and a larger image is
    never held whole for longer than it takes to shrink it: a JPEG is decoded at the
    smallest DCT scale at least that large, and a large image of any format waits for
    one of the process's ``large_decodes`` slots.
    """
    with _opened(data, max_pixels, ALLOWED_FORMATS) as image:
        width, height = image.size
        if max_side is not None and max(width, height) > max_side and _format_of(image) == "JPEG":
            scale = max_side / max(width, height)
            # Floored: Pillow picks the largest scale whose result is at least this.
            image.draft(image.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
        cost = _decode_cost(image, (width, height))
        with large_decode_slot(cost, large_pixels=large_pixels, limit=large_decodes):
            _decode(image)
            work = image
            if max_side is not None and max(image.size) > max_side:
                if work.mode in ("P", "1"):
                    # Palette and bilevel images would be resized by nearest neighbour.
                    alpha = _has_alpha(work)
                    work = work.convert("RGBA" if alpha else "L" if work.mode == "1" else "RGB")
                # In place: the whole image's memory goes as soon as the reduction is made.
                work.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
            try:
                upright = ImageOps.exif_transpose(work)
            except (OSError, ValueError, SyntaxError) as exc:
                raise _not_an_image() from exc
            upright.load()
            return upright


def is_large(width: int, height: int, *, large_pixels: int = LARGE_PIXELS) -> bool:
    """Whether an image of this size is "large": checked without a full decode when
    accepted, and decoded by a limited number of threads at once."""
    return width * height > large_pixels


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


@contextmanager
def large_decode_slot(size: tuple[int, int], *, large_pixels: int, limit: int) -> Iterator[None]:
    """Hold one of the process's ``limit`` slots while a large image's pixels are in
    memory; a small image needs none. Each limit has its own semaphore (one in practice,
    from the settings)."""
    if not is_large(*size, large_pixels=large_pixels):
        yield
        return
    with _slots_lock:
        slot = _slots.setdefault(limit, threading.BoundedSemaphore(max(1, limit)))
    with slot:
        yield


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


def _decode_cost(image: Image.Image, original: tuple[int, int]) -> tuple[int, int]:
    """The size whose pixels decoding `image` holds at once: what it was reduced to, but
    a progressive JPEG keeps every coefficient of the full image while it decodes."""
    if _format_of(image) == "JPEG" and not image.info.get("progressive"):
        return image.size
    return original


def _check_bounded(
    image: Image.Image, image_format: str, data: bytes, *, large_pixels: int, large_decodes: int
) -> None:
    """A large image's integrity without holding its pixels: see the module."""
    if image_format == "JPEG":
        width, height = image.size
        # The smallest DCT scale (1/8): every coded block is still read and checked.
        image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
        cost = _decode_cost(image, (width, height))
        with large_decode_slot(cost, large_pixels=large_pixels, limit=large_decodes):
            _decode(image)
    elif image_format == "PNG":
        _check_complete(image_format, data)
        _check_png_stream(image, data)
    else:
        _check_complete(image_format, data)
        _check_webp_chunks(data)


# Samples per pixel of each PNG colour type.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_INFLATE_PIECE = 1 << 20


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """Each chunk's type and body, up to IEND (the checksums are `_check_complete`'s)."""
    view = memoryview(data)
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(view[pos : pos + 4], "big")
        kind = bytes(view[pos + 4 : pos + 8])
        if kind == b"IEND":
            return
        yield kind, view[pos + 8 : pos + 8 + length]
        pos += 12 + length


def _check_png_stream(image: Image.Image, data: bytes) -> None:
    """Inflate the PNG's image data a megabyte at a time and check it is exactly as long
    as its header says, with a valid filter on each row: what a decode would find wrong,
    without the pixels."""
    header, idat = b"", []
    for kind, body in _png_chunks(data):
        if kind == b"IHDR":
            header = bytes(body)
        elif kind == b"IDAT":
            idat.append(body)
    if len(header) != 13 or not idat:
        raise _not_an_image()
    width, height = image.size
    depth, colour, interlace = header[8], header[9], header[12]
    bits = depth * _PNG_CHANNELS.get(colour, 0)
    if not bits:
        raise _not_an_image()

    def row_bytes(columns: int) -> int:
        return 1 + (columns * bits + 7) // 8

    if interlace:
        rows: list[int] = []
        for x0, y0, dx, dy in _ADAM7:
            columns, count = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
            if columns > 0 and count > 0:
                rows += [row_bytes(columns)] * count
        expected, stride = sum(rows), 0
    else:
        stride = row_bytes(width)
        expected = stride * height
    inflater = zlib.decompressobj()
    produced = 0

    def take(out: bytes) -> None:
        nonlocal produced
        # Filter types are 0-4, one at the start of every row.
        if stride and out and max(out[(-produced) % stride :: stride], default=0) > 4:
            raise _not_an_image()
        produced += len(out)
        if produced > expected:
            raise _not_an_image()

    try:
        for piece in idat:
            pending: bytes | memoryview = piece
            while pending:
                take(inflater.decompress(pending, _INFLATE_PIECE))
                pending = inflater.unconsumed_tail
        while not inflater.eof and (out := inflater.decompress(b"", _INFLATE_PIECE)):
            take(out)
    except zlib.error as exc:
        raise _not_an_image() from exc
    if produced != expected or not inflater.eof:
        raise _not_an_image()


def _check_webp_chunks(data: bytes) -> None:
    # RIFF chunks, each its length (padded to even) after its header, up to the end.
    pos, end = 12, min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    while pos < end:
        if pos + 8 > end:
            raise _not_an_image()
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + length + (length & 1)
    if pos > end + 1:  # a last odd chunk may omit its pad byte
        raise _not_an_image()


def _orientation(image: Image.Image, *, loaded: bool = True, data: bytes = b"") -> int:
    if not loaded and image.format == "PNG" and "exif" not in image.info:
        # A PNG's EXIF may follow its pixels, and getexif() would decode them all to
        # find it; one that comes before them (as the spec asks) is in `info` already.
        # Walking the chunks finds one after them, when the bytes are at hand.
        exif = next((bytes(body) for kind, body in _png_chunks(data) if kind == b"eXIf"), b"")
        if not exif:
            return 1
        try:
            parsed = Image.Exif()
            parsed.load(exif)
            return int(parsed.get(_ORIENTATION_TAG, 1))
        except (OSError, ValueError, SyntaxError, TypeError, struct.error):
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


def upright_bytes(
    data: bytes,
    *,
    max_pixels: int = 50_000_000,
    large_pixels: int = LARGE_PIXELS,
    large_decodes: int = LARGE_DECODES,
) -> bytes:
    """The image with its EXIF orientation applied, in its own format; `data` if upright.

    Stored inputs are upright, so Segmind and the local engine see what the shop sees,
    whether or not they read EXIF themselves. A large image is not decoded whole for
    that: a JPEG is turned from a half-scale decode (at most a quarter of its pixels),
    and a large PNG or WebP keeps its orientation tag, which the local engine and the
    thumbnails apply.
    """
    with _opened(data, max_pixels, ALLOWED_FORMATS) as image:
        width, height = image.size
        large = is_large(width, height, large_pixels=large_pixels)
        # A small PNG's EXIF after its pixels is found by decoding them, as accepting it did.
        if _orientation(image, loaded=not large, data=data) in (1, 0):
            return data
        fmt = _format_of(image)
    max_side: int | None = None
    if large:
        if fmt != "JPEG":
            return data
        max_side = math.ceil(max(width, height) / 2)
    upright = open_image(
        data,
        max_pixels=max_pixels,
        max_side=max_side,
        large_pixels=large_pixels,
        large_decodes=large_decodes,
    )
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


@dataclass(frozen=True)
class Thumbnail:
    """A small upright copy of an image, and whether the image shows through anywhere:
    a JPEG for an opaque image, a WebP that keeps the alpha channel for one with
    transparent pixels (the portal shows those on a checkerboard)."""

    data: bytes
    extension: str
    transparent: bool


def thumbnail(
    data: bytes,
    *,
    longest_side: int = THUMBNAIL_SIDE,
    max_pixels: int = 50_000_000,
    large_pixels: int = LARGE_PIXELS,
    large_decodes: int = LARGE_DECODES,
) -> Thumbnail:
    """A small upright copy of ``data`` (at most ``longest_side`` on its longest side),
    for galleries that should never send full images; see :class:`Thumbnail`.

    Made to be cheap, as every stored image gets one: a JPEG is decoded at a reduced
    scale (``draft``), and any image is first shrunk by an integer factor (a box
    average) before the last, small resampling. A large PNG or WebP is decoded whole,
    in one of the process's ``large_decodes`` slots.
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
        cost = _decode_cost(image, (width, height))
        with large_decode_slot(cost, large_pixels=large_pixels, limit=large_decodes):
            _decode(image)
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if _has_alpha(image) else "RGB")
            image.thumbnail(
                (longest_side, longest_side), Image.Resampling.BILINEAR, reducing_gap=1.0
            )
            try:
                upright = ImageOps.exif_transpose(image)
            except (OSError, ValueError, SyntaxError) as exc:
                raise _not_an_image() from exc
    return thumbnail_of(upright, longest_side=longest_side)


def thumbnail_of(image: Image.Image, *, longest_side: int = THUMBNAIL_SIDE) -> Thumbnail:
    """:func:`thumbnail` of an image already decoded and upright (a worker's working copy
    of a large photo, say)."""
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    if max(image.size) > longest_side:
        image = image.copy()
        image.thumbnail((longest_side, longest_side), Image.Resampling.BILINEAR, reducing_gap=1.0)
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        # An alpha channel that is opaque everywhere (common in PNGs) is no transparency.
        alpha_min, _ = rgba.getchannel("A").getextrema()
        if isinstance(alpha_min, (int, float)) and alpha_min < 255:
            rgba.save(out, format="WEBP", quality=THUMBNAIL_QUALITY)
            return Thumbnail(data=out.getvalue(), extension="webp", transparent=True)
        image = rgba.convert("RGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    image.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return Thumbnail(data=out.getvalue(), extension="jpg", transparent=False)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
