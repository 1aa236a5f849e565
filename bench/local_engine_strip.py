"""The README's before / after strip: sample photos through the local engine.

Run: `.venv/bin/python -m bench.local_engine_strip [path]` (default
`bench/local_engine_strip.png`). Each row is one of the project's synthetic product
photos (`jobs.samples`, JPEG as a shop would upload it); the columns are the photo, the
cut-out on a checkerboard, the marketplace packshot, and two scene composites.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from jobs import samples
from jobs.engines import local as local_engine
from jobs.engines.local import scenes

ROWS = (
    ("mug", "marble-tabletop"),
    ("bottle", "living-room"),
    ("white-on-white", "warm-gradient"),
    ("lamp", "outdoor"),
    ("sneaker", "pastel-sweep"),
    ("dark-on-dark", "wood-tabletop"),
)
TILE = 180
LABEL = 22
COLUMNS = ("photo", "cut-out", "packshot", "scene 4:5", "scene 16:9")
DEFAULT_PATH = Path(__file__).with_name("local_engine_strip.png")


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
    for row, (name, backdrop) in enumerate(ROWS):
        photo = Image.open(io.BytesIO(samples.sample_jpeg_bytes(name, width=800, height=800)))
        photo.load()
        tall = scenes.SceneRequest(width=576, height=704, backdrop=backdrop, y_value=60, seed=row)
        wide = scenes.SceneRequest(width=896, height=512, backdrop=backdrop, x_value=40, seed=row)
        tiles = (
            photo,
            local_engine.remove_background(photo),
            local_engine.make_packshot(photo, size=800),
            scenes.compose_scene(photo, tall),
            scenes.compose_scene(photo, wide),
        )
        for col, image in enumerate(tiles):
            sheet.paste(_tile(image), (col * TILE, LABEL + row * TILE))
    return sheet


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    # A 256-colour palette keeps the committed file small; the strip is an illustration.
    strip().quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
