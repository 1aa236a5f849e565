"""Scene composites on the local engine: the cut-out product placed on a backdrop the
project draws itself.

Segmind's scene models generate a new photograph around the product from a prompt. The
local engine cannot generate, so it composes: it cuts the product out
(`local_engine.remove_background`), draws a backdrop chosen by the preset, places the
product at ``x_value`` / ``y_value`` (the product's centre, in percent of the canvas) and
``scale`` (its longer side relative to the canvas), gives it a soft shadow that follows
its base, matches its tone to the backdrop's light and restores its detail with the
chosen blend mode. The prompts are kept on the job, unused. Before it is placed, the
cut-out loses what would show as dirt on a new backdrop (`product_alpha_clean`).

Backdrops are procedural and cheap: smooth parts (walls, sweeps, light pools) are
computed on a coarse grid and upscaled, surfaces (marble, wood) are drawn flat and put in
perspective with one Pillow transform, a podium is computed only in its own box, and a
fine grain hides banding. The job's seed varies the textures, so two seeds give two
different marble slabs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Final, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from jobs import catalog
from jobs.engines.local.errors import EngineError
from jobs.engines.local.matte import remove_background
from jobs.engines.local.packshot import BBOX_ALPHA_THRESHOLD

__all__ = [
    "BACKDROPS",
    "DETAILER_MODES",
    "Backdrop",
    "SceneRequest",
    "ShadowLayer",
    "backdrop_render",
    "compose_scene",
    "product_alpha_clean",
    "product_layer",
    "shadow_layer",
]

FloatArray = NDArray[np.float32]
RGB = tuple[int, int, int]
Surface = Literal["sweep", "podium", "gradient", "marble", "wood", "weathered-wood", "oak"]

DETAILER_MODES: Final = (
    "add",
    "multiply",
    "screen",
    "overlay",
    "soft_light",
    "hard_light",
    "color_dodge",
    "color_burn",
    "difference",
    "exclusion",
    "divide",
)
# Coarse grid for the smooth parts of a backdrop: one sample per this many pixels.
_COARSE: Final = 4
# The smallest product, as a share of the canvas, that still reads as a product.
_MIN_SCALE: Final = 0.05
_GRAIN_TILE: Final = 509  # odd, so its repeat does not line up with JPEG blocks
# The flat tabletop textures, before perspective.
_TEXTURE_W: Final = 512
_TEXTURE_H: Final = 256


@dataclass(frozen=True)
class Backdrop:
    """A backdrop the local engine can draw: what the preset's ``backdrop`` names."""

    slug: str
    name: str
    surface: Surface
    wall: RGB  # the wall or sweep colour at the light
    wall_far: RGB  # the same away from the light (edges, top)
    floor: RGB  # the surface's main colour
    floor_accent: RGB  # veins, grain or the sweep's front
    scenery: Literal["", "window", "garden", "tiles", "fairy-lights"] = ""


BACKDROPS: Final[dict[str, Backdrop]] = {
    b.slug: b
    for b in (
        Backdrop(
            "white-sweep",
            "White studio sweep",
            "sweep",
            (250, 250, 250),
            (226, 226, 228),
            (252, 252, 252),
            (240, 240, 241),
        ),
        Backdrop(
            "grey-sweep",
            "Light grey studio sweep",
            "sweep",
            (228, 228, 230),
            (188, 189, 193),
            (236, 236, 238),
            (214, 214, 217),
        ),
        Backdrop(
            "pastel-sweep",
            "Pastel studio sweep",
            "sweep",
            (248, 228, 224),
            (222, 190, 186),
            (250, 234, 230),
            (236, 210, 205),
        ),
        Backdrop(
            "pastel-podium",
            "Pastel studio podium",
            "podium",
            (248, 228, 224),
            (222, 190, 186),
            (250, 234, 230),
            (236, 210, 205),
        ),
        Backdrop(
            "warm-gradient",
            "Warm spotlight gradient",
            "gradient",
            (118, 82, 52),
            (18, 13, 10),
            (40, 30, 24),
            (12, 9, 8),
        ),
        Backdrop(
            "cool-gradient",
            "Cool blue gradient",
            "gradient",
            (150, 182, 214),
            (30, 44, 70),
            (70, 88, 112),
            (24, 32, 48),
        ),
        Backdrop(
            "marble-tabletop",
            "White marble tabletop",
            "marble",
            (242, 240, 236),
            (200, 197, 192),
            (238, 236, 233),
            (150, 148, 150),
        ),
        Backdrop(
            "bathroom-shelf",
            "Marble bathroom shelf, sage tiles",
            "marble",
            (214, 226, 210),
            (160, 176, 158),
            (240, 239, 236),
            (150, 150, 152),
            "tiles",
        ),
        Backdrop(
            "wood-tabletop",
            "Wooden tabletop",
            "wood",
            # A cool, plain wall: the living room is the warm one.
            (234, 235, 236),
            (178, 182, 188),
            (164, 112, 70),
            (110, 68, 38),
        ),
        Backdrop(
            "holiday-table",
            "Festive table with fairy lights",
            "wood",
            (92, 58, 34),
            (22, 16, 14),
            (104, 66, 40),
            (52, 30, 18),
            "fairy-lights",
        ),
        Backdrop(
            "living-room",
            "Living room sideboard",
            "oak",
            (236, 224, 204),
            (178, 160, 136),
            (196, 152, 104),
            (146, 104, 64),
            "window",
        ),
        Backdrop(
            "outdoor",
            "Garden table in daylight",
            "weathered-wood",
            (170, 200, 120),
            (60, 96, 52),
            (168, 150, 128),
            (112, 98, 84),
            "garden",
        ),
    )
}
# Each scene model's backdrop when the job has no preset that names one.
DEFAULT_BACKDROP: Final = "grey-sweep"


@dataclass(frozen=True)
class SceneRequest:
    """Everything the composite depends on, already validated by the catalog."""

    width: int
    height: int
    backdrop: str = DEFAULT_BACKDROP
    x_value: float = 50.0  # percent of the width: the product's centre
    y_value: float = 60.0  # percent of the height
    scale: float = 0.6  # the product's longer side relative to the canvas
    dropshadow: bool = True
    lighting: bool = True
    detailtransfer: bool = False
    detailer_mode: str = "soft_light"
    light_from: Literal["left", "right"] = "left"
    seed: int = 0


# -- small image helpers ---------------------------------------------------------------


def _rgb(colour: RGB) -> FloatArray:
    return np.array(colour, dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> FloatArray:
    """Value noise in [0, 1] of ``size`` (w, h) with about ``cells`` cells across."""
    w, h = size
    gx = max(2, cells)
    gy = max(2, round(cells * h / max(w, 1)))
    grid = rng.random((gy + 1, gx + 1), dtype=np.float32)
    img = Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _fbm(rng: np.random.Generator, size: tuple[int, int], cells: int, octaves: int) -> FloatArray:
    """Fractal noise: octaves of value noise, each twice as fine and half as strong."""
    total = np.zeros((size[1], size[0]), np.float32)
    weight = 1.0
    norm = 0.0
    for octave in range(octaves):
        total += weight * _smooth_noise(rng, size, cells * 2**octave)
        norm += weight
        weight *= 0.5
    return total / norm


def _to_image(values: NDArray[np.floating[Any]]) -> Image.Image:
    return Image.fromarray(np.clip(values + 0.5, 0, 255).astype(np.uint8), "RGB")


def _upscale(image: Image.Image | NDArray[np.floating[Any]], size: tuple[int, int]) -> Image.Image:
    # Bilinear is enough for fields this smooth, at half bicubic's cost.
    small = image if isinstance(image, Image.Image) else _to_image(image)
    return small.resize(size, Image.Resampling.BILINEAR)


def _perspective_coefficients(
    dst: list[tuple[float, float]], src: list[tuple[float, float]]
) -> list[float]:
    """Pillow's PERSPECTIVE coefficients mapping output points ``dst`` to input ``src``."""
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    solution = np.linalg.solve(np.array(rows, np.float64), np.array(rhs, np.float64))
    return [float(c) for c in solution]


# -- backdrops -------------------------------------------------------------------------


def _horizon(floor: float) -> float:
    """Where the wall meets the surface, as a share of the height, for a product whose
    base is at ``floor``: a little behind it, so it stands on the surface."""
    return min(max(floor - 0.16, 0.18), 0.82, floor - 0.03)


def _wall(bd: Backdrop, grid: tuple[int, int], light_x: float) -> FloatArray:
    """The wall as a coarse (h, w, 3) array: a light pool falling off to the far colour."""
    gw, gh = grid
    xs = (np.arange(gw, dtype=np.float32) + 0.5) / gw
    ys = (np.arange(gh, dtype=np.float32) + 0.5) / gh
    dx = (xs[None, :] - light_x) / 0.9
    dy = (ys[:, None] - 0.55) / 1.1
    lit = np.exp(-(dx * dx + dy * dy) * 1.6)[..., None]
    return _rgb(bd.wall_far) + (_rgb(bd.wall) - _rgb(bd.wall_far)) * lit


def _sweep(bd: Backdrop, size: tuple[int, int], floor: float, light_x: float) -> Image.Image:
    """A seamless studio sweep: wall, a soft curve, a floor brightening to the front."""
    w, h = size
    grid = (max(2, w // _COARSE), max(2, h // _COARSE))
    wall = _wall(bd, grid, light_x)
    ys = (np.arange(grid[1], dtype=np.float32) + 0.5) / grid[1]
    bend = _horizon(floor)
    # The curve of the sweep has no edge: blend over a wide smoothstep.
    t = np.clip((ys - (bend - 0.18)) / 0.36, 0.0, 1.0)
    t = (t * t * (3 - 2 * t))[:, None, None]
    front = np.clip((ys - bend) / max(1e-3, 1 - bend), 0, 1)[:, None, None]
    floor_rgb = _rgb(bd.floor_accent) + (_rgb(bd.floor) - _rgb(bd.floor_accent)) * front
    floor_rgb = np.broadcast_to(floor_rgb, wall.shape)
    return _upscale(wall * (1 - t) + floor_rgb * t, size)


def _spotlight(bd: Backdrop, size: tuple[int, int], floor: float, centre_x: float) -> Image.Image:
    """A dark backdrop with a spotlight behind the product and a glossy floor below."""
    w, h = size
    gw, gh = max(2, w // _COARSE), max(2, h // _COARSE)
    xs = (np.arange(gw, dtype=np.float32) + 0.5) / gw
    ys = (np.arange(gh, dtype=np.float32) + 0.5) / gh
    aspect = w / h
    centre_y = max(0.2, floor - 0.3)
    dx = (xs[None, :] - centre_x) * aspect
    dy = ys[:, None] - centre_y
    glow = np.exp(-(dx * dx + dy * dy) / 0.18)[..., None]
    wall = _rgb(bd.wall_far) + (_rgb(bd.wall) - _rgb(bd.wall_far)) * glow
    horizon = _horizon(floor)
    t = np.clip((ys - horizon) / 0.04, 0.0, 1.0)[:, None, None]
    pool = np.exp(-(((xs[None, :] - centre_x) * aspect) ** 2) / 0.25)[..., None]
    depth = np.clip((ys - horizon) / max(1e-3, 1 - horizon), 0, 1)[:, None, None]
    floor_rgb = _rgb(bd.floor_accent) + (_rgb(bd.floor) - _rgb(bd.floor_accent)) * pool * (
        1 - 0.6 * depth
    )
    return _upscale(wall * (1 - t) + floor_rgb * t, size)


def _marble_texture(bd: Backdrop, size: tuple[int, int], rng: np.random.Generator) -> FloatArray:
    """White marble: a soft clouded base crossed by a few thin veins that wander, branch
    and fade, never an even set of parallel lines (which read as a contour map)."""
    w, h = size
    # A strong, low-frequency domain warp bends the veins; a finer one makes them wiggle.
    warp = _fbm(rng, size, 2, 5) * 5.0 + _fbm(rng, size, 6, 3) * 0.8
    xs = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    angle = rng.uniform(0.35, 1.1)
    along = xs * math.cos(angle) + ys * math.sin(angle) * (h / w)
    # Thin lines where the sine crosses zero, each vein thin and fading in and out.
    wave = np.sin((along * 2.6 + warp * 0.45) * math.pi)
    presence = np.clip(_fbm(rng, size, 3, 2) * 2.4 - 0.6, 0.0, 1.0)
    main = np.exp(-((wave / 0.05) ** 2)) * presence
    # Each vein sits in a faint grey haze, as veins in stone do.
    haze = np.exp(-((wave / 0.3) ** 2)) * presence
    side = np.exp(-((np.sin((along * 5.0 - warp * 0.7 + 0.3) * math.pi) / 0.03) ** 2))
    side *= np.clip(_fbm(rng, size, 4, 2) * 2.0 - 0.85, 0.0, 1.0)
    cloud = _fbm(rng, size, 5, 3)
    base = _rgb(bd.floor) * (0.955 + 0.06 * cloud)[..., None]
    mix = np.clip(0.45 * main + 0.22 * side + 0.1 * haze, 0.0, 1.0)[..., None]
    texture = base * (1 - mix) + _rgb(bd.floor_accent) * mix
    # Veins in polished stone sit under the surface: soft, never sharp.
    soft = _to_image(texture).filter(ImageFilter.GaussianBlur(0.8))
    return np.asarray(soft, np.float32)


def _wood_texture(
    bd: Backdrop, size: tuple[int, int], rng: np.random.Generator, planks: int, weathered: bool
) -> FloatArray:
    """Planks running left to right: grain along them, a gap between them."""
    w, h = size
    ys = np.linspace(0, planks, h, dtype=np.float32)[:, None]
    plank = np.floor(ys).astype(np.int32)
    within = ys - plank
    warp = _fbm(rng, size, 3, 3)
    tone = rng.uniform(-0.08, 0.08, planks + 1).astype(np.float32)[plank]
    grain = 0.5 + 0.5 * np.sin((within * 38.0 + warp * 14.0 + plank * 1.7) * math.pi)
    grain = grain**3
    streaks = _smooth_noise(rng, (max(2, w // 8), h), 40)
    streaks = np.asarray(Image.fromarray(streaks, "F").resize((w, h)), np.float32)
    shade = 1.0 + tone - 0.12 * grain + 0.06 * (streaks - 0.5)
    gap = np.clip(
        1.0 - np.exp(-((within - 0.0) ** 2) / 0.0004) - np.exp(-((within - 1.0) ** 2) / 0.0004),
        0,
        1,
    )
    if weathered:
        shade = shade + 0.1 * (_smooth_noise(rng, size, 30) - 0.5)
    colour = _rgb(bd.floor) * shade[..., None]
    colour = colour * gap[..., None] + _rgb(bd.floor_accent) * 0.6 * (1 - gap[..., None])
    return np.asarray(colour, np.float32)


@lru_cache(maxsize=16)
def _surface_texture(slug: str, seed: int) -> Image.Image:
    """The flat tabletop texture of ``slug`` for ``seed``: the same for every job with that
    seed, so it is drawn once per process (16 of 384 kB at most)."""
    bd = BACKDROPS[slug]
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 1])
    size = (_TEXTURE_W, _TEXTURE_H)
    if bd.surface == "marble":
        texture = _marble_texture(bd, size, rng)
    else:
        texture = _wood_texture(bd, size, rng, planks=6, weathered=bd.surface == "weathered-wood")
    return _to_image(texture)


def _surface_layer(bd: Backdrop, size: tuple[int, int], horizon_px: int, seed: int) -> Image.Image:
    """The tabletop from the horizon down, drawn flat and put in perspective."""
    w, h = size
    depth = h - horizon_px
    flat = _surface_texture(bd.slug, seed)
    tex_w, tex_h = flat.size
    # The far edge shows more of the table than the near one.
    coeffs = _perspective_coefficients(
        [(0, 0), (w, 0), (w, depth), (0, depth)],
        [(0, 0), (tex_w, 0), (tex_w * 0.72, tex_h), (tex_w * 0.28, tex_h)],
    )
    return flat.transform(
        (w, depth), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
    )


def _scenery(
    bd: Backdrop, wall: Image.Image, light_x: float, rng: np.random.Generator
) -> Image.Image:
    """Out-of-focus hints of a room, a garden, a tiled wall or fairy lights on the (coarse)
    wall: light shapes that read as what they are, then a blur for the depth of field.
    Nothing dark and shapeless: a blurred dark patch reads as a smudge on the photo."""
    small = wall.copy()
    sw, sh = small.size
    draw = ImageDraw.Draw(small, "RGBA")
    blur = max(2.0, sw / 60)
    if bd.scenery == "window":
        # A tall window on the lit side, its glazing bars, and the daylight it throws.
        wx = light_x * sw
        left, right = wx - 0.13 * sw, wx + 0.13 * sw
        top, bottom = 0.06 * sh, 0.62 * sh
        draw.polygon(
            [(left, bottom), (right, bottom), (right + 0.1 * sw, sh), (left - 0.02 * sw, sh)],
            fill=(255, 246, 226, 40),
        )
        draw.rectangle(
            (left - 0.012 * sw, top - 0.012 * sw, right + 0.012 * sw, bottom),
            fill=(250, 244, 234, 255),
        )
        draw.rectangle((left, top, right, bottom), fill=(236, 242, 244, 255))
        bar = max(1.0, 0.008 * sw)
        draw.rectangle((wx - bar, top, wx + bar, bottom), fill=(246, 240, 230, 255))
        mid = (top + bottom) / 2
        draw.rectangle((left, mid - bar, right, mid + bar), fill=(246, 240, 230, 255))
        blur = max(1.5, sw / 110)
    elif bd.scenery == "garden":
        # Foliage and sunlight through leaves: blobs of green and bright discs.
        for _ in range(70):
            x, y = rng.uniform(0, sw), rng.uniform(-0.1 * sh, 0.8 * sh)
            r = rng.uniform(0.03, 0.1) * sw
            g = int(rng.uniform(70, 150))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(g // 2, g, g // 3, 110))
        for _ in range(28):
            x, y = rng.uniform(0, sw), rng.uniform(0, 0.7 * sh)
            r = rng.uniform(0.01, 0.03) * sw
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 250, 214, 150))
    elif bd.scenery == "tiles":
        # Square wall tiles with light grout, slightly out of focus.
        side = max(4.0, 0.075 * sw)
        grout = (236, 238, 230, 200)
        for i in range(int(sw / side) + 2):
            draw.line([(i * side, 0), (i * side, sh)], fill=grout, width=1)
        for j in range(int(sh / side) + 2):
            draw.line([(0, j * side), (sw, j * side)], fill=grout, width=1)
        blur = max(0.6, sw / 400)
    elif bd.scenery == "fairy-lights":
        # Warm fairy lights far behind: round bokeh discs strung along loose curves.
        for strand in range(3):
            base = rng.uniform(0.12, 0.55) * sh
            sag = rng.uniform(0.05, 0.14) * sh
            for k in range(26):
                t = (k + rng.uniform(-0.3, 0.3)) / 25
                x = t * sw
                y = base + sag * math.sin(math.pi * t + strand) + rng.normal(0, 0.01 * sh)
                r = rng.uniform(0.012, 0.026) * sw
                glow = (255, int(rng.uniform(190, 225)), int(rng.uniform(110, 150)))
                draw.ellipse((x - 2 * r, y - 2 * r, x + 2 * r, y + 2 * r), fill=(*glow, 40))
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(*glow, 190))
        blur = max(1.0, sw / 160)
    return small.filter(ImageFilter.GaussianBlur(blur))


def _podium(
    image: Image.Image,
    bd: Backdrop,
    *,
    floor: float,
    centre_x: float,
    product_width: float,
    light_x: float,
) -> None:
    """A round plinth the product stands on, drawn into ``image``: its top face at the
    product's base, a body shaded as a lit cylinder, and its own soft shadow on the floor.
    Only the plinth's box is computed, at full resolution, so its outline stays crisp."""
    w, h = image.size
    cx = centre_x * w
    rx = float(np.clip(0.72 * product_width * w, 0.08 * w, 0.45 * w))
    ry = max(2.0, rx * 0.17)
    top_y = floor * h
    bottom_y = top_y + max(0.1, min(0.2, 0.97 - floor)) * h
    x0, x1 = max(0, int(cx - 1.6 * rx)), min(w, int(cx + 1.6 * rx) + 2)
    y0, y1 = max(0, int(top_y - ry) - 2), min(h, int(bottom_y + 2.2 * ry) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    u = (xs - cx) / rx
    region = np.asarray(image.crop((x0, y0, x1, y1)), np.float32)
    # The plinth's shadow on the floor: a soft ellipse pushed away from the light.
    away = (0.5 - light_x) * 0.5 * rx
    d2 = ((xs - cx - away) / (1.25 * rx)) ** 2 + ((ys - bottom_y) / (1.6 * ry)) ** 2
    region *= (1.0 - 0.3 * np.exp(-2.2 * d2))[..., None]
    # Pale peach: warmer than the sweep, so the plinth reads as an object on it.
    base = np.array([252.0, 226.0, 208.0], np.float32)
    # Body: a vertical cylinder lit from the light's side and the front.
    lx = -0.55 if light_x < 0.5 else 0.55
    nz = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
    diffuse = np.clip(u * lx + nz * 0.84, 0.0, 1.0)
    down = np.clip((ys - top_y) / max(1.0, bottom_y - top_y), 0.0, 1.0)
    body_shade = (0.74 + 0.28 * diffuse) * (1.0 - 0.08 * down)
    body_rgb = base * body_shade[..., None]
    side = np.clip(rx - np.abs(xs - cx) + 0.5, 0.0, 1.0)
    in_span = np.clip(np.minimum(ys - top_y + 0.5, bottom_y - ys + 0.5), 0.0, 1.0)
    bottom_cap = _ellipse_coverage(xs - cx, ys - bottom_y, rx, ry)
    body = np.maximum(side * in_span, bottom_cap * side)
    region = region * (1 - body[..., None]) + body_rgb * body[..., None]
    # Top face: lit from above, a little brighter toward the light, with a thin rim.
    top_face = _ellipse_coverage(xs - cx, ys - top_y, rx, ry)
    rim = _ellipse_coverage(xs - cx, ys - top_y, rx - 1.5, ry - 1.0)
    top_rgb = base * (1.04 + 0.03 * np.clip(u * lx, -1, 1))[..., None]
    top_rgb = top_rgb * (0.97 + 0.03 * rim[..., None])
    region = region * (1 - top_face[..., None]) + np.minimum(top_rgb, 255.0) * top_face[..., None]
    image.paste(_to_image(region), (x0, y0))


def _ellipse_coverage(dx: FloatArray, dy: FloatArray, rx: float, ry: float) -> FloatArray:
    """Anti-aliased coverage of an ellipse: its distance field, about a pixel wide."""
    r = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    # Scale the normalised distance by the local radius so the edge is ~1 px everywhere.
    scale = np.sqrt((dx / rx**2) ** 2 + (dy / ry**2) ** 2) / np.maximum(r, 1e-6)
    dist = (r - 1.0) / np.maximum(scale, 1e-6)
    return np.asarray(np.clip(0.5 - dist, 0.0, 1.0), np.float32)


def backdrop_render(
    slug: str,
    size: tuple[int, int],
    *,
    floor: float = 0.9,
    centre_x: float = 0.5,
    light_from: Literal["left", "right"] = "left",
    seed: int = 0,
    product_width: float = 0.35,
) -> Image.Image:
    """Draw backdrop ``slug`` at ``size`` (w, h), RGB, for a product whose base is at
    ``floor``, whose centre is at ``centre_x`` and whose width is ``product_width``
    (shares of the canvas; a podium is sized to the product)."""
    bd = BACKDROPS.get(slug)
    if bd is None:
        raise EngineError("unknown_backdrop", f"There is no backdrop called {slug!r}.")
    w, h = size
    rng = np.random.default_rng(seed & 0xFFFFFFFF)
    light_x = 0.3 if light_from == "left" else 0.7
    if bd.surface == "sweep":
        image = _sweep(bd, size, floor, light_x)
    elif bd.surface == "podium":
        # The sweep's floor runs under the plinth, whose foot is below the product's base.
        foot = min(1.0, floor + max(0.1, min(0.2, 0.97 - floor)))
        image = _sweep(bd, size, foot, light_x)
        _podium(
            image,
            bd,
            floor=floor,
            centre_x=centre_x,
            product_width=product_width,
            light_x=light_x,
        )
    elif bd.surface == "gradient":
        image = _spotlight(bd, size, floor, centre_x)
    else:
        grid = (max(2, w // _COARSE), max(2, h // _COARSE))
        wall = _to_image(_wall(bd, grid, light_x))
        if bd.scenery:
            wall = _scenery(bd, wall, light_x, rng)
        image = _upscale(wall, size)
        horizon_px = max(1, min(h - 1, round(_horizon(floor) * h)))
        surface = _surface_layer(bd, size, horizon_px, seed)
        image.paste(surface, (0, horizon_px))
        image = _contact_line(image, horizon_px)
    return _grain(image)


def _contact_line(image: Image.Image, horizon_px: int) -> Image.Image:
    """Ambient occlusion where the wall meets the surface: a soft dark line."""
    w, h = image.size
    band = max(2, h // 40)
    top = max(0, horizon_px - band)
    bottom = min(h, horizon_px + band)
    ys = np.arange(top, bottom, dtype=np.float32)
    shade = 1.0 - 0.22 * np.exp(-(((ys - horizon_px) / (band / 2.5)) ** 2))
    strip = np.asarray(image.crop((0, top, w, bottom)), np.float32) * shade[:, None, None]
    image.paste(_to_image(strip), (0, top))
    return image


@cache
def _grain_tile() -> Image.Image:
    """A tile of film grain, made once: Pillow's own noise generator costs a tenth of a
    second per megapixel, a tiled tile nothing, and the repeat is invisible under 1 %."""
    rng = np.random.default_rng(20261122)
    noise = np.clip(rng.normal(128.0, 3.0, (_GRAIN_TILE, _GRAIN_TILE)), 0, 255).astype(np.uint8)
    tile = Image.fromarray(noise, "L")
    return Image.merge("RGB", (tile, tile, tile))


def _grain(image: Image.Image) -> Image.Image:
    """A faint film grain, so smooth gradients do not band once compressed."""
    tile = _grain_tile()
    grain = Image.new("RGB", image.size)
    for y in range(0, image.height, _GRAIN_TILE):
        for x in range(0, image.width, _GRAIN_TILE):
            grain.paste(tile, (x, y))
    return ImageChops.add(image, grain, scale=1.0, offset=-128)


# -- placing the product ---------------------------------------------------------------


def _cut_out(image: Image.Image) -> Image.Image:
    """The product cut out, cleaned (`product_alpha_clean`) and cropped to its bounding
    box (RGBA)."""
    cutout = remove_background(image)
    alpha = product_alpha_clean(np.asarray(cutout.getchannel("A")))
    solid = alpha > BBOX_ALPHA_THRESHOLD
    rows = np.flatnonzero(solid.any(axis=1))
    cols = np.flatnonzero(solid.any(axis=0))
    if rows.size == 0:
        raise EngineError("empty_image", "No product could be found in the image: it looks blank.")
    cutout.putalpha(Image.fromarray(alpha, "L"))
    return cutout.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))


def _placement(
    product: tuple[int, int], req: SceneRequest
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The product's size and top-left corner on the canvas, kept inside the frame."""
    pw, ph = product
    scale = max(_MIN_SCALE, float(req.scale))
    fit = scale * min(req.width / pw, req.height / ph)
    nw, nh = max(1, round(pw * fit)), max(1, round(ph * fit))
    left = round(req.x_value / 100.0 * req.width - nw / 2)
    top = round(req.y_value / 100.0 * req.height - nh / 2)
    # A product cut by the frame is never what a shop wants: slide it back in.
    left = min(max(left, 0), max(0, req.width - nw))
    top = min(max(top, 0), max(0, req.height - nh))
    return (nw, nh), (left, top)


# A part of the product smaller than this share of its largest part is a leftover speck.
_SPECK_SHARE: Final = 0.01
# Alpha from which a pixel is surely product: a component without one is haze.
_SOLID_ALPHA: Final = 128


def product_alpha_clean(alpha: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The cut-out's alpha without what a shop would see as dirt once it is composed:

    - specks: parts (8-connected, alpha > 0) with no solid pixel, or whose solid core is
      under 1 % of the largest part's (JPEG noise, a bit of the old backdrop);
    - the faint or broken rows under the base: a last row much fainter or more broken than
      the one above it is the old floor's contact shadow, which shows as a dashed line
      under a sole on a new backdrop.
    """
    out = np.array(alpha, dtype=np.uint8, copy=True)
    strong = (out >= _SOLID_ALPHA).astype(np.uint8)
    n_strong, strong_labels, stats, _ = cv2.connectedComponentsWithStats(strong, connectivity=8)
    if n_strong <= 1:
        return out
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept_strong = np.flatnonzero(areas >= _SPECK_SHARE * areas.max()) + 1
    n_any, any_labels = cv2.connectedComponents((out > 0).astype(np.uint8), connectivity=8)
    if n_any > 2 or kept_strong.size < n_strong - 1:
        core = np.isin(strong_labels, kept_strong)
        keep = np.zeros(n_any, bool)
        keep[np.unique(any_labels[core])] = True
        keep[0] = False
        out[~keep[any_labels]] = 0
    _base_fringe_trim(out)
    return out


def _base_fringe_trim(alpha: NDArray[np.uint8]) -> None:
    """Clear, in place, the rows under the product's base that are much fainter or more
    broken than the row above (at most a few rows: a real base is never like that)."""
    rows = np.flatnonzero((alpha > 0).any(axis=1))
    if rows.size < 4:
        return
    limit = max(3, round(0.03 * rows.size))
    for _ in range(limit):
        bottom = int(rows[-1])
        if bottom - 1 < 0:
            return
        row, above = alpha[bottom], alpha[bottom - 1]
        if not above.any():
            return
        if not _row_is_fringe(row, above):
            return
        alpha[bottom] = 0
        rows = rows[:-1]
        if rows.size < 2:
            return


def _row_is_fringe(row: NDArray[np.uint8], above: NDArray[np.uint8]) -> bool:
    """Whether ``row`` is a leftover under ``above``: much fainter, or broken into dashes."""
    solid, solid_above = int((row >= _SOLID_ALPHA).sum()), int((above >= _SOLID_ALPHA).sum())
    if solid < 0.35 * solid_above:
        return True
    cols = np.flatnonzero(row > 0)
    span = int(cols[-1] - cols[0] + 1)
    filled = cols.size / span
    cols_above = np.flatnonzero(above > 0)
    filled_above = cols_above.size / int(cols_above[-1] - cols_above[0] + 1)
    return filled < 0.8 * filled_above


# The shadow is drawn this many product-widths across at most: it is soft, so a coarse
# layer upscaled is the same picture for a fraction of the cost.
_SHADOW_WORK_WIDTH: Final = 240


@dataclass(frozen=True)
class ShadowLayer:
    """A product's shadow as opacity in [0, 1] on a layer padded so that it fades out
    inside it: ``offset`` is the layer's top-left relative to the product's (pixels at
    ``scale`` times the product's size)."""

    opacity: FloatArray
    offset: tuple[float, float]
    scale: float


def shadow_layer(alpha: NDArray[np.uint8], light_from: str) -> ShadowLayer:
    """The product's shadow on the floor, from its cut-out's alpha (cropped to the product):

    - a contact shadow: the silhouette squashed onto the floor at the base, pushed a
      little away from the light and blurred;
    - ambient occlusion along the base: where the bottom of the product is near the floor,
      a tight dark band and a wide faint one.

    The layer is padded by four blur radii, so the shadow fades to nothing before its
    edge: it is never cut off by its own box.
    """
    ph, pw = alpha.shape
    scale = min(1.0, _SHADOW_WORK_WIDTH / max(pw, 1))
    sw, sh = max(2, round(pw * scale)), max(2, round(ph * scale))
    small = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    # Where the product reaches the floor: the bottom few percent of its height.
    band = max(1, round(0.05 * sh))
    foot = small[sh - band :].max(axis=0)
    squash_h = max(2, round(0.09 * sh))
    squashed = cv2.resize(small, (sw, squash_h), interpolation=cv2.INTER_AREA)
    sigma_contact = max(1.0, 0.035 * sw)
    sigma_wide = max(2.0, 0.09 * sw)
    sigma_tight = max(0.7, 0.01 * sw)
    push = round(0.04 * sw) * (1 if light_from == "left" else -1)
    pad_x = math.ceil(4 * sigma_wide) + abs(push) + 2
    pad_y = math.ceil(4 * max(sigma_contact, 0.4 * sigma_wide)) + squash_h + 2
    lw, lh = sw + 2 * pad_x, 2 * pad_y
    base_y = pad_y  # the product's base on the layer
    contact = np.zeros((lh, lw), np.float32)
    top = base_y - squash_h // 2
    contact[top : top + squash_h, pad_x + push : pad_x + push + sw] = squashed
    contact = cv2.GaussianBlur(
        contact, (0, 0), sigma_contact, sigmaY=sigma_contact * 0.6, borderType=cv2.BORDER_CONSTANT
    )
    line = np.zeros((lh, lw), np.float32)
    line[base_y - 1 : base_y + 1, pad_x : pad_x + sw] = foot
    tight = np.asarray(
        cv2.GaussianBlur(line, (0, 0), sigma_tight, borderType=cv2.BORDER_CONSTANT), np.float32
    )
    tight = tight / max(float(tight.max()), 1e-6)
    wide = np.asarray(
        cv2.GaussianBlur(
            line, (0, 0), sigma_wide, sigmaY=sigma_wide * 0.3, borderType=cv2.BORDER_CONSTANT
        ),
        np.float32,
    )
    wide = wide / max(float(wide.max()), 1e-6)
    # The silhouette's shadow is kept light: parts off the floor (a mug's handle) cast a
    # fainter, wider shadow than the base itself.
    opacity = 1.0 - (1.0 - 0.32 * contact) * (1.0 - 0.85 * tight) * (1.0 - 0.45 * wide)
    return ShadowLayer(
        opacity=np.asarray(np.clip(opacity, 0.0, 1.0), np.float32),
        offset=(-pad_x / scale, (sh - base_y) / scale),
        scale=scale,
    )


def _cast_shadow(
    scene: Image.Image,
    alpha: Image.Image,
    where: tuple[int, int],
    light_from: str,
    strength: float,
) -> None:
    """The product's shadow (`shadow_layer`) multiplied into ``scene`` around its base; the
    backdrop keeps its own colour in the shadow. The frame may crop it, nothing else."""
    w, h = scene.size
    layer = shadow_layer(np.asarray(alpha), light_from)
    lh, lw = layer.opacity.shape
    full_w = max(1, round(lw / layer.scale))
    full_h = max(1, round(lh / layer.scale))
    x0 = round(where[0] + layer.offset[0])
    y0 = round(where[1] + layer.offset[1])
    box = (max(0, x0), max(0, y0), min(w, x0 + full_w), min(h, y0 + full_h))
    if box[2] <= box[0] or box[3] <= box[1]:
        return
    opacity = cv2.resize(layer.opacity, (full_w, full_h), interpolation=cv2.INTER_LINEAR)
    opacity = opacity[box[1] - y0 : box[3] - y0, box[0] - x0 : box[2] - x0]
    region = np.asarray(scene.crop(box), np.float32)
    region *= (1.0 - strength * opacity)[..., None]
    scene.paste(_to_image(region), box[:2])


def _relight(
    colour: FloatArray, alpha: FloatArray, backdrop_mean: FloatArray, light_from: str
) -> FloatArray:
    """The product's tone matched to the scene: its white balance pulled toward the
    backdrop's light, its exposure toward the backdrop's key, and a soft fall-off of
    light across it from the light's side."""
    weight = alpha[..., None]
    total = max(float(alpha.sum()), 1.0)
    product_mean = (colour * weight).reshape(-1, 3).sum(axis=0) / total
    grey = float(backdrop_mean.mean())
    tint = np.clip((backdrop_mean / max(grey, 1.0)) ** 0.25, 0.88, 1.12)
    key = float(np.clip((grey / max(float(product_mean.mean()), 1.0)) ** 0.12, 0.85, 1.08))
    w = alpha.shape[1]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)
    falloff = 1.04 - 0.1 * (xs if light_from == "left" else 1.0 - xs)
    lit = colour * (tint * key)[None, None, :] * falloff[None, :, None]
    return np.asarray(np.clip(lit, 0, 255), np.float32)


def _blend(target: FloatArray, source: FloatArray, mode: str) -> FloatArray:
    """Detail transfer: the source's detail laid over the blurred target with ``mode``.

    Both are in [0, 1]. ``target`` is the relit product (what the scene looks like),
    ``source`` the product as photographed; the target is blurred first so only the
    source brings fine detail.
    """
    t = target
    s = source
    eps = 1e-3
    out: Any
    if mode == "add":
        out = s - _blur(s) + t
    elif mode == "multiply":
        out = s * t
    elif mode == "screen":
        out = 1 - (1 - s) * (1 - t)
    elif mode == "overlay":
        out = np.where(t < 0.5, 2 * s * t, 1 - 2 * (1 - s) * (1 - t))
    elif mode == "soft_light":
        out = (1 - 2 * t) * s * s + 2 * t * s
    elif mode == "hard_light":
        out = np.where(s < 0.5, 2 * s * t, 1 - 2 * (1 - s) * (1 - t))
    elif mode == "color_dodge":
        out = t / np.maximum(1 - s, eps)
    elif mode == "color_burn":
        out = 1 - (1 - t) / np.maximum(s, eps)
    elif mode == "difference":
        out = np.abs(t - s)
    elif mode == "exclusion":
        out = 0.5 - 2 * (t - 0.5) * (s - 0.5)
    elif mode == "divide":
        out = s / np.maximum(_blur(s), eps) * t
    else:
        raise ValueError(f"unknown blend mode {mode!r}")
    return np.asarray(out, np.float32)


def _blur(values: FloatArray, radius: float = 1.5) -> FloatArray:
    """Gaussian blur of [0, 1] colours; through 8 bits, which the blur hides anyway."""
    image = Image.fromarray(np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    blurred = image.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred, np.float32) / 255.0


def product_layer(image: Image.Image, req: SceneRequest) -> tuple[Image.Image, tuple[int, int]]:
    """The product of ``image`` cut out, cleaned and scaled as it is laid on the scene
    (RGBA), and its top-left corner on the canvas."""
    product = _cut_out(image)
    (nw, nh), where = _placement(product.size, req)
    if (nw, nh) != product.size:
        product = product.resize((nw, nh), Image.Resampling.LANCZOS)
        # Lanczos rings: a faint line can appear a pixel off a hard edge. Clean again.
        product.putalpha(
            Image.fromarray(product_alpha_clean(np.asarray(product.getchannel("A"))), "L")
        )
    return _outline_specks_mend(product), where


# Outline pixels this far (in luminance, 0-255) from the product just inside them are
# specks of the old backdrop the cut-out kept.
_SPECK_CONTRAST: Final = 70.0


def _outline_specks_mend(product: Image.Image) -> Image.Image:
    """The cut-out with light specks of its old backdrop along the outline of its foot
    recoloured from the product just inside: a light fleck at a dark mug's foot shows on
    any new backdrop. Thin parts (a lamp's stem) have no inside to borrow from and are
    left alone."""
    rgba = np.array(product, dtype=np.uint8)
    alpha = rgba[..., 3]
    # The outline band is 4 px deep: flecks left by the matte are a few pixels across.
    inside = cv2.erode((alpha >= 250).astype(np.uint8), np.ones((9, 9), np.uint8))
    outline = (alpha > 0) & (inside == 0)
    if not outline.any() or not inside.any():
        return product
    rgb = rgba[..., :3].astype(np.float32)
    window = (21, 21)
    count = cv2.boxFilter(inside.astype(np.float32), -1, window, normalize=False)
    local = cv2.boxFilter(rgb * inside[..., None], -1, window, normalize=False)
    local = local / np.maximum(count, 1.0)[..., None]
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    lighter = (rgb - local) @ luma
    # Only light flecks near the foot: there the old floor shows through, while a dark
    # rim along a product's side is its own shading.
    foot = np.zeros_like(outline)
    foot[round(0.85 * alpha.shape[0]) :] = True
    specks = outline & foot & (count >= 12) & (lighter > _SPECK_CONTRAST)
    if not specks.any():
        return product
    rgba[..., :3][specks] = np.clip(local[specks] + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def compose_scene(image: Image.Image, req: SceneRequest) -> Image.Image:
    """The product of ``image`` cut out and placed on ``req.backdrop`` (RGB)."""
    if req.detailer_mode not in DETAILER_MODES:
        raise EngineError(
            "invalid_detailer_mode",
            f"detailer_mode: {req.detailer_mode!r} is not one of {', '.join(DETAILER_MODES)}.",
        )
    if req.backdrop not in BACKDROPS:
        raise EngineError("unknown_backdrop", f"There is no backdrop called {req.backdrop!r}.")
    product, (left, top) = product_layer(image, req)
    nw, nh = product.size
    size = (req.width, req.height)
    scene = backdrop_render(
        req.backdrop,
        size,
        floor=(top + nh) / req.height,
        centre_x=(left + nw / 2) / req.width,
        light_from=req.light_from,
        seed=req.seed,
        product_width=nw / req.width,
    )
    alpha_img = product.getchannel("A")
    if req.dropshadow:
        strength = 0.75 if BACKDROPS[req.backdrop].surface == "gradient" else 0.6
        _cast_shadow(scene, alpha_img, (left, top), req.light_from, strength)

    if req.lighting or req.detailtransfer:
        colour = np.asarray(product.convert("RGB"), np.float32)
        alpha = np.asarray(alpha_img, np.float32) / 255.0
        target = colour
        if req.lighting:
            around = scene.crop(
                (
                    max(0, left - nw // 2),
                    max(0, top - nh // 4),
                    min(req.width, left + nw + nw // 2),
                    min(req.height, top + nh),
                )
            ).resize((16, 16), Image.Resampling.BOX)
            backdrop_mean = np.asarray(around, np.float32).reshape(-1, 3).mean(axis=0)
            target = _relight(colour, alpha, backdrop_mean, req.light_from)
        if req.detailtransfer:
            blended = _blend(_blur(target / 255.0), colour / 255.0, req.detailer_mode)
            target = np.clip(blended, 0, 1) * 255.0
        rgb = _to_image(target)
        product = Image.merge("RGBA", (*rgb.split(), alpha_img))
    scene.paste(product, (left, top), product)
    return scene


# -- from a job's parameters -----------------------------------------------------------

# Without a preset that names a backdrop, the prompt's words choose one: the local engine
# cannot draw the scene a prompt describes, but it can pick the closest it has.
_PROMPT_BACKDROPS: Final = (
    (("christmas", "holiday", "festive", "fairy lights"), "holiday-table"),
    (("garden", "outdoor", "outside", "patio", "picnic", "park", "forest"), "outdoor"),
    (("living room", "sofa", "sideboard", "lounge", "bedroom", "interior"), "living-room"),
    (("marble", "kitchen", "countertop"), "marble-tabletop"),
    (("bathroom", "spa", "tiles"), "bathroom-shelf"),
    (("wood", "table", "rustic", "cafe", "café"), "wood-tabletop"),
    (("dark", "luxury", "moody", "black", "night", "gold"), "warm-gradient"),
    (("blue", "cool", "tech", "ocean", "ice"), "cool-gradient"),
    (("podium", "plinth", "pedestal"), "pastel-podium"),
    (("pastel", "pink", "blush"), "pastel-sweep"),
    (("white background", "white studio", "pure white", "seamless white"), "white-sweep"),
)
# Each model's output side when it has no megapixel: qwen's outputs are about 1 MP.
QWEN_MEGAPIXELS: Final = 1.0


def backdrop_choose(*, preset_backdrop: str, prompt: str) -> str:
    """The backdrop of a scene job: the preset's when it names one, else the prompt's."""
    if preset_backdrop in BACKDROPS:
        return preset_backdrop
    text = prompt.lower()
    for words, slug in _PROMPT_BACKDROPS:
        if any(word in text for word in words):
            return slug
    return DEFAULT_BACKDROP


def light_side(text: str) -> Literal["left", "right"]:
    """Which side the light comes from, when the lighting prompt says so."""
    lowered = text.lower()
    right, left = lowered.rfind("right"), lowered.rfind("left")
    return "right" if right > left else "left"


def qwen_size(aspect_ratio: str, source: tuple[int, int]) -> tuple[int, int]:
    """qwen's output size: its ratio (or the input's) at about one megapixel, in
    multiples of 16 as its outputs are."""
    if aspect_ratio == "match_input_image":
        w, h = source
    else:
        w_text, _, h_text = aspect_ratio.partition(":")
        w, h = int(w_text), int(h_text)
    # A 10000 x 100 strip must not ask for a 1-pixel-high canvas.
    ratio = min(max(w / max(h, 1), 1 / 4), 4.0)
    height = math.sqrt(QWEN_MEGAPIXELS * 1_000_000 / ratio)
    return max(16, round(height * ratio / 16) * 16), max(16, round(height / 16) * 16)


def scene_request(
    *, model: str, params: dict[str, Any], backdrop: str, source: tuple[int, int]
) -> SceneRequest:
    """What to compose for a job of ``model`` with its resolved ``params``."""
    seed = int(params.get("seed") or 0)
    if model == "qwen-image-edit-plus-product-photography":
        width, height = qwen_size(str(params.get("aspect_ratio", "match_input_image")), source)
        return SceneRequest(
            width=width,
            height=height,
            backdrop=backdrop,
            y_value=58.0,
            scale=0.6,
            light_from=light_side(str(params.get("prompt", ""))),
            seed=seed,
        )
    spec = catalog.model(model)
    size = spec.output_size(params)
    assert size is not None, f"{model} has no megapixel and aspect_ratio"
    width, height = size
    if params.get("upscale"):
        width, height = width * 2, height * 2
    defaults = spec.defaults()
    return SceneRequest(
        width=width,
        height=height,
        backdrop=backdrop,
        x_value=float(params.get("x_value", defaults.get("x_value", 50))),
        y_value=float(params.get("y_value", defaults.get("y_value", 60))),
        scale=float(params.get("scale", defaults.get("scale", 0.6))),
        dropshadow=bool(params.get("dropshadow", True)),
        lighting=bool(params.get("lighting", True)),
        detailtransfer=bool(params.get("detailtransfer", False)),
        detailer_mode=str(params.get("detailer_mode", "soft_light")),
        light_from=light_side(str(params.get("lighting_prompt", ""))),
        seed=seed,
    )


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
