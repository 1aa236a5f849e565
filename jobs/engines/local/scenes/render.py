"""Drawing a backdrop (`backdrop_render`), procedurally and cheaply: smooth parts (walls,
sweeps, spotlights and light pools) are computed on a coarse grid and upscaled, a tabletop
(`textures`) is put in perspective with one Pillow transform below the horizon, a podium
is computed only in its own box, out-of-focus scenery (a window, a garden, tiles, fairy
lights) is drawn on the wall, and a fine film grain hides banding.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Final, Literal

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from jobs.engines.local.errors import EngineError
from jobs.engines.local.scenes.backdrops import BACKDROPS, Backdrop
from jobs.engines.local.scenes.pixels import (
    FloatArray,
    _perspective_coefficients,
    _rgb,
    _to_image,
    _upscale,
)
from jobs.engines.local.scenes.textures import _surface_texture

# Coarse grid for the smooth parts of a backdrop: one sample per this many pixels.
_COARSE: Final = 4
_GRAIN_TILE: Final = 509  # odd, so its repeat does not line up with JPEG blocks


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
