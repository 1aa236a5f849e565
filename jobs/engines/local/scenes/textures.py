"""The flat tabletop textures, drawn before perspective: white marble with veins that
wander, branch and fade in a faint haze, and wooden planks (plain, oak or weathered) with
grain along them and a gap between them. The job's seed varies them, and each texture is
drawn once per process and seed (`_surface_texture`, cached).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

import numpy as np
from PIL import Image, ImageFilter

from jobs.engines.local.scenes.backdrops import BACKDROPS, Backdrop
from jobs.engines.local.scenes.pixels import (
    FloatArray,
    _fbm,
    _rgb,
    _smooth_noise,
    _to_image,
)

# The flat tabletop textures, before perspective.
_TEXTURE_W: Final = 512
_TEXTURE_H: Final = 256


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
