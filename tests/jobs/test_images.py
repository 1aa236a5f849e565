"""Tests for jobs.images: what counts as an acceptable product photo."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from jobs.images import ALLOWED_FORMATS, ImageError, inspect_image, open_image


def _encode(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def _photo(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Image.Image:
    # Noise, so that encoders produce files big enough to truncate meaningfully.
    return Image.effect_noise(size, 64).convert(mode)


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data behind it."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _refusal(data: bytes, **options: Any) -> ImageError:
    with pytest.raises(ImageError) as caught:
        inspect_image(data, **options)
    return caught.value


@pytest.fixture
def pixels_are_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> Any:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# --- accepted formats --------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "mime_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_it_accepts_an_allowed_format_and_describes_it(image_format: str, mime_type: str) -> None:
    data = _encode(_photo((40, 30)), image_format)
    info = inspect_image(data)
    assert info.format == image_format
    assert (info.width, info.height) == (40, 30)
    assert info.byte_size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.mime_type == mime_type


def test_only_jpeg_png_and_webp_are_allowed() -> None:
    assert frozenset({"JPEG", "PNG", "WEBP"}) == ALLOWED_FORMATS


def test_it_accepts_a_cmyk_jpeg() -> None:
    info = inspect_image(_encode(_photo((16, 12), "CMYK"), "JPEG"))
    assert (info.format, info.width, info.height) == ("JPEG", 16, 12)


def test_it_accepts_a_16_bit_png() -> None:
    data = _encode(Image.new("I;16", (10, 6), 40000), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    info = inspect_image(data)
    assert (info.format, info.width, info.height) == ("PNG", 10, 6)


def test_it_accepts_a_palette_png() -> None:
    data = _encode(_photo((12, 9)).convert("P"), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "P"
    assert inspect_image(data).format == "PNG"


def test_it_accepts_a_multi_picture_camera_jpeg_as_a_jpeg() -> None:
    first, second = _photo((20, 10)), _photo((20, 10))
    data = _encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    info = inspect_image(data)
    assert (info.format, info.mime_type) == ("JPEG", "image/jpeg")


# --- EXIF orientation --------------------------------------------------------------


def _jpeg_with_orientation(orientation: int, size: tuple[int, int] = (40, 20)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(_photo(size), "JPEG", exif=exif.tobytes())


def test_exif_orientation_6_swaps_width_and_height() -> None:
    info = inspect_image(_jpeg_with_orientation(6))
    assert (info.width, info.height) == (20, 40)


def test_exif_orientation_3_keeps_width_and_height() -> None:
    info = inspect_image(_jpeg_with_orientation(3))
    assert (info.width, info.height) == (40, 20)


def test_open_image_returns_the_photo_upright_and_loaded() -> None:
    image = open_image(_jpeg_with_orientation(6))
    assert image.size == (20, 40)
    assert image.getpixel((0, 0)) is not None


# --- refused content ---------------------------------------------------------------


def test_it_refuses_a_gif_even_when_it_is_named_jpg(tmp_path: Path) -> None:
    renamed = tmp_path / "product.jpg"
    renamed.write_bytes(_encode(_photo((10, 10)).convert("P"), "GIF"))
    error = _refusal(renamed.read_bytes())
    assert error.code == "format_not_allowed"
    assert error.message == ("GIF images aren't supported. Please use a JPEG, PNG or WebP image.")


@pytest.mark.parametrize("image_format", ["BMP", "TIFF"])
def test_it_refuses_other_real_image_formats(image_format: str) -> None:
    error = _refusal(_encode(_photo((10, 10)), image_format))
    assert error.code == "format_not_allowed"
    assert error.message.startswith(f"{image_format} images aren't supported.")


def test_it_names_an_iphone_heic_photo_it_cannot_take() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    error = _refusal(heic)
    assert error.code == "format_not_allowed"
    assert error.message.startswith("HEIC images aren't supported.")


def test_it_honours_a_narrower_allow_list() -> None:
    png = _encode(_photo((10, 10)), "PNG")
    error = _refusal(png, allowed_formats=frozenset({"JPEG"}))
    assert error.code == "format_not_allowed"


def test_open_image_refuses_a_gif_too() -> None:
    with pytest.raises(ImageError) as caught:
        open_image(_encode(_photo((10, 10)).convert("P"), "GIF"))
    assert caught.value.code == "format_not_allowed"


def test_it_refuses_random_bytes() -> None:
    noise = random.Random(4).randbytes(4096)
    assert _refusal(noise).code == "not_an_image"


def test_it_refuses_text_pretending_to_be_an_image() -> None:
    assert _refusal(b"<html><body>Not found</body></html>").code == "not_an_image"


def test_it_refuses_a_truncated_jpeg() -> None:
    data = _encode(_photo((256, 256)), "JPEG", quality=95)
    error = _refusal(data[: len(data) // 2])
    assert error.code == "not_an_image"
    assert error.message == "This file isn't a picture we can read, or it is damaged."


def test_it_refuses_a_truncated_png() -> None:
    data = _encode(_photo((256, 256)), "PNG")
    assert _refusal(data[: len(data) // 2]).code == "not_an_image"


def test_it_refuses_empty_bytes() -> None:
    error = _refusal(b"")
    assert error.code == "empty"


# --- pixel limits ------------------------------------------------------------------


def test_it_refuses_a_decompression_bomb_without_decoding_it(
    pixels_are_never_decoded: None,
) -> None:
    bomb = _png_declaring(30_000, 30_000)
    assert len(bomb) < 200
    error = _refusal(bomb)
    assert error.code == "too_many_pixels"
    assert error.message == ("The image has too many pixels (the limit is 50 megapixels).")


def test_it_refuses_an_image_over_its_own_limit_but_under_pillows(
    pixels_are_never_decoded: None,
) -> None:
    # 64 megapixels: below Pillow's built-in bomb warning, above our default limit.
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS > 8_000 * 8_000
    assert _refusal(_png_declaring(8_000, 8_000)).code == "too_many_pixels"


def test_open_image_refuses_a_decompression_bomb_without_decoding_it(
    pixels_are_never_decoded: None,
) -> None:
    with pytest.raises(ImageError) as caught:
        open_image(_png_declaring(30_000, 30_000))
    assert caught.value.code == "too_many_pixels"


def test_it_honours_a_smaller_pixel_limit() -> None:
    data = _encode(_photo((100, 100)), "PNG")
    assert inspect_image(data, max_pixels=10_000).width == 100
    assert _refusal(data, max_pixels=9_999).code == "too_many_pixels"


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_an_image_checked_without_decoding_is_described_like_a_decoded_one(image_format: str):
    data = _encode(_photo((40, 30)), image_format)
    assert inspect_image(data, decode=False) == inspect_image(data)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("cut", [1, 3, 200])
def test_a_truncated_image_is_refused_even_without_decoding(image_format: str, cut: int):
    data = _encode(_photo((40, 30)), image_format)
    error = _refusal(data[:-cut], decode=False)
    assert error.code == "not_an_image"


def test_a_png_with_a_damaged_chunk_is_refused_without_decoding():
    data = bytearray(_encode(_photo((40, 30)), "PNG"))
    data[60] ^= 0xFF  # inside the first IDAT chunk: its checksum no longer matches
    assert _refusal(bytes(data), decode=False).code == "not_an_image"
