"""The local engine and the synthetic samples it is measured against.

Plain functions on in-memory images: no database, no network, no Django.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from jobs.engines.local import EngineError, make_packshot, parse_color, remove_background
from jobs.samples import SAMPLE_NAMES, render_sample, sample_jpeg_bytes

Mask = NDArray[np.bool_]


@cache
def _sample(name: str) -> tuple[Image.Image, Mask]:
    return render_sample(name)


@cache
def _cutout(name: str) -> Image.Image:
    return remove_background(_sample(name)[0])


def _alpha(image: Image.Image) -> NDArray[np.uint8]:
    return np.asarray(image.getchannel("A"))


def _iou(predicted: Mask, truth: Mask) -> float:
    return float((predicted & truth).sum() / max(1, (predicted | truth).sum()))


def _bbox(mask: Mask) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _enclosed_background(mask: Mask) -> Mask:
    """Backdrop pixels with product on all four sides along their row and column.

    Good enough to find a handle's opening without a flood fill.
    """
    cum_x = np.cumsum(mask, axis=1)
    cum_y = np.cumsum(mask, axis=0)
    left = cum_x > 0
    right = (cum_x[:, -1:] - cum_x) > 0
    above = cum_y > 0
    below = (cum_y[-1:, :] - cum_y) > 0
    return ~mask & left & right & above & below


def _erode(mask: Mask, steps: int) -> Mask:
    out = mask.copy()
    for _ in range(steps):
        inner = out.copy()
        inner[1:] &= out[:-1]
        inner[:-1] &= out[1:]
        inner[:, 1:] &= out[:, :-1]
        inner[:, :-1] &= out[:, 1:]
        out = inner
    return out


def _studio_photo(
    backdrop: tuple[int, int, int],
    product: tuple[int, int, int],
    box: tuple[float, float, float, float],
    size: tuple[int, int] = (1000, 1000),
) -> tuple[Image.Image, Mask]:
    """A shaded rounded box on a flat backdrop, drawn at 4x for soft edges."""
    width, height = size
    big = Image.new("L", (width * 4, height * 4), 0)
    x0, y0, x1, y1 = box
    radius = 0.08 * min(x1 - x0, y1 - y0) * 4
    corners = (round(x0 * 4), round(y0 * 4), round(x1 * 4), round(y1 * 4))
    ImageDraw.Draw(big).rounded_rectangle(corners, radius, fill=255)
    coverage = np.asarray(big.reduce(4), dtype=np.float32)[..., None] / 255.0
    shade = np.linspace(1.1, 0.8, height, dtype=np.float32)[:, None, None]
    colour = np.clip(np.asarray(product, np.float32) * shade, 0, 255)
    pixels = np.asarray(backdrop, np.float32) * (1 - coverage) + colour * coverage
    noise = np.random.default_rng(7).normal(0.0, 1.0, pixels.shape)
    image = Image.fromarray(np.clip(np.rint(pixels + noise), 0, 255).astype(np.uint8), "RGB")
    return image, coverage[..., 0] >= 0.5


# -- samples -------------------------------------------------------------------------


def test_there_are_at_least_eight_named_samples() -> None:
    assert len(SAMPLE_NAMES) >= 8
    assert len(set(SAMPLE_NAMES)) == len(SAMPLE_NAMES)
    assert {"mug", "white-on-white", "dark-on-dark"} <= set(SAMPLE_NAMES)


def test_a_sample_is_an_rgb_photo_with_a_boolean_mask_of_the_same_size() -> None:
    image, mask = render_sample("bottle", width=320, height=240, seed=3)
    assert image.mode == "RGB"
    assert image.size == (320, 240)
    assert mask.shape == (240, 320)
    assert mask.dtype == np.bool_
    assert 0.02 < mask.mean() < 0.6


def test_a_sample_is_reproducible_for_a_seed_and_varies_between_seeds() -> None:
    first, first_mask = render_sample("box", width=200, height=200, seed=5)
    again, again_mask = render_sample("box", width=200, height=200, seed=5)
    other, _ = render_sample("box", width=200, height=200, seed=6)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert np.array_equal(first_mask, again_mask)
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_the_mug_sample_shows_the_backdrop_through_its_handle() -> None:
    image, mask = _sample("mug")
    hole = _erode(_enclosed_background(mask), 3)
    assert hole.sum() > 1000
    corner = np.asarray(image, dtype=np.float32)[:20, :20].reshape(-1, 3).mean(axis=0)
    inside = np.asarray(image, dtype=np.float32)[hole].mean(axis=0)
    assert np.abs(inside - corner).max() < 6


def test_the_sample_shadow_darkens_the_backdrop_but_is_not_in_the_mask() -> None:
    image, mask = _sample("mug")
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    _, _, _, bottom = _bbox(mask)
    below = grey[bottom + 2 : bottom + 12][~mask[bottom + 2 : bottom + 12]]
    assert below.mean() < grey[:20, :20].mean() - 15


def test_an_unknown_sample_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown sample"):
        render_sample("teapot")


def test_sample_jpeg_bytes_decode_to_the_sample_size() -> None:
    data = sample_jpeg_bytes("lamp", width=300, height=200)
    assert data[:2] == b"\xff\xd8"
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "JPEG"
        assert decoded.size == (300, 200)


# -- background removal ----------------------------------------------------------------


def test_every_sample_is_cut_out_close_to_its_true_mask() -> None:
    scores = {name: _iou(_alpha(_cutout(name)) >= 128, _sample(name)[1]) for name in SAMPLE_NAMES}
    report = ", ".join(f"{name}={score:.4f}" for name, score in scores.items())
    mean = sum(scores.values()) / len(scores)
    assert min(scores.values()) >= 0.85, f"IoU per sample: {report}"
    assert mean >= 0.90, f"mean IoU {mean:.4f}; per sample: {report}"


def test_a_jpeg_upload_is_cut_out_nearly_as_well_as_the_lossless_photo() -> None:
    for name in ("mug", "white-on-white", "plant-pot-gradient"):
        with Image.open(io.BytesIO(sample_jpeg_bytes(name))) as upload:
            cutout = remove_background(upload)
        score = _iou(_alpha(cutout) >= 128, _sample(name)[1])
        assert score >= 0.95, f"{name}: IoU {score:.4f}"


def test_it_returns_rgba_of_the_input_size_with_a_soft_edge() -> None:
    cutout = _cutout("mug")
    alpha = _alpha(cutout)
    assert cutout.mode == "RGBA"
    assert cutout.size == _sample("mug")[0].size
    partial = ((alpha > 0) & (alpha < 255)).sum()
    assert partial > 500, "anti-aliased edges should give partial alpha"


@pytest.mark.parametrize("name", ["mug", "dark-on-dark"])
def test_it_keeps_the_hole_of_the_handle_transparent(name: str) -> None:
    _, mask = _sample(name)
    hole = _erode(_enclosed_background(mask), 3)
    assert hole.sum() > 1000
    alpha = _alpha(_cutout(name))
    assert (alpha[hole] < 16).mean() > 0.99


def test_it_drops_the_soft_shadow_under_the_product() -> None:
    _, mask = _sample("mug")
    alpha = _alpha(_cutout("mug"))
    _, _, _, bottom = _bbox(mask)
    band = np.zeros_like(mask)
    band[bottom + 3 : bottom + 30] = True
    band &= ~mask
    assert (alpha[band] < 16).mean() > 0.99


def test_it_keeps_the_thin_stem_of_the_lamp() -> None:
    _, mask = _sample("lamp")
    alpha = _alpha(_cutout("lamp"))
    rows = slice(450, 650)
    stem = mask[rows]
    assert 0 < stem.sum(axis=1).max() < 20, "the stem is thin in this sample"
    assert ((alpha[rows] >= 128) == stem).mean() > 0.995


def test_it_estimates_a_mid_grey_backdrop_instead_of_assuming_white() -> None:
    for name in ("speaker-on-grey", "perfume-on-teal"):
        score = _iou(_alpha(_cutout(name)) >= 128, _sample(name)[1])
        assert score >= 0.95, f"{name}: IoU {score:.4f}"


def test_a_white_product_on_a_coloured_backdrop_is_kept_whole() -> None:
    photo, truth = _studio_photo((70, 120, 190), (250, 250, 250), (250, 200, 750, 800))
    alpha = _alpha(remove_background(photo))
    assert _iou(alpha >= 128, truth) >= 0.98
    assert alpha[:50, :50].max() == 0


def test_edges_carry_the_product_colour_and_not_the_old_backdrop() -> None:
    # A red product on a white backdrop: without decontamination, edge pixels
    # stay pinkish and show as a pale halo on a dark background.
    # Quarter-pixel bounds, so every edge pixel is partly covered.
    photo, truth = _studio_photo((250, 250, 250), (200, 30, 30), (300.25, 300.5, 700.75, 699.5))
    cutout = np.asarray(remove_background(photo)).astype(np.int32)
    alpha = cutout[..., 3]
    edge = (alpha > 40) & (alpha < 230)
    assert edge.sum() > 1000
    green = cutout[..., 1][edge]
    assert np.median(green) < 90, "edge colours should be un-mixed from the white backdrop"
    assert truth.any()


def test_a_large_photo_is_analysed_smaller_but_cut_out_at_full_size() -> None:
    image, mask = render_sample("plant-pot-gradient", width=1800, height=1200, seed=2)
    cutout = remove_background(image)
    assert cutout.size == (1800, 1200)
    assert _iou(_alpha(cutout) >= 128, mask) >= 0.97


def test_a_blank_image_yields_a_fully_transparent_cutout() -> None:
    for colour in ((255, 255, 255), (128, 128, 128), (10, 10, 10)):
        cutout = remove_background(Image.new("RGB", (400, 300), colour))
        assert cutout.mode == "RGBA"
        assert _alpha(cutout).max() == 0


def test_a_blank_studio_gradient_with_noise_yields_nothing() -> None:
    ramp = np.linspace(170, 250, 600, dtype=np.float32)[:, None, None]
    noise = np.random.default_rng(1).normal(0.0, 2.0, (600, 800, 3))
    pixels = np.clip(np.broadcast_to(ramp, (600, 800, 3)) + noise, 0, 255).astype(np.uint8)
    cutout = remove_background(Image.fromarray(pixels, "RGB"))
    assert (_alpha(cutout) > 8).sum() == 0


def test_an_already_cut_out_image_keeps_its_alpha() -> None:
    image, mask = _sample("sneaker")
    alpha = np.where(mask, 255, 0).astype(np.uint8)
    rgba = image.copy()
    rgba.putalpha(Image.fromarray(alpha, "L"))
    cutout = remove_background(rgba)
    assert cutout.mode == "RGBA"
    assert np.array_equal(_alpha(cutout), alpha)


def test_an_opaque_alpha_channel_is_ignored_and_the_backdrop_removed() -> None:
    image, mask = _sample("box")
    rgba = image.convert("RGBA")
    assert _iou(_alpha(remove_background(rgba)) >= 128, mask) >= 0.95


@pytest.mark.parametrize("mode", ["P", "CMYK", "I;16", "LA", "L", "1", "RGBa"])
def test_other_image_modes_are_converted_without_crashing(mode: str) -> None:
    image, mask = render_sample("mug", width=400, height=400)
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
        converted = Image.fromarray(grey.astype("<u2"))
        assert converted.mode == "I;16"
    elif mode == "P":
        converted = image.quantize(64)
    else:
        converted = image.convert(mode)
    cutout = remove_background(converted)
    assert cutout.mode == "RGBA"
    assert cutout.size == (400, 400)
    found = _alpha(cutout) >= 128
    if mode != "1":  # dithering to black and white leaves no clean backdrop
        assert _iou(found, mask) >= 0.85, f"{mode}: IoU {_iou(found, mask):.4f}"
    packshot = make_packshot(converted, size=600)
    assert packshot.mode == "RGB"


def test_a_16_bit_photo_is_scaled_down_and_not_clipped_to_white() -> None:
    image, mask = render_sample("speaker-on-grey", width=300, height=300)
    grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    cutout = remove_background(Image.fromarray(grey.astype("<u2")))
    assert _iou(_alpha(cutout) >= 128, mask) >= 0.9


def test_a_transparent_palette_image_keeps_its_transparency() -> None:
    base = Image.new("P", (100, 100), 0)
    base.putpalette([255, 255, 255, 200, 30, 30] + [0, 0, 0] * 254)
    ImageDraw.Draw(base).rectangle((30, 30, 70, 70), fill=1)
    base.info["transparency"] = 0
    alpha = _alpha(remove_background(base))
    assert alpha[0, 0] == 0
    assert alpha[50, 50] == 255


def test_exif_orientation_is_applied_before_cutting_out() -> None:
    image, _ = render_sample("bottle", width=300, height=200)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: display is 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    with Image.open(io.BytesIO(buffer.getvalue())) as upload:
        cutout = remove_background(upload)
    assert cutout.size == (200, 300)


# -- packshots -------------------------------------------------------------------------


@cache
def _large_product_photo() -> Image.Image:
    photo, _ = _studio_photo((236, 236, 232), (40, 90, 170), (80, 60, 920, 940))
    return photo


def _product_box(packshot: Image.Image, backdrop: tuple[int, int, int]) -> tuple[int, ...]:
    pixels = np.asarray(packshot.convert("RGB"), dtype=np.int32)
    differs = np.abs(pixels - np.asarray(backdrop)).max(axis=2) > 24
    return _bbox(differs)


def test_a_packshot_is_a_2000_pixel_square_for_a_1000_pixel_photo() -> None:
    packshot = make_packshot(_large_product_photo())
    assert packshot.size == (2000, 2000)
    assert packshot.mode == "RGB"


def test_the_product_is_centred_with_the_margin_around_it() -> None:
    packshot = make_packshot(_large_product_photo())
    x0, y0, x1, y1 = _product_box(packshot, (255, 255, 255))
    side = packshot.size[0]
    assert abs((x0 + x1) / 2 - side / 2) <= 0.02 * side
    assert abs((y0 + y1) / 2 - side / 2) <= 0.02 * side
    margin = 0.075 * side
    assert min(x0, y0, side - x1, side - y1) >= margin - 3
    assert max(x1 - x0, y1 - y0) >= side * (1 - 0.15) - 6, "the product should fill the box"


def test_a_sample_product_is_centred_on_its_square_canvas() -> None:
    packshot = make_packshot(_sample("mug")[0])
    width, height = packshot.size
    assert width == height
    x0, y0, x1, y1 = _product_box(packshot, (255, 255, 255))
    assert abs((x0 + x1) / 2 - width / 2) <= 0.02 * width
    assert abs((y0 + y1) / 2 - height / 2) <= 0.02 * height


def test_a_transparent_packshot_is_rgba_with_clear_corners() -> None:
    packshot = make_packshot(_sample("bottle")[0], background_color="transparent")
    assert packshot.mode == "RGBA"
    alpha = _alpha(packshot)
    side = packshot.size[0]
    for y, x in ((0, 0), (0, side - 1), (side - 1, 0), (side - 1, side - 1)):
        assert alpha[y, x] == 0
    assert alpha[side // 2, side // 2] == 255


@pytest.mark.parametrize(
    ("colour", "expected"),
    [("#3366CC", (51, 102, 204)), ("#fa0", (255, 170, 0)), ("#FFFFFF", (255, 255, 255))],
)
def test_the_hex_background_colour_is_used_at_the_corners(
    colour: str, expected: tuple[int, int, int]
) -> None:
    packshot = make_packshot(_sample("perfume-on-teal")[0], background_color=colour, size=800)
    pixels = np.asarray(packshot)
    side = packshot.size[0]
    for y, x in ((0, 0), (0, side - 1), (side - 1, 0), (side - 1, side - 1)):
        assert tuple(int(v) for v in pixels[y, x]) == expected


def test_without_removal_the_whole_photo_is_the_product() -> None:
    photo = Image.new("RGB", (500, 250), (90, 160, 90))
    packshot = make_packshot(photo, remove_bg=False, size=1000, background_color="#000000")
    assert packshot.size == (1000, 1000)
    pixels = np.asarray(packshot)
    assert tuple(pixels[500, 500]) == (90, 160, 90)
    assert tuple(pixels[5, 500]) == (0, 0, 0)


def test_a_blank_image_cannot_become_a_packshot() -> None:
    with pytest.raises(EngineError) as raised:
        make_packshot(Image.new("RGB", (800, 600), (250, 250, 250)))
    assert raised.value.code == "empty_image"
    assert raised.value.message == "No product could be found in the image: it looks blank."


def test_a_fully_transparent_cutout_cannot_become_a_packshot() -> None:
    with pytest.raises(EngineError) as raised:
        make_packshot(Image.new("RGBA", (300, 300), (0, 0, 0, 0)))
    assert raised.value.code == "empty_image"


# -- colours ---------------------------------------------------------------------------


def test_parse_color_reads_short_and_long_hex_and_transparent() -> None:
    assert parse_color("#FFF") == (255, 255, 255)
    assert parse_color("#1a2B3c") == (26, 43, 60)
    assert parse_color(" #000000 ") == (0, 0, 0)
    assert parse_color("transparent") is None
    assert parse_color("Transparent") is None


@pytest.mark.parametrize("value", ["", "white", "#12", "#12345", "#GGGGGG", "123456", "#1234567"])
def test_parse_color_rejects_anything_else(value: str) -> None:
    with pytest.raises(EngineError) as raised:
        parse_color(value)
    assert raised.value.code == "invalid_color"
    assert value in raised.value.message or value == ""


def test_a_packshot_with_a_bad_colour_fails_before_any_work() -> None:
    with pytest.raises(EngineError) as raised:
        make_packshot(Image.new("RGB", (10, 10)), background_color="navy")
    assert raised.value.code == "invalid_color"


def test_an_engine_error_carries_its_code_and_message() -> None:
    error = EngineError("empty_image", "Nothing here.")
    assert error.code == "empty_image"
    assert error.message == "Nothing here."
    assert str(error) == "Nothing here."


def test_a_jpeg_photo_leaves_no_specks_of_its_old_backdrop_along_the_outline() -> None:
    # JPEG rings and bleeds colour a few pixels into the white backdrop beside the red
    # mug; kept solid, those pixels would show as white specks on a dark backdrop.
    photo = Image.open(io.BytesIO(sample_jpeg_bytes("mug")))
    cutout = np.asarray(remove_background(photo)).astype(np.int32)
    light_and_solid = (cutout[..., 3] > 128) & (cutout[..., :3].mean(axis=2) > 200)
    assert int(light_and_solid.sum()) < 40
