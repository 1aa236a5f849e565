"""Scene composites on the local engine: backdrops, placement, shadow, light, detail
transfer, output sizes and formats, bad input, and the jobs that run them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from jobs import catalog, samples, services, tasks
from jobs.engines.local import EngineError, scenes
from jobs.engines.local.scenes.product import _outline_specks_mend
from jobs.engines.local.scenes.textures import _surface_texture
from jobs.models import AssetKind, Job, JobStatus, Preset
from tests.support.photos import backdrop_only_png

AIPP = "ai-product-photography"
SCENECRAFT = "segmind-scenecraft-v01"
QWEN = "qwen-image-edit-plus-product-photography"
PACKSHOT = "bria-product-packshot"


def _product(width: int = 400, height: int = 400) -> Image.Image:
    """A red box on a light grey studio backdrop: its cut-out is exactly the box."""
    image = Image.new("RGB", (width, height), (232, 232, 234))
    box = (width // 4, height // 4, 3 * width // 4, 3 * height // 4)
    image.paste((200, 30, 40), box)
    return image


def _red_box(image: Image.Image) -> tuple[int, int, int, int]:
    """Bounding box of the red product of `_product` in a composite."""
    arr = np.asarray(image, np.int16)
    ys, xs = np.nonzero((arr[..., 0] > 150) & (arr[..., 1] < 80))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _request(**kwargs: Any) -> scenes.SceneRequest:
    values: dict[str, Any] = {"width": 640, "height": 480, "backdrop": "grey-sweep"}
    values.update(kwargs)
    return scenes.SceneRequest(**values)


# -- backdrops -------------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(scenes.BACKDROPS))
def test_every_backdrop_is_drawn_at_the_size_asked_without_flat_areas(slug: str) -> None:
    image = scenes.backdrop_render(slug, (300, 200), seed=1)
    assert image.mode == "RGB" and image.size == (300, 200)
    pixels = np.asarray(image, np.float32)
    # A drawn backdrop has light and depth: top and bottom, or centre and corners, differ.
    assert pixels.std(axis=(0, 1)).max() > 2.0


def test_a_backdrop_is_the_same_for_a_seed_and_a_textured_one_differs_between_seeds() -> None:
    one = np.asarray(scenes.backdrop_render("marble-tabletop", (300, 200), seed=1))
    again = np.asarray(scenes.backdrop_render("marble-tabletop", (300, 200), seed=1))
    other = np.asarray(scenes.backdrop_render("marble-tabletop", (300, 200), seed=2))
    assert np.array_equal(one, again)
    assert not np.array_equal(one, other)


def test_a_tabletop_puts_its_surface_under_the_products_base() -> None:
    high = np.asarray(scenes.backdrop_render("wood-tabletop", (400, 400), floor=0.5), np.float32)
    low = np.asarray(scenes.backdrop_render("wood-tabletop", (400, 400), floor=0.95), np.float32)
    # Row 70 % of the way down is wooden table for a product standing at mid-height,
    # and pale wall for one standing near the bottom.
    assert high[280].mean() < low[280].mean() - 30


def test_an_unknown_backdrop_is_refused_by_name() -> None:
    with pytest.raises(EngineError) as raised:
        scenes.backdrop_render("moon-surface", (100, 100))
    assert raised.value.code == "unknown_backdrop"
    assert "moon-surface" in raised.value.message


# -- placing the product ---------------------------------------------------------------


@pytest.mark.parametrize(("x", "y"), [(50, 50), (30, 60), (70, 40)])
def test_the_products_centre_is_at_x_value_and_y_value(x: float, y: float) -> None:
    req = _request(x_value=x, y_value=y, scale=0.4, dropshadow=False, lighting=False)
    box = _red_box(scenes.compose_scene(_product(), req))
    centre_x = (box[0] + box[2]) / 2 / req.width * 100
    centre_y = (box[1] + box[3]) / 2 / req.height * 100
    assert abs(centre_x - x) < 1.5 and abs(centre_y - y) < 1.5


@pytest.mark.parametrize("scale", [0.3, 0.6, 0.9])
def test_scale_is_the_products_longer_side_relative_to_the_canvas(scale: float) -> None:
    req = _request(width=600, height=600, scale=scale, y_value=50, dropshadow=False, lighting=False)
    box = _red_box(scenes.compose_scene(_product(), req))
    side = max(box[2] - box[0], box[3] - box[1])
    assert abs(side / 600 - scale) < 0.02


def test_a_product_placed_past_the_edge_is_slid_back_into_the_frame() -> None:
    req = _request(x_value=1, y_value=99, scale=0.5, dropshadow=False, lighting=False)
    left, top, _right, bottom = _red_box(scenes.compose_scene(_product(), req))
    assert left <= 1 and bottom >= req.height - 1
    # The whole product is there: 50 % of 480 high, square.
    assert abs((bottom - top) - 240) <= 3


def test_the_drop_shadow_darkens_the_floor_under_the_product_only_when_asked() -> None:
    on = scenes.compose_scene(_product(), _request(dropshadow=True, lighting=False, y_value=50))
    off = scenes.compose_scene(_product(), _request(dropshadow=False, lighting=False, y_value=50))
    # Just below the product's base: 288 px square, centred, so rows 96 to 384.
    below = (slice(386, 398), slice(200, 440))
    darker = np.asarray(off, np.float32)[below].mean() - np.asarray(on, np.float32)[below].mean()
    assert darker > 8
    far = (slice(10, 40), slice(10, 60))
    assert np.array_equal(np.asarray(on)[far], np.asarray(off)[far])


def _mug_alpha() -> np.ndarray:
    cutout = scenes.product_layer(
        Image.open(io.BytesIO(samples.sample_jpeg_bytes("mug"))), _request(scale=0.6)
    )[0]
    return np.asarray(cutout.getchannel("A"))


@pytest.mark.parametrize("light_from", ["left", "right"])
def test_the_shadow_fades_out_inside_its_layer_so_it_is_never_clipped(light_from: str) -> None:
    layer = scenes.shadow_layer(_mug_alpha(), light_from)
    opacity = layer.opacity
    assert opacity.max() > 0.5
    edges = np.concatenate([opacity[0], opacity[-1], opacity[:, 0], opacity[:, -1]])
    assert edges.max() < 1 / 255


def test_the_shadow_is_darkest_along_the_products_base_and_follows_its_footprint() -> None:
    alpha = np.zeros((200, 300), np.uint8)
    alpha[:, 40:120] = 255  # a tall block on the left ...
    alpha[120:, 200:260] = 255  # ... and a short one on the right; a gap between them
    layer = scenes.shadow_layer(alpha, "left")
    ox, oy = layer.offset
    base_row = round((200 - oy) * layer.scale)
    row = layer.opacity[base_row]

    def at(x: float) -> float:
        return float(row[round((x - ox) * layer.scale)])

    assert at(80) > 0.6 and at(230) > 0.6
    assert at(160) < 0.5 * at(80)  # the gap between the feet stays lighter
    # It falls off in front of the base, softly (no step from one row to the next).
    column = layer.opacity[:, round((80 - ox) * layer.scale)]
    assert column[base_row + 3] < column[base_row]
    assert np.abs(np.diff(column)).max() < 0.35


def test_the_composed_product_has_no_specks_or_dashed_rows_under_its_base() -> None:
    alpha = np.zeros((300, 300), np.uint8)
    alpha[50:250, 60:240] = 255
    alpha[252:254, 70:230:6] = 230  # a dashed line under the base
    alpha[253, 71:230:6] = 230
    alpha[250, 60:240] = 40  # a faint row under it
    alpha[20:23, 10:13] = 255  # specks away from the product
    alpha[280, 280] = 60
    cleaned = scenes.product_alpha_clean(alpha)
    assert cleaned[50:250].tolist() == alpha[50:250].tolist()  # the product is untouched
    assert not cleaned[250:].any() and not cleaned[:50].any()


def test_a_light_fleck_of_the_old_backdrop_on_the_outline_takes_the_products_colour() -> None:
    rgba = np.zeros((82, 82, 4), np.uint8)  # the product's layer, cropped to it
    rgba[1:81, 1:81] = (150, 20, 30, 255)
    rgba[77:81, 1:5, :3] = 235  # a fleck of white backdrop at the foot's corner
    rgba[20:60, 38:42, :3] = 240  # a white stripe inside the product: its own detail
    rgba[1:40, 1:3, :3] = 40  # a dark rim along its side: its own shading
    mended = np.asarray(_outline_specks_mend(Image.fromarray(rgba, "RGBA")))
    assert (np.abs(mended[77:81, 1:5, :3].astype(int) - (150, 20, 30)) < 25).all()
    assert np.array_equal(mended[:77], rgba[:77])
    assert np.array_equal(mended[..., 3], rgba[..., 3])


def test_a_product_in_several_solid_parts_keeps_them_all() -> None:
    alpha = np.zeros((200, 300), np.uint8)
    alpha[40:180, 20:120] = 255
    alpha[100:180, 180:260] = 255  # a second part of the product, not a speck
    assert np.array_equal(scenes.product_alpha_clean(alpha), alpha)


@pytest.mark.parametrize("name", ["sneaker", "mug", "bottle", "lamp"])
def test_the_product_layer_of_a_sample_is_one_piece_without_leftovers(name: str) -> None:
    photo = Image.open(io.BytesIO(samples.sample_jpeg_bytes(name)))
    product, _where = scenes.product_layer(photo, _request(width=960, height=720))
    alpha = np.asarray(product.getchannel("A"))
    count, labels = cv2.connectedComponents((alpha > 0).astype(np.uint8), connectivity=8)
    sizes = np.bincount(labels.ravel())[1:]
    # Every part with any alpha holds solid product: nothing faint floats beside it.
    solid = np.bincount(labels[alpha >= 128].ravel(), minlength=count)[1:]
    assert (solid > 0).all(), sizes
    assert sizes.max() > 0.99 * sizes.sum()
    # The last row is a real base, not a dashed line (the sneaker's had a dozen dashes).
    bottom = (alpha[np.flatnonzero((alpha > 0).any(axis=1))[-1]] > 0).astype(np.int8)
    dashes = int((np.diff(bottom) == 1).sum()) + int(bottom[0])
    assert dashes <= 3


def test_the_podium_is_drawn_under_the_product_and_lit_from_the_light() -> None:
    # The plinth's foot is 20 % of the height below the product's base: the sweep's floor.
    plain = np.asarray(scenes.backdrop_render("pastel-sweep", (600, 600), floor=0.9), np.float32)
    podium = np.asarray(
        scenes.backdrop_render("pastel-podium", (600, 600), floor=0.7, product_width=0.4),
        np.float32,
    )
    # Just under the product's base (row 420) the plinth's body replaces the sweep ...
    assert np.abs(podium[440:470, 250:350] - plain[440:470, 250:350]).mean() > 4
    # ... and far to the side the sweep is unchanged.
    assert np.abs(podium[440:470, 0:40] - plain[440:470, 0:40]).mean() < 1
    # The body is lit from the left: its left half is brighter than its right.
    body = podium[480:500].mean(axis=(0, 2))
    assert body[220:280].mean() > body[340:400].mean() + 5


def test_the_marble_has_thin_veins_on_a_light_base_not_contour_lines() -> None:
    flat = np.asarray(_surface_texture("marble-tabletop", 3), np.float32).mean(axis=2)
    light = np.median(flat)
    assert light > 200
    veins = flat < light - 12
    # Veins are thin and few: a small share of the slab, low contrast.
    assert 0.005 < veins.mean() < 0.12
    assert flat.min() > 120


def test_lighting_warms_the_product_on_a_warm_backdrop_and_cools_it_on_a_cool_one() -> None:
    def red_over_blue(backdrop: str, lighting: bool) -> float:
        grey = Image.new("RGB", (400, 400), (232, 232, 234))
        grey.paste((128, 128, 128), (100, 100, 300, 300))
        req = _request(backdrop=backdrop, lighting=lighting, dropshadow=False, y_value=50)
        pixels = np.asarray(scenes.compose_scene(grey, req), np.float32)[200:280, 290:350]
        return float(pixels[..., 0].mean() / pixels[..., 2].mean())

    assert red_over_blue("warm-gradient", False) == pytest.approx(1.0, abs=0.03)
    assert red_over_blue("warm-gradient", True) > 1.1
    assert red_over_blue("cool-gradient", True) < 0.95


@pytest.mark.parametrize("mode", scenes.DETAILER_MODES)
def test_each_detailer_mode_gives_its_own_result(mode: str) -> None:
    photo = Image.open(io.BytesIO(samples.sample_jpeg_bytes("bottle", width=300, height=300)))
    results = {}
    for each in (mode, "soft_light" if mode != "soft_light" else "multiply"):
        req = _request(width=320, height=320, detailtransfer=True, detailer_mode=each)
        results[each] = np.asarray(scenes.compose_scene(photo, req), np.int16)
    first, second = results.values()
    assert np.abs(first - second).max() > 20


def test_an_unknown_detailer_mode_is_refused_before_any_work() -> None:
    with pytest.raises(EngineError) as raised:
        scenes.compose_scene(_product(), _request(detailtransfer=True, detailer_mode="glow"))
    assert raised.value.code == "invalid_detailer_mode"
    assert "detailer_mode" in raised.value.message


# -- sizes and formats -----------------------------------------------------------------


def test_a_scenecraft_job_is_sized_by_megapixel_and_aspect_ratio_and_upscale_doubles_it() -> None:
    params = {"megapixel": "1.5", "aspect_ratio": "16:9 (Panorama)"}
    req = scenes.scene_request(
        model=SCENECRAFT, params=params, backdrop="grey-sweep", source=(1, 1)
    )
    assert (req.width, req.height) == catalog.output_size(1.5, "16:9")
    doubled = scenes.scene_request(
        model=SCENECRAFT, params={**params, "upscale": True}, backdrop="grey-sweep", source=(1, 1)
    )
    assert (doubled.width, doubled.height) == (req.width * 2, req.height * 2)


@pytest.mark.parametrize(
    ("ratio", "source", "expected"),
    [("1:1", (10, 10), 1.0), ("16:9", (10, 10), 16 / 9), ("match_input_image", (300, 200), 1.5)],
)
def test_qwen_outputs_about_a_megapixel_at_its_ratio_or_the_inputs(
    ratio: str, source: tuple[int, int], expected: float
) -> None:
    width, height = scenes.qwen_size(ratio, source)
    assert width % 16 == 0 and height % 16 == 0
    assert width / height == pytest.approx(expected, rel=0.03)
    assert 0.95e6 < width * height < 1.05e6


def test_a_strip_shaped_input_does_not_make_a_strip_shaped_qwen_canvas() -> None:
    width, height = scenes.qwen_size("match_input_image", (10000, 100))
    assert width / height <= 4.1 and height >= 400


@pytest.mark.parametrize(("fmt", "pillow"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_the_output_is_encoded_in_the_format_asked(fmt: str, pillow: str) -> None:
    data = scenes.encode(_product(), image_format=fmt, quality=80)
    assert Image.open(io.BytesIO(data)).format == pillow


def test_a_lower_quality_gives_a_smaller_jpeg() -> None:
    photo = scenes.compose_scene(_product(), _request())
    low = scenes.encode(photo, image_format="jpeg", quality=20)
    high = scenes.encode(photo, image_format="jpeg", quality=95)
    assert len(low) < len(high) * 0.6


# -- bad input -------------------------------------------------------------------------


def test_a_blank_photo_fails_clearly() -> None:
    with pytest.raises(EngineError) as raised:
        scenes.compose_scene(Image.new("RGB", (300, 300), (240, 240, 240)), _request())
    assert raised.value.code == "empty_image"


def test_a_one_pixel_photo_fails_clearly() -> None:
    with pytest.raises(EngineError) as raised:
        scenes.compose_scene(Image.new("RGB", (1, 1), (200, 0, 0)), _request())
    assert raised.value.code == "image_too_small"


def test_a_product_filling_the_frame_is_placed_whole() -> None:
    # A close-up: blue and yellow stripes to every edge, no backdrop anywhere.
    full = Image.new("RGB", (300, 200), (30, 90, 200))
    for x in range(0, 300, 40):
        full.paste((230, 200, 40), (x, 0, x + 20, 200))
    scene = scenes.compose_scene(full, _request(dropshadow=False, lighting=False, scale=0.5))
    arr = np.asarray(scene, np.int16)
    stripes = ((arr[..., 2] > 150) & (arr[..., 0] < 80)) | (
        (arr[..., 0] > 190) & (arr[..., 2] < 90)
    )
    xs = np.nonzero(stripes)[1]
    # 0.5 x 640, its longer side; the outermost pixels may soften into the backdrop.
    assert abs((xs.max() - xs.min() + 1) - 320) <= 10


def test_a_long_strip_is_placed_as_a_thin_product() -> None:
    strip = Image.new("RGB", (10000, 100), (235, 235, 235))
    strip.paste((20, 20, 20), (200, 30, 9800, 70))
    scene = scenes.compose_scene(strip, _request(lighting=False))
    dark = np.asarray(scene.convert("L")) < 60
    ys, xs = np.nonzero(dark)
    assert xs.max() - xs.min() > 300 and ys.max() - ys.min() < 20


@pytest.mark.parametrize("mode", ["P", "CMYK", "I;16", "LA"])
def test_palette_cmyk_16_bit_and_grey_alpha_photos_are_composed(mode: str) -> None:
    photo = _product()
    if mode == "I;16":
        grey = np.asarray(photo.convert("L"), np.uint16) * 257
        converted = Image.fromarray(grey.astype("<u2"))
    else:
        converted = photo.convert(mode)
    scene = scenes.compose_scene(converted, _request())
    assert scene.size == (640, 480)


def test_an_already_cut_out_product_keeps_its_own_outline() -> None:
    cutout = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    # White on a transparent ground: removal would lose it against a white guess.
    cutout.paste((250, 250, 250, 255), (100, 50, 200, 250))
    req = _request(backdrop="warm-gradient", lighting=False, dropshadow=False, y_value=50)
    scene = np.asarray(scenes.compose_scene(cutout, req).convert("L"))
    ys = np.nonzero(scene > 200)[0]
    assert abs((ys.max() - ys.min() + 1) - 0.6 * 480) <= 3


# -- jobs ------------------------------------------------------------------------------


PROMPT = "The product on a table in a bright room"


def _submit(tenant, owner, model: str, data: bytes, **kwargs: Any) -> Job:
    upload = SimpleUploadedFile("photo.jpg", data, content_type="image/jpeg")
    if model != PACKSHOT and "preset" not in kwargs:
        kwargs["params"] = {"prompt": PROMPT, **kwargs.get("params", {})}
    return services.job_submit(tenant=tenant, user=owner, model=model, upload=upload, **kwargs)


@pytest.mark.parametrize(
    ("model", "fmt", "size"),
    [
        (AIPP, "PNG", catalog.output_size(1.0, "8:5")),
        (SCENECRAFT, "JPEG", catalog.output_size(1.5, "16:9")),
        (QWEN, "WEBP", scenes.qwen_size("match_input_image", (400, 300))),
    ],
)
def test_each_scene_model_runs_on_the_local_engine_with_its_default_format_and_size(
    tenant, owner, product_jpeg, model: str, fmt: str, size: tuple[int, int]
) -> None:
    job = _submit(tenant, owner, model, product_jpeg)
    assert job.engine == "local"
    assert tasks.job_run(str(job.id)) is True
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    output = job.assets.get(kind=AssetKind.OUTPUT)
    assert (output.format, output.width, output.height) == (fmt, *size)
    # The prompt is kept on the job, though the local engine does not follow it.
    assert job.params["prompt"] == PROMPT


def test_the_prompts_words_choose_the_backdrop_without_a_preset(tenant, owner, product_jpeg):
    job = _submit(
        tenant, owner, SCENECRAFT, product_jpeg, params={"prompt": "On a sunny garden table"}
    )
    assert job.backdrop == "outdoor"
    plain = _submit(tenant, owner, SCENECRAFT, product_jpeg, params={"prompt": "A product"})
    assert plain.backdrop == scenes.DEFAULT_BACKDROP


def test_a_presets_backdrop_wins_over_the_prompt(tenant, owner, product_jpeg):
    preset = Preset.objects.system().get(slug="aipp-marble-kitchen")
    assert "garden" not in preset.params["prompt"]
    job = _submit(
        tenant, owner, AIPP, product_jpeg, preset=preset, params={"prompt": "In a garden"}
    )
    assert job.backdrop == "marble-tabletop"


def test_a_packshot_job_has_no_backdrop(tenant, owner, product_jpeg):
    assert _submit(tenant, owner, PACKSHOT, product_jpeg).backdrop == ""


def test_the_image_format_and_quality_of_the_job_are_honoured(tenant, owner, product_jpeg):
    sizes = {}
    for quality in (20, 95):
        job = _submit(
            tenant,
            owner,
            AIPP,
            product_jpeg,
            params={"image_format": "jpeg", "image_quality": quality, "megapixel": "0.5"},
        )
        tasks.job_run(str(job.id))
        output = job.assets.get(kind=AssetKind.OUTPUT)
        assert output.format == "JPEG"
        sizes[quality] = output.byte_size
    assert sizes[20] < sizes[95] * 0.6


def test_a_blank_photo_fails_a_scene_job_with_a_clear_message(tenant, owner):
    job = _submit(tenant, owner, SCENECRAFT, backdrop_only_png())
    tasks.job_run(str(job.id))
    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "empty_image")
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()


def test_the_job_page_names_the_backdrop_and_says_prompts_are_not_followed(
    owner_client, tenant, owner, product_jpeg
):
    job = _submit(tenant, owner, SCENECRAFT, product_jpeg, params={"prompt": "marble bathroom"})
    tasks.job_run(str(job.id))
    page = owner_client.get(reverse("job_detail", args=[tenant.slug, job.id])).content.decode()
    assert "White marble tabletop" in page
    assert "prompts are recorded here but not followed" in page


# -- bria's force_rmbg -----------------------------------------------------------------


def _cutout_with_a_white_tab() -> bytes:
    """A cut-out red box with a white tab: kept as given, the tab is product; cut out
    again on white, it is background."""
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    image.paste((200, 30, 40, 255), (100, 100, 300, 300))
    image.paste((255, 255, 255, 255), (300, 180, 360, 220))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _packshot_opaque_width(tenant, owner, force: bool) -> int:
    job = _submit(
        tenant,
        owner,
        PACKSHOT,
        _cutout_with_a_white_tab(),
        params={"background_color": "transparent", "force_rmbg": force},
    )
    tasks.job_run(str(job.id))
    output = job.assets.get(kind=AssetKind.OUTPUT)
    with output.file.open("rb") as fh:
        alpha = np.asarray(Image.open(fh).getchannel("A"))
    cols = np.flatnonzero((alpha > 128).any(axis=0))
    rows = np.flatnonzero((alpha > 128).any(axis=1))
    # Rounded: the shorter side is a whole number of pixels (1308 for 1700 x 200 / 260).
    return round((cols.max() - cols.min() + 1) * 1000 / (rows.max() - rows.min() + 1))


def test_force_rmbg_cuts_an_already_cut_out_image_again(tenant, owner):
    kept = _packshot_opaque_width(tenant, owner, force=False)
    recut = _packshot_opaque_width(tenant, owner, force=True)
    # Width over height: 260 / 200 with the white tab, 200 / 200 without it.
    assert kept == 1300
    assert recut == 1000


# -- a shop's own presets --------------------------------------------------------------


def test_a_shops_preset_keeps_the_backdrop_chosen_in_its_form(owner_client, tenant):
    url = reverse("preset_new", args=[tenant.slug]) + f"?model={AIPP}"
    page = owner_client.get(url).content.decode()
    assert "Backdrop on the local engine" in page and "Garden table in daylight" in page
    response = owner_client.post(
        url, {"name": "Garden", "backdrop": "outdoor", f"param-{AIPP}-prompt": "A garden"}
    )
    assert response.status_code == 302
    assert Preset.objects.for_tenant(tenant).get(name="Garden").backdrop == "outdoor"


def test_a_packshot_presets_form_has_no_backdrop(owner_client, tenant):
    url = reverse("preset_new", args=[tenant.slug]) + f"?model={PACKSHOT}"
    assert "Backdrop on the local engine" not in owner_client.get(url).content.decode()


def test_a_preset_with_an_unknown_backdrop_is_refused_by_name(tenant, owner):
    with pytest.raises(services.PresetError) as raised:
        services.preset_create(
            tenant=tenant,
            user=owner,
            model=AIPP,
            name="Moon",
            params={"prompt": "On the moon"},
            backdrop="moon-surface",
        )
    assert "moon-surface" in raised.value.errors["backdrop"]
    assert not Preset.objects.for_tenant(tenant).exists()


# -- system presets keep their word ------------------------------------------------------

# What a system preset's name says, and the backdrop that says it (first match wins).
NAME_BACKDROPS = (
    ("podium", "pastel-podium"),
    ("blush", "pastel-sweep"),
    ("holiday", "holiday-table"),
    ("bathroom", "bathroom-shelf"),
    ("marble", "marble-tabletop"),
    ("living room", "living-room"),
    ("interior", "living-room"),
    ("outdoor", "outdoor"),
    ("daylight", "outdoor"),
    ("dark luxury", "warm-gradient"),
    ("hero", "cool-gradient"),
    ("light grey", "grey-sweep"),
    ("white", "white-sweep"),
    ("catalogue", "white-sweep"),
    ("transparent", "transparent"),
)


def _named_backdrop(name: str) -> str:
    lowered = name.lower()
    return next(slug for word, slug in NAME_BACKDROPS if word in lowered)


def _system_presets() -> list[dict[str, Any]]:
    path = Path(catalog.__file__).parent / "system_presets.json"
    return list(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("preset", _system_presets(), ids=lambda p: p["slug"])
def test_each_system_presets_backdrop_is_the_one_its_name_says(preset: dict[str, Any]) -> None:
    spec = catalog.model(preset["model"])
    if spec.composed_locally:
        # The path a job takes: the preset's backdrop, or its prompt's words.
        chosen = scenes.backdrop_choose(
            preset_backdrop=preset["backdrop"], prompt=str(preset["params"].get("prompt", ""))
        )
    else:
        chosen = preset["backdrop"]
    assert chosen == _named_backdrop(preset["name"])


def test_system_scene_presets_whose_names_differ_in_kind_look_different() -> None:
    drawn: dict[str, np.ndarray] = {}
    for preset in _system_presets():
        if catalog.model(preset["model"]).composed_locally:
            slug = preset["backdrop"]
            image = scenes.backdrop_render(slug, (240, 180), floor=0.8, seed=5)
            drawn[slug] = np.asarray(image.resize((24, 18), Image.Resampling.BOX), np.float32)
    assert len(drawn) >= 8
    slugs = sorted(drawn)
    for i, one in enumerate(slugs):
        for other in slugs[i + 1 :]:
            # The same wood-and-beige scene three times over was the bug.
            assert np.abs(drawn[one] - drawn[other]).mean() > 6, (one, other)


def test_the_new_job_page_and_the_job_page_say_the_local_engine_composes(
    owner_client, tenant, owner, product_jpeg
):
    page = owner_client.get(reverse("job_new", args=[tenant.slug])).content.decode()
    assert "Composed on a backdrop by the local engine" in page
    assert "composes the image on your machine. It does not generate new scenes" in page
    job = _submit(tenant, owner, SCENECRAFT, product_jpeg)
    tasks.job_run(str(job.id))
    page = owner_client.get(reverse("job_detail", args=[tenant.slug, job.id])).content.decode()
    assert "composes the image and does not generate" in page


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [
        ("A Christmas table with gift boxes", "holiday-table"),
        ("on a round podium in pale peach", "pastel-podium"),
        ("a spa bathroom shelf", "bathroom-shelf"),
        ("a polished marble countertop", "marble-tabletop"),
        ("a blush pink paper sweep", "pastel-sweep"),
    ],
)
def test_a_prompts_words_pick_the_backdrop_that_draws_them(prompt: str, slug: str) -> None:
    assert scenes.backdrop_choose(preset_backdrop="", prompt=prompt) == slug
