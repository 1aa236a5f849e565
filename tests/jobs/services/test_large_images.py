"""Large photos (49 megapixels, a few hundred kilobytes on disk) cost bounded memory: the
web process accepts them without decoding their pixels, and a worker decodes them no
larger than the local engine needs, a set number at a time."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image, ImageDraw, ImageFile

from accounts.models import Tenant
from jobs import images, services
from jobs.models import Job, JobStatus
from tests.support.api_helpers import assert_problem, key_client

PACKSHOT = "bria-product-packshot"
SIDE = 7000  # 49 megapixels
PIXELS = SIDE * SIDE
# A JPEG's smallest DCT scale is 1/8 a side: 1/64 of the pixels.
REDUCED = PIXELS // 64 + 2 * SIDE // 8 + 1


def _photo(width: int, height: int) -> Image.Image:
    """A red product on a light grey backdrop: flat, so it compresses to little."""
    image = Image.new("RGB", (width, height), (236, 236, 236))
    ImageDraw.Draw(image).rectangle(
        (width // 3, height // 4, 2 * width // 3, 3 * height // 4), fill=(200, 30, 30)
    )
    return image


def _encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return _encoded(_photo(SIDE, SIDE), "PNG", compress_level=1)


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return _encoded(_photo(SIDE, SIDE), "JPEG", quality=85)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every image Pillow decodes from a file (after any reduced scale)."""
    seen: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> Any:
        if self.tile:  # tiles left means pixels are about to be decoded
            seen.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return seen


def _largest(decodes: list[tuple[int, int]]) -> int:
    return max((w * h for w, h in decodes), default=0)


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


def test_a_49_megapixel_png_from_a_url_is_accepted_without_decoding_its_pixels(
    api: Client, http_server: Any, big_png: bytes, decodes: list[tuple[int, int]]
):
    assert len(big_png) < 2_000_000
    url = http_server.route("/big.png", big_png, Content_Type="image/png")

    response = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image_url": url}, content_type="application/json"
    )

    assert response.status_code == 201, response.content
    assert decodes == []
    job = Job.objects.select_related("input_asset").get()
    assert job.input_asset is not None
    assert (job.input_asset.width, job.input_asset.height) == (SIDE, SIDE)
    # Its thumbnail would need every pixel: the worker that runs the job makes it.
    assert not job.input_asset.thumbnail


def test_a_batch_of_49_megapixel_pngs_is_accepted_without_decoding_their_pixels(
    api: Client, http_server: Any, big_png: bytes, decodes: list[tuple[int, int]]
):
    urls = [http_server.route(f"/big-{n}.png", big_png) for n in range(4)]

    response = api.post(
        "/api/v1/batches",
        {"model": PACKSHOT, "items": [{"image_url": url} for url in urls]},
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    assert decodes == []
    assert Job.objects.filter(input_asset__width=SIDE, input_asset__height=SIDE).count() == 4


def test_a_49_megapixel_jpeg_upload_is_accepted_with_a_decode_at_one_eighth_scale(
    api: Client, big_jpeg: bytes, decodes: list[tuple[int, int]]
):
    upload = SimpleUploadedFile("big.jpg", big_jpeg, content_type="image/jpeg")

    response = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})

    assert response.status_code == 201, response.content
    assert decodes
    assert _largest(decodes) <= REDUCED
    job = Job.objects.select_related("input_asset").get()
    assert job.input_asset is not None
    assert (job.input_asset.width, job.input_asset.height) == (SIDE, SIDE)
    with Image.open(job.input_asset.thumbnail.open("rb")) as thumb:
        assert max(thumb.size) == images.THUMBNAIL_SIDE


def test_a_large_rotated_jpeg_is_stored_upright_from_a_half_scale_decode(
    api: Client, decodes: list[tuple[int, int]]
):
    # Shot sideways: stored 7001 x 5001 with orientation 6 (turn 90° clockwise to view);
    # odd sides, as a half-scale decode rounds them up.
    sideways = _photo(SIDE + 1, 5001)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encoded(sideways, "JPEG", quality=85, exif=exif.tobytes())
    upload = SimpleUploadedFile("sideways.jpg", data, content_type="image/jpeg")

    response = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})

    assert response.status_code == 201, response.content
    assert _largest(decodes) == 3501 * 2501
    asset = Job.objects.select_related("input_asset").get().input_asset
    assert asset is not None
    assert (asset.width, asset.height) == (2501, 3501)
    with Image.open(asset.file.open("rb")) as stored:
        assert stored.size == (2501, 3501)
        assert stored.getexif().get(0x0112, 1) == 1


def test_a_progressive_large_jpeg_is_checked_in_a_decode_slot_as_it_holds_every_coefficient(
    big_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
):
    progressive = _encoded(_photo(SIDE, SIDE), "JPEG", quality=85, progressive=True)
    asked: list[tuple[int, int]] = []
    original = images.large_decode_slot

    def slot(size: tuple[int, int], **options: Any) -> Any:
        asked.append(size)
        return original(size, **options)

    monkeypatch.setattr(images, "large_decode_slot", slot)

    images.inspect_image(progressive)
    assert asked == [(SIDE, SIDE)]
    asked.clear()
    images.inspect_image(big_jpeg)
    # A baseline JPEG at 1/8 scale holds only that: it needs no slot.
    assert asked == [(SIDE // 8, SIDE // 8)]
    assert not images.is_large(*asked[0])


@pytest.fixture(scope="module")
def large_webp() -> bytes:
    return _encoded(_photo(5000, 4000), "WEBP", quality=80, method=0)


def test_a_large_webp_upload_is_accepted_from_its_chunks_without_a_decode(
    api: Client, large_webp: bytes, decodes: list[tuple[int, int]]
):
    upload = SimpleUploadedFile("big.webp", large_webp, content_type="image/webp")

    response = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})

    assert response.status_code == 201, response.content
    assert decodes == []
    asset = Job.objects.select_related("input_asset").get().input_asset
    assert asset is not None
    assert (asset.format, asset.width, asset.height) == ("WEBP", 5000, 4000)


def test_a_truncated_large_webp_is_refused(api: Client, large_webp: bytes):
    upload = SimpleUploadedFile("cut.webp", large_webp[: len(large_webp) - 100])

    response = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})

    body = assert_problem(response, 400, "not_an_image")
    assert "image" in body["errors"]
    assert not Job.objects.exists()


def _png_with_idat(data: bytes, idat: bytes) -> bytes:
    """`data` with its image data replaced, every chunk's checksum still right."""
    pos, chunks = 8, []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    out, replaced = [data[:8]], False
    for kind, body in chunks:
        if kind == b"IDAT":
            if replaced:
                continue
            body, replaced = idat, True
        out.append(struct.pack(">I", len(body)) + kind + body)
        out.append(struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(out)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="rows-missing"),
        pytest.param(lambda raw: raw + b"\x00" * 100, id="rows-extra"),
        pytest.param(lambda raw: b"\x07" + raw[1:], id="bad-filter"),
    ],
)
def test_a_large_png_whose_pixel_data_is_wrong_is_refused_though_its_checksums_hold(
    api: Client, http_server: Any, damage: Any, decodes: list[tuple[int, int]]
):
    width, height = 5000, 4000
    good = _encoded(_photo(width, height), "PNG", compress_level=1)
    raw = b"".join(b"\x00" + bytes([236, 236, 236]) * width for _ in range(height))
    data = _png_with_idat(good, zlib.compress(damage(raw), 1))
    url = http_server.route("/broken.png", data, Content_Type="image/png")

    response = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image_url": url}, content_type="application/json"
    )

    body = assert_problem(response, 400, "not_an_image")
    assert "image_url" in body["errors"]
    assert decodes == []
    assert not Job.objects.exists()


def test_a_truncated_large_jpeg_is_refused(api: Client, big_jpeg: bytes):
    upload = SimpleUploadedFile("cut.jpg", big_jpeg[: len(big_jpeg) // 2])

    response = api.post("/api/v1/jobs", {"model": PACKSHOT, "image": upload})

    body = assert_problem(response, 400, "not_an_image")
    assert "image" in body["errors"]
    assert not Job.objects.exists()


def _submitted(api: Client, http_server: Any, data: bytes, name: str) -> Job:
    url = http_server.route(f"/{name}", data)
    response = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image_url": url}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return Job.objects.get(pk=response.json()["id"])


def _assert_red_product_on_white(job: Job) -> None:
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    output = job.assets.get(kind="output")
    with Image.open(output.file.open("rb")) as result:
        result.load()
    assert result.size == (2000, 2000)
    red, green, blue = result.convert("RGB").getpixel((1000, 1000))  # type: ignore[misc]
    assert red > 150 and green < 80 and blue < 80
    assert result.convert("RGB").getpixel((10, 10)) == (255, 255, 255)


def test_the_worker_shrinks_a_49_megapixel_png_to_its_working_size_and_makes_its_thumbnail(
    api: Client,
    http_server: Any,
    big_png: bytes,
    settings: Any,
    packshot_inputs_recorded: list[tuple[int, int]],
):
    job = _submitted(api, http_server, big_png, "big.png")

    assert services.job_run(job_id=job.pk)
    engine_inputs = packshot_inputs_recorded

    assert engine_inputs == [(settings.IMAGE_WORK_MAX_SIDE, settings.IMAGE_WORK_MAX_SIDE)]
    _assert_red_product_on_white(job)
    assert job.input_asset is not None
    job.input_asset.refresh_from_db()
    with Image.open(job.input_asset.thumbnail.open("rb")) as thumb:
        assert thumb.size == (images.THUMBNAIL_SIDE, images.THUMBNAIL_SIDE)


def test_the_worker_decodes_a_49_megapixel_jpeg_at_a_reduced_scale(
    api: Client,
    http_server: Any,
    big_jpeg: bytes,
    settings: Any,
    packshot_inputs_recorded: list[tuple[int, int]],
    decodes: list[tuple[int, int]],
):
    job = _submitted(api, http_server, big_jpeg, "big.jpg")
    decodes.clear()

    assert services.job_run(job_id=job.pk)
    engine_inputs = packshot_inputs_recorded

    # Half scale (3500 px) is the smallest DCT scale at least the working size.
    assert decodes[0] == (SIDE // 2, SIDE // 2)
    assert engine_inputs == [(settings.IMAGE_WORK_MAX_SIDE, settings.IMAGE_WORK_MAX_SIDE)]
    _assert_red_product_on_white(job)


def test_an_ordinary_photo_is_decoded_whole_and_not_resized(product_jpeg: bytes):
    image = images.open_image(product_jpeg, max_side=3000)

    assert image.size == (400, 300)


def _exif_moved_after_pixels(data: bytes) -> bytes:
    """A PNG with its eXIf chunk after the image data, as some writers put it."""
    pos, chunks = 8, []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append((data[pos + 4 : pos + 8], data[pos : pos + 12 + length]))
        pos += 12 + length
    exif = [raw for kind, raw in chunks if kind == b"eXIf"]
    others = [raw for kind, raw in chunks if kind != b"eXIf"]
    assert exif
    return data[:8] + b"".join(others[:-1] + exif + others[-1:])


def test_a_small_png_whose_exif_follows_its_pixels_is_still_stored_upright():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _exif_moved_after_pixels(_encoded(_photo(60, 40), "PNG", exif=exif.tobytes()))
    assert images.inspect_image(data).width == 40

    upright = images.upright_bytes(data)

    assert upright is not data
    with Image.open(io.BytesIO(upright)) as stored:
        assert stored.size == (40, 60)


def test_a_large_png_whose_exif_follows_its_pixels_keeps_its_tag_and_shows_upright(
    api: Client, http_server: Any, settings: Any, decodes: list[tuple[int, int]]
):
    settings.IMAGE_LARGE_PIXELS = 1_000_000
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = _encoded(_photo(1500, 1000), "PNG", exif=exif.tobytes())
    data = _exif_moved_after_pixels(sideways)
    url = http_server.route("/sideways.png", data)

    response = api.post(
        "/api/v1/jobs", {"model": PACKSHOT, "image_url": url}, content_type="application/json"
    )

    assert response.status_code == 201, response.content
    assert decodes == []
    asset = Job.objects.select_related("input_asset").get().input_asset
    assert asset is not None
    # Stored as sent (tag and all), described as displayed.
    assert (asset.width, asset.height) == (1000, 1500)
    with asset.file.open("rb") as fh:
        assert fh.read() == data
    upright = images.open_image(data, max_side=600)
    assert upright.size == (400, 600)


@pytest.fixture
def slot_holder() -> Iterator[threading.Event]:
    release = threading.Event()
    yield release
    release.set()


def test_a_process_decodes_no_more_large_images_at_once_than_its_limit(
    slot_holder: threading.Event,
):
    inside = threading.Event()

    def hold() -> None:
        with images.large_decode_slot((5000, 5000), large_pixels=1000, limit=1):
            inside.set()
            slot_holder.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(60)
    second_entered = threading.Event()

    def second() -> None:
        with images.large_decode_slot((5000, 5000), large_pixels=1000, limit=1):
            second_entered.set()

    waiting = threading.Thread(target=second)
    waiting.start()
    # A small image needs no slot, even while the large one holds it.
    with images.large_decode_slot((10, 10), large_pixels=1000, limit=1):
        pass
    assert not second_entered.wait(0.5)
    slot_holder.set()
    assert second_entered.wait(60)
    holder.join(60)
    waiting.join(60)


@pytest.mark.parametrize(
    "name", ["IMAGE_LARGE_PIXELS", "IMAGE_LARGE_DECODES", "IMAGE_WORK_MAX_SIDE"]
)
@pytest.mark.parametrize("value", ["lots", "0"])
def test_a_memory_setting_that_is_not_a_positive_number_is_refused_naming_it(name: str, value: str):
    from tests.test_settings import _python

    result = _python("import productstudio.settings", DEBUG="1", **{name: value})

    assert result.returncode != 0
    assert name in result.stderr
