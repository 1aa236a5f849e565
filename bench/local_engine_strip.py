"""The README's before / after strip: product photos through the local engine.

Run: `.venv/bin/python -m bench.local_engine_strip [path]` (default
`bench/local_engine_strip.png`). The columns are the photo, the cut-out on a
checkerboard, the marketplace packshot, and two scene composites. The rows:

* real photographs shipped inside scikit-image's wheel, with no mask, chosen because a
  shop could have taken them: `coffee` (a cup and saucer on a wooden table, the classic
  product shot), `motorcycle_left` cropped to the bike (a used-goods listing shot in a
  cluttered garage) and `rocket` (a tall, thin object on a busy night background: the
  engine's hardest kind). The other bundled photos are textures, people, animals or
  blurred (`clock_motion`), not products;
* two of the project's painted products the engine was not tuned on: a white mug on an
  off-white backdrop (`jobs.samples`) and a wine glass composited on the wood of
  `coffee` (`jobs.quality_photos`), both JPEG as a shop would upload them.
"""

from __future__ import annotations

import io
import sys
import textwrap
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw

from jobs import samples
from jobs.engines import local as local_engine
from jobs.engines.local import scenes
from jobs.quality_photos import RealBackgroundCase, real_background_set, skimage_photo

# (row label, photo maker, scene backdrop)
ROWS: tuple[tuple[str, Callable[[], Image.Image], str], ...] = (
    ("skimage coffee", lambda: skimage_photo("coffee"), "marble-tabletop"),
    (
        "skimage motorcycle_left",
        lambda: skimage_photo("motorcycle_left").crop((60, 60, 741, 480)),
        "outdoor",
    ),
    ("skimage rocket", lambda: skimage_photo("rocket"), "pastel-sweep"),
    (
        "white mug (painted)",
        lambda: _jpeg(samples.render_sample("white-mug-off-white", width=800, height=800)[0]),
        "living-room",
    ),
    (
        "wine glass on coffee's table",
        lambda: _jpeg(_real_case("coffee-table/wine-glass").render()[0]),
        "wood-tabletop",
    ),
)
TILE = 180
LABEL = 22
COLUMNS = ("photo", "cut-out", "packshot", "scene 4:5", "scene 16:9")
DEFAULT_PATH = Path(__file__).with_name("local_engine_strip.png")


def _jpeg(image: Image.Image, quality: int = 90) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    decoded.load()
    return decoded


def _run(step: Callable[[Image.Image], Image.Image], photo: Image.Image) -> Image.Image:
    """The engine's output, or a tile with its refusal (e.g. no product found)."""
    try:
        return step(photo)
    except local_engine.EngineError as error:
        tile = Image.new("RGB", (TILE, TILE), (250, 240, 240))
        ImageDraw.Draw(tile).multiline_text((8, 8), textwrap.fill(str(error), 26), fill=(150, 0, 0))
        return tile


def _scene(request: scenes.SceneRequest) -> Callable[[Image.Image], Image.Image]:
    return lambda photo: scenes.compose_scene(photo, request)


def _real_case(prefix: str) -> RealBackgroundCase:
    return next(case for case in real_background_set() if case.label.startswith(prefix))


def _checkerboard(size: tuple[int, int], cell: int = 10) -> Image.Image:
    board = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(board)
    for y in range(0, size[1], cell):
        for x in range((y // cell) % 2 * cell, size[0], 2 * cell):
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(222, 222, 222))
    return board


def _tile(image: Image.Image) -> Image.Image:
    """``image`` fitted into a square tile, on a checkerboard where it is transparent."""
    fitted = image.copy()
    fitted.thumbnail((TILE, TILE), Image.Resampling.LANCZOS)
    tile = (
        _checkerboard((TILE, TILE))
        if fitted.mode == "RGBA"
        else Image.new("RGB", (TILE, TILE), (255, 255, 255))
    )
    offset = ((TILE - fitted.width) // 2, (TILE - fitted.height) // 2)
    tile.paste(fitted, offset, fitted if fitted.mode == "RGBA" else None)
    return tile


def strip() -> Image.Image:
    sheet = Image.new("RGB", (TILE * len(COLUMNS), LABEL + TILE * len(ROWS)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(COLUMNS):
        draw.text((col * TILE + 8, 5), title, fill=(60, 60, 70))
    for row, (label, make_photo, backdrop) in enumerate(ROWS):
        photo = make_photo().convert("RGB")
        tall = scenes.SceneRequest(width=576, height=704, backdrop=backdrop, y_value=60, seed=row)
        wide = scenes.SceneRequest(width=896, height=512, backdrop=backdrop, x_value=40, seed=row)
        tiles = (
            photo,
            _run(local_engine.remove_background, photo),
            _run(partial(local_engine.make_packshot, size=800), photo),
            _run(_scene(tall), photo),
            _run(_scene(wide), photo),
        )
        for col, image in enumerate(tiles):
            sheet.paste(_tile(image), (col * TILE, LABEL + row * TILE))
        top = LABEL + (row + 1) * TILE - 14
        draw.rectangle((0, top, draw.textlength(label) + 6, top + 14), fill=(255, 255, 255))
        draw.text((3, top + 1), label, fill=(60, 60, 70))
    return sheet


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    # A 256-colour palette keeps the committed file small; the strip is an illustration.
    strip().quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
