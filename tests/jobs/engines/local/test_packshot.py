"""Packshots a marketplace takes: always 2000 x 2000, the product centred with the same
margin, enlarged with Lanczos when small (and saying so when it will look soft), and
white that decodes to exactly 255 around the product.

Plain functions on in-memory images: no database, no network, no Django.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from jobs.engines.local import (
    SOFT_UPSCALE,
    encode_packshot,
    make_packshot,
    remove_background,
    render_packshot,
)
from jobs.samples import sample_jpeg_bytes

Box = tuple[int, int, int, int]


def _photo(
    size: tuple[int, int],
    box: Box,
    product: tuple[int, int, int] = (40, 90, 170),
    backdrop: tuple[int, int, int] = (238, 238, 234),
) -> Image.Image:
    """A flat product (drawn at 4x, for soft edges) on a slightly noisy studio backdrop."""
    width, height = size
    big = Image.new("L", (width * 4, height * 4), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        tuple(v * 4 for v in box), 0.1 * min(box[2] - box[0], box[3] - box[1]) * 4, fill=255
    )
    coverage = np.asarray(big.reduce(4), dtype=np.float32)[..., None] / 255.0
    pixels = np.asarray(backdrop, np.float32) * (1 - coverage) + np.asarray(product) * coverage
    noise = np.random.default_rng(3).normal(0.0, 1.0, pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels + noise), 0, 255).astype(np.uint8), "RGB")


@cache
def _mug() -> Image.Image:
    return Image.open(io.BytesIO(sample_jpeg_bytes("mug"))).convert("RGB")


def _box_of(mask: NDArray[np.bool_]) -> Box:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _product_box(image: Image.Image, backdrop: tuple[int, int, int]) -> Box:
    """Where the packshot differs from its backdrop at all (alpha, when transparent)."""
    if image.mode == "RGBA":
        return _box_of(np.asarray(image.getchannel("A")) > 0)
    pixels = np.asarray(image, dtype=np.int32)
    return _box_of(np.abs(pixels - np.asarray(backdrop)).max(axis=2) > 0)


def _decoded(data: bytes) -> NDArray[np.int32]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int32)


def _outside(box: Box, shape: tuple[int, ...], grow_to: int = 1) -> NDArray[np.bool_]:
    """Every pixel outside `box`, the box first grown out to a multiple of `grow_to`."""
    x0, y0, x1, y1 = box
    x0, y0 = x0 // grow_to * grow_to, y0 // grow_to * grow_to
    x1, y1 = -(-x1 // grow_to) * grow_to, -(-y1 // grow_to) * grow_to
    outside = np.ones(shape[:2], dtype=bool)
    outside[y0:y1, x0:x1] = False
    return outside


# -- always 2000 x 2000, the same margin, centred ----------------------------------------


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((1000, 1000), (80, 60, 920, 940)),  # fills the frame
        ((1000, 1000), (420, 430, 560, 600)),  # small in a large photo
        ((320, 240), (100, 60, 220, 180)),  # a small photo
        ((120, 120), (40, 40, 70, 80)),  # a tiny one
        ((3000, 800), (200, 300, 2800, 500)),  # wide
    ],
)
def test_every_packshot_is_2000_by_2000_with_the_longer_side_spanning_1700(
    size: tuple[int, int], box: Box
) -> None:
    packshot = make_packshot(_photo(size, box))
    assert packshot.size == (2000, 2000)
    x0, y0, x1, y1 = _product_box(packshot, (255, 255, 255))
    # 1 - 2 x 0.075 of the canvas (85 %), give or take the soft edge the cut-out keeps.
    assert 1700 - 6 <= max(x1 - x0, y1 - y0) <= 1700
    assert abs((x0 + x1) / 2 - 1000) <= 2
    assert abs((y0 + y1) / 2 - 1000) <= 2


def test_a_product_off_centre_in_its_photo_is_centred_on_its_bounding_box() -> None:
    packshot = make_packshot(_photo((1200, 900), (40, 500, 440, 860)))
    x0, y0, x1, y1 = _product_box(packshot, (255, 255, 255))
    assert abs((x0 + x1) / 2 - 1000) <= 2
    assert abs((y0 + y1) / 2 - 1000) <= 2
    assert x1 - x0 >= 1694  # the wider side spans the canvas less the margins


def test_the_margin_gives_the_share_of_the_canvas_the_product_spans() -> None:
    packshot = render_packshot(_mug(), size=1000, margin=0.2)
    assert packshot.image.size == (1000, 1000)
    assert packshot.target_side == 600
    x0, y0, x1, y1 = _product_box(packshot.image, (255, 255, 255))
    assert 594 <= max(x1 - x0, y1 - y0) <= 600


@pytest.mark.parametrize("size", [(10000, 100), (100, 10000)])
def test_a_thin_strip_stays_a_thin_product_centred_on_the_canvas(size: tuple[int, int]) -> None:
    strip = Image.new("RGB", size, (200, 40, 40))
    packshot = make_packshot(strip, remove_bg=False)
    assert packshot.size == (2000, 2000)
    x0, y0, x1, y1 = _product_box(packshot, (255, 255, 255))
    long, short = max(x1 - x0, y1 - y0), min(x1 - x0, y1 - y0)
    assert long == 1700
    assert 15 <= short <= 19  # 100 px x 0.17, and its soft edges
    assert abs((x0 + x1) / 2 - 1000) <= 1
    assert abs((y0 + y1) / 2 - 1000) <= 1
    assert tuple(np.asarray(packshot)[1000, 1000]) == (200, 40, 40)


def test_a_one_pixel_image_fills_the_span() -> None:
    packshot = render_packshot(Image.new("RGB", (1, 1), (10, 120, 30)), remove_bg=False)
    assert packshot.image.size == (2000, 2000)
    assert packshot.upscale == 1700
    assert tuple(np.asarray(packshot.image)[1000, 1000]) == (10, 120, 30)


# -- enlarged with Lanczos; the job says so past 2x --------------------------------------


def test_a_small_photo_is_enlarged_and_the_factor_is_reported() -> None:
    packshot = render_packshot(_photo((320, 240), (100, 60, 220, 180)))
    product_side = max(
        np.diff(
            _box_of(
                np.asarray(remove_background(_photo((320, 240), (100, 60, 220, 180))))[..., 3] > 8
            )[::2]
        )
    )
    assert packshot.product_side == product_side
    assert packshot.upscale == pytest.approx(1700 / product_side)
    assert packshot.soft


def test_a_soft_packshot_tells_the_shop_by_how_much_and_what_photo_would_do() -> None:
    packshot = render_packshot(_mug())
    assert packshot.upscale > SOFT_UPSCALE
    factor = round(packshot.upscale, 1)
    assert packshot.notice == (
        f"The photo is small: the product ({packshot.product_side} px across) was enlarged "
        f"{factor:.1f}x to fill the 2000 x 2000 packshot, so it may look soft. "
        "A photo in which the product is at least 850 px across gives a sharp result."
    )


def test_a_product_enlarged_at_most_twice_needs_no_notice() -> None:
    packshot = render_packshot(_photo((1000, 1000), (80, 60, 920, 940)))
    assert packshot.upscale <= SOFT_UPSCALE
    assert not packshot.soft
    assert packshot.notice == ""


def test_a_factor_just_over_the_threshold_never_reads_as_two() -> None:
    # 1700 / 820 = 2.07: the notice says 2.1x, not a "2.0x" that sounds acceptable.
    photo = Image.new("RGB", (820, 400), (90, 90, 90))
    packshot = render_packshot(photo, remove_bg=False)
    assert packshot.soft
    assert "enlarged 2.1x" in packshot.notice


def test_a_large_product_is_shrunk_without_a_notice() -> None:
    packshot = render_packshot(Image.new("RGB", (3000, 2000), (90, 90, 90)), remove_bg=False)
    assert packshot.upscale == pytest.approx(1700 / 3000)
    assert packshot.notice == ""


def test_an_enlarged_edge_is_a_smooth_ramp_and_not_blocks() -> None:
    # A black square in a 20 px photo enlarged 84x: nearest neighbour would jump from
    # white to black in one pixel; Lanczos ramps over tens of pixels.
    photo = Image.new("RGB", (20, 20), (255, 255, 255))
    photo.paste((0, 0, 0), (5, 5, 15, 15))
    packshot = make_packshot(photo, remove_bg=False, background_color="#FFFFFF")
    row = np.asarray(packshot, dtype=np.int32)[1000, :, 0]
    intermediate = int(((row > 20) & (row < 235)).sum())
    assert intermediate >= 40


def test_a_transparent_packshot_enlarged_has_no_dark_fringe() -> None:
    # A light product cut out from black: resizing its colour without its alpha would
    # mix in the black of the transparent pixels and draw a dark outline.
    cutout = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(cutout).ellipse((10, 10, 50, 50), fill=(240, 220, 200, 255))
    packshot = make_packshot(cutout, remove_bg=False, background_color="transparent")
    assert packshot.size == (2000, 2000)
    pixels = np.asarray(packshot, dtype=np.int32)
    edge = (pixels[..., 3] > 10) & (pixels[..., 3] < 245)
    assert int(edge.sum()) > 1000
    # The soft edge keeps the product's colour: premultiplied, in floating point (in 8
    # bits, the faintest edge pixels come back tens of levels off).
    deviation = np.abs(pixels[edge][:, :3] - np.asarray((240, 220, 200))).max()
    assert int(deviation) <= 3
    assert tuple(pixels[0, 0]) == (0, 0, 0, 0)


def test_a_transparent_packshot_is_2000_square_rgba_with_clear_corners() -> None:
    packshot = make_packshot(
        Image.open(io.BytesIO(sample_jpeg_bytes("bottle"))), background_color="transparent"
    )
    assert packshot.size == (2000, 2000)
    assert packshot.mode == "RGBA"
    alpha = np.asarray(packshot.getchannel("A"))
    assert alpha[0, 0] == alpha[-1, -1] == 0
    assert alpha[1000, 1000] == 255


# -- white means 255 -----------------------------------------------------------------------


def test_white_around_the_product_decodes_to_exactly_255_from_the_stored_jpeg() -> None:
    packshot = make_packshot(_mug())
    data = encode_packshot(packshot, quality=92)
    assert data[:2] == b"\xff\xd8"
    decoded = _decoded(data)
    box = _product_box(packshot, (255, 255, 255))
    # JPEG codes 8 x 8 blocks: those clear of the product's box are exactly white.
    outside = _outside(box, decoded.shape, grow_to=8)
    assert int(outside.sum()) > 2000 * 2000 * 0.15
    assert (decoded[outside] == 255).all()
    # Above and below the product (its box starts 150 px in): every block clear of it.
    assert (decoded[:144] == 255).all() and (decoded[-144:] == 255).all()


@pytest.mark.parametrize(
    ("colour", "rgb"), [("#3366CC", (51, 102, 204)), ("#F0E0D0", (240, 224, 208))]
)
def test_a_flat_colour_decodes_to_itself_within_jpeg_rounding(
    colour: str, rgb: tuple[int, int, int]
) -> None:
    packshot = make_packshot(_mug(), background_color=colour)
    decoded = _decoded(encode_packshot(packshot, quality=92))
    outside = _outside(_product_box(packshot, rgb), decoded.shape, grow_to=8)
    assert int(np.abs(decoded[outside] - np.asarray(rgb)).max()) <= 1


def test_a_transparent_packshot_is_stored_as_png_with_its_alpha() -> None:
    packshot = make_packshot(_mug(), background_color="transparent")
    data = encode_packshot(packshot)
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "PNG"
    assert stored.mode == "RGBA"
    assert stored.size == (2000, 2000)


def test_a_notice_for_a_reduced_photo_speaks_of_the_products_share_of_it() -> None:
    packshot = render_packshot(Image.new("RGB", (600, 300), (90, 90, 90)), remove_bg=False)
    assert packshot.soft_notice(reduced_to=3000) == (
        "The product is small in the photo: large photos are worked on at 3000 px, where "
        "it is 600 px across: it was enlarged 2.8x to fill the 2000 x 2000 packshot, so "
        "it may look soft. A photo in which the product spans at least 29 % of the longest "
        "side gives a sharp result."
    )
    assert packshot.soft_notice() == packshot.notice
