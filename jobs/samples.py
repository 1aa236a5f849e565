"""Synthetic product photos, drawn from scratch, each with its exact product mask.

The local engine needs test images whose ground truth is known to the pixel, and
the project must not ship downloaded or copied photographs. So every sample here
is painted with Pillow and NumPy: simple shapes shaded with gradients so they
read as 3-D objects, on plain, studio-gradient, coloured or noisy backgrounds,
usually with a soft contact shadow.

How a sample is built:

* Shapes are drawn as binary layers at ``SUPERSAMPLE`` times the final size and
  box-averaged down, which gives each layer its anti-aliased coverage in [0, 1].
* Colours (shading, backgrounds, shadows) are computed at the final size, where
  they are smooth, and composited with that coverage.
* The union of all product layers is averaged the same way and thresholded at
  coverage >= 0.5: that is the mask. The shadow is painted into the background
  only, so it is never part of the mask, and holes (a mug handle, a bag handle)
  show the background and are False in the mask.

Shapes are laid out in a 1000 x 1000 design space that is scaled uniformly to fit
the requested size, so products keep their proportions for any aspect ratio.
``seed`` drives a small jitter of position and scale and all noise, so different
seeds give slightly different but reproducible photos.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageChops, ImageDraw, ImageFilter

__all__ = ["SAMPLE_NAMES", "QualityCase", "quality_set", "render_sample", "sample_jpeg_bytes"]

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
RGB = tuple[float, float, float]
Point = tuple[float, float]
DrawFn = Callable[[ImageDraw.ImageDraw], None]

SUPERSAMPLE = 4
_DESIGN = 1000.0


class _Scene:
    """A canvas that tracks the painted photo and the union of product layers."""

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        self.width = width
        self.height = height
        self.rng = rng
        self.scale = min(width, height) / _DESIGN * float(rng.uniform(0.97, 1.03))
        self.offset_x = width / 2 + float(rng.uniform(-15, 15)) * self.scale
        self.offset_y = height / 2 + float(rng.uniform(-15, 15)) * self.scale
        self.rgb: FloatArray = np.zeros((height, width, 3), np.float32)
        self._union = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
        # Design-space coordinates of every pixel centre, for shading.
        self.xs: FloatArray = (
            (np.arange(width, dtype=np.float32) + 0.5 - self.offset_x) / self.scale + _DESIGN / 2
        ).astype(np.float32)
        self.ys: FloatArray = (
            (np.arange(height, dtype=np.float32) + 0.5 - self.offset_y) / self.scale + _DESIGN / 2
        ).astype(np.float32)

    # -- geometry ---------------------------------------------------------------
    def pt(self, x: float, y: float) -> Point:
        """Design coordinates to supersampled pixel coordinates."""
        s = SUPERSAMPLE
        return (
            ((x - _DESIGN / 2) * self.scale + self.offset_x) * s,
            ((y - _DESIGN / 2) * self.scale + self.offset_y) * s,
        )

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, ...]:
        return (*self.pt(x0, y0), *self.pt(x1, y1))

    def length(self, value: float) -> float:
        return value * self.scale * SUPERSAMPLE

    def poly(self, points: Sequence[Point]) -> list[Point]:
        return [self.pt(x, y) for x, y in points]

    # -- painting ---------------------------------------------------------------
    def layer(self, draw_fn: DrawFn) -> FloatArray:
        """Draw a product part in white on black and return its coverage."""
        hi = Image.new("L", self._union.size, 0)
        draw_fn(ImageDraw.Draw(hi))
        self._union = ImageChops.lighter(self._union, hi)
        return np.asarray(hi.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0

    def paint(self, draw_fn: DrawFn, colour: FloatArray | RGB) -> None:
        coverage = self.layer(draw_fn)[..., None]
        field = np.asarray(colour, dtype=np.float32)
        self.rgb += coverage * (field - self.rgb)

    def fill(self, colour: FloatArray | RGB) -> None:
        self.rgb[...] = np.asarray(colour, dtype=np.float32)

    def shadow(
        self, cx: float, cy: float, rx: float, ry: float, strength: float, blur: float
    ) -> None:
        """Darken the background under the product; never part of the mask."""
        shape = Image.new("L", (self.width, self.height), 0)
        x0, y0 = self.pt(cx - rx, cy - ry)
        x1, y1 = self.pt(cx + rx, cy + ry)
        s = SUPERSAMPLE
        ImageDraw.Draw(shape).ellipse((x0 / s, y0 / s, x1 / s, y1 / s), fill=255)
        shape = shape.filter(ImageFilter.GaussianBlur(blur * self.scale))
        amount = np.asarray(shape, dtype=np.float32)[..., None] / 255.0
        self.rgb *= 1.0 - strength * amount

    def vignette(self, amount: float) -> None:
        """Brighten the centre like a studio light falling off towards the edges."""
        u = (np.arange(self.width, dtype=np.float32) + 0.5) / self.width - 0.5
        v = (np.arange(self.height, dtype=np.float32) + 0.5) / self.height - 0.5
        r2 = u[None, :] ** 2 + v[:, None] ** 2
        self.rgb *= (1.0 + amount * (0.5 - 2.0 * r2))[..., None]

    def texture(self, amplitude: float, cell: float) -> None:
        """Low-frequency mottling, like paper or a painted backdrop."""
        small_w = max(2, round(self.width / (cell * self.scale)))
        small_h = max(2, round(self.height / (cell * self.scale)))
        noise = self.rng.normal(0.0, 1.0, (small_h, small_w)).astype(np.float32)
        big = Image.fromarray(noise, "F").resize(
            (self.width, self.height), Image.Resampling.BICUBIC
        )
        self.rgb += amplitude * np.asarray(big, dtype=np.float32)[..., None]

    # -- shading fields -----------------------------------------------------------
    def cylinder(
        self,
        base: RGB,
        x0: float,
        x1: float,
        *,
        ambient: float = 0.35,
        specular: float = 0.25,
    ) -> FloatArray:
        """Horizontal shading of a vertical cylinder lit from the upper left."""
        u = np.clip((self.xs - x0) / (x1 - x0) * 2.0 - 1.0, -1.0, 1.0)
        z = np.sqrt(1.0 - u * u)
        diffuse = np.clip(-0.45 * u + 0.89 * z, 0.0, 1.0)
        intensity = ambient + (1.0 - ambient) * diffuse
        gloss = specular * np.exp(-(((u + 0.35) / 0.13) ** 2))
        colour = np.asarray(base, dtype=np.float32)
        field = colour * intensity[:, None] + 255.0 * gloss[:, None]
        return np.asarray(field[None, :, :], dtype=np.float32)

    def vertical(self, y0: float, y1: float, top: float, bottom: float) -> FloatArray:
        """Per-row brightness factor, e.g. a top face catching more light."""
        t = np.clip((self.ys - y0) / (y1 - y0), 0.0, 1.0)
        return np.asarray((top + (bottom - top) * t)[:, None, None], dtype=np.float32)

    def gradient_background(self, top: RGB, bottom: RGB) -> None:
        """A studio sweep: smooth, non-linear vertical blend."""
        t = (np.arange(self.height, dtype=np.float32) + 0.5) / self.height
        t = t * t * (3.0 - 2.0 * t)
        a = np.asarray(top, dtype=np.float32)
        b = np.asarray(bottom, dtype=np.float32)
        self.rgb[...] = (a + (b - a) * t[:, None])[:, None, :]

    # -- output -------------------------------------------------------------------
    def finish(self, noise: float) -> tuple[Image.Image, BoolArray]:
        pixels = self.rgb
        if noise > 0:
            pixels = pixels + self.rng.normal(0.0, noise, pixels.shape).astype(np.float32)
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
        hi = np.asarray(self._union, dtype=np.uint8)
        # Exact coverage (multiples of 1/SUPERSAMPLE**2), so >= 0.5 is exact too.
        counts = (
            (hi > 0).reshape(self.height, SUPERSAMPLE, self.width, SUPERSAMPLE).sum(axis=(1, 3))
        )
        mask = counts * 2 >= SUPERSAMPLE * SUPERSAMPLE
        return image, np.asarray(mask, dtype=np.bool_)


def _scaled(colour: RGB, factor: float) -> RGB:
    return (colour[0] * factor, colour[1] * factor, colour[2] * factor)


def _leaf(cx: float, cy: float, length: float, width: float, angle: float) -> list[Point]:
    """A pointed leaf growing from (cx, cy) in direction ``angle`` (degrees from up)."""
    a = math.radians(angle)
    along = (math.sin(a), -math.cos(a))
    across = (math.cos(a), math.sin(a))
    points: list[Point] = []
    steps = 24
    for i in range(steps + 1):
        t = i / steps
        half = width / 2 * math.sin(math.pi * t) ** 0.8
        points.append(
            (
                cx + along[0] * length * t + across[0] * half,
                cy + along[1] * length * t + across[1] * half,
            )
        )
    for i in range(steps, -1, -1):
        t = i / steps
        half = width / 2 * math.sin(math.pi * t) ** 0.8
        points.append(
            (
                cx + along[0] * length * t - across[0] * half,
                cy + along[1] * length * t - across[1] * half,
            )
        )
    return points


# -- the samples -----------------------------------------------------------------


def _mug(sc: _Scene) -> None:
    sc.fill((248, 247, 245))
    sc.vignette(0.02)
    sc.shadow(485, 728, 205, 24, 0.30, 16)
    red = (178, 34, 40)
    handle_box = sc.box(565, 405, 735, 645)
    sc.paint(
        lambda d: d.ellipse(handle_box, outline=255, width=round(sc.length(34))),
        sc.cylinder(red, 565, 735, ambient=0.45, specular=0.12),
    )
    body = sc.box(320, 330, 640, 732)
    sc.paint(
        lambda d: d.rounded_rectangle(body, radius=sc.length(30), fill=255),
        sc.cylinder(red, 320, 640),
    )
    rim = sc.box(324, 312, 636, 352)
    sc.paint(
        lambda d: d.ellipse(rim, fill=255),
        sc.cylinder(_scaled(red, 0.55), 324, 636, ambient=0.6, specular=0.0)
        * sc.vertical(312, 352, 0.7, 1.1),
    )


def _bottle(sc: _Scene) -> None:
    sc.gradient_background((220, 226, 234), (250, 250, 249))
    sc.shadow(500, 806, 112, 14, 0.25, 12)
    glass = (34, 108, 64)
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(405, 380, 595, 806), radius=sc.length(36), fill=255),
        sc.cylinder(glass, 405, 595, specular=0.35),
    )
    sc.paint(
        lambda d: d.ellipse(sc.box(405, 300, 595, 460), fill=255),
        sc.cylinder(glass, 405, 595, specular=0.35) * sc.vertical(300, 380, 0.9, 1.0),
    )
    sc.paint(
        lambda d: d.rectangle(sc.box(468, 190, 532, 340), fill=255),
        sc.cylinder(glass, 468, 532, specular=0.3),
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(460, 178, 540, 200), radius=sc.length(6), fill=255),
        sc.cylinder(glass, 460, 540, specular=0.3),
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(462, 118, 538, 186), radius=sc.length(8), fill=255),
        sc.cylinder((32, 32, 36), 462, 538, specular=0.15),
    )
    sc.paint(
        lambda d: d.rectangle(sc.box(405, 520, 595, 680), fill=255),
        sc.cylinder((236, 224, 196), 405, 595, ambient=0.55, specular=0.05),
    )


def _box(sc: _Scene) -> None:
    sc.fill((236, 234, 230))
    sc.shadow(530, 748, 262, 26, 0.30, 18)
    card = (192, 142, 90)
    sc.paint(
        lambda d: d.polygon(sc.poly([(290, 430), (610, 475), (610, 770), (290, 720)]), fill=255),
        np.asarray(card, np.float32) * sc.vertical(430, 770, 1.03, 0.9),
    )
    sc.paint(
        lambda d: d.polygon(sc.poly([(610, 475), (745, 405), (745, 690), (610, 770)]), fill=255),
        np.asarray(_scaled(card, 0.72), np.float32) * sc.vertical(405, 770, 1.02, 0.92),
    )
    sc.paint(
        lambda d: d.polygon(sc.poly([(290, 430), (425, 365), (745, 405), (610, 475)]), fill=255),
        _scaled(card, 1.17),
    )
    sc.paint(
        lambda d: d.line(sc.poly([(358, 398), (678, 440)]), fill=255, width=round(sc.length(26))),
        _scaled((200, 168, 112), 1.12),
    )
    sc.paint(
        lambda d: d.polygon(sc.poly([(330, 520), (470, 540), (470, 600), (330, 581)]), fill=255),
        (92, 62, 42),
    )


def _sneaker(sc: _Scene) -> None:
    sc.fill((247, 247, 247))
    sc.vignette(0.02)
    sc.shadow(515, 668, 300, 20, 0.32, 14)
    blue = (38, 86, 170)
    upper = [
        (235, 612), (245, 540), (300, 500), (390, 470), (450, 440), (480, 385),
        (540, 355), (600, 365), (625, 420), (660, 480), (730, 515), (795, 552),
        (808, 612),
    ]  # fmt: skip
    sc.paint(
        lambda d: d.polygon(sc.poly(upper), fill=255),
        sc.cylinder(blue, 235, 808, ambient=0.6, specular=0.08) * sc.vertical(355, 612, 1.2, 0.85),
    )
    sc.paint(lambda d: d.ellipse(sc.box(478, 352, 598, 392), fill=255), (28, 36, 64))
    sc.paint(
        lambda d: d.polygon(sc.poly([(330, 565), (560, 470), (700, 522), (420, 590)]), fill=255),
        (236, 236, 238),
    )
    for x in (520.0, 555.0, 590.0):

        def lace(d: ImageDraw.ImageDraw, x: float = x) -> None:
            start = (x - 20, 420 + (x - 520) * 0.6)
            end = (x + 25, 440 + (x - 520) * 0.7)
            d.line(sc.poly([start, end]), fill=255, width=round(sc.length(8)))

        sc.paint(lace, (240, 240, 240))
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(222, 597, 818, 657), radius=sc.length(26), fill=255),
        np.asarray((214, 212, 206), np.float32) * sc.vertical(597, 657, 1.04, 0.82),
    )


def _lamp(sc: _Scene) -> None:
    sc.fill((228, 230, 233))
    sc.vignette(0.04)
    sc.shadow(500, 800, 160, 14, 0.35, 10)
    sc.paint(
        lambda d: d.rectangle(sc.box(495, 300, 505, 790), fill=255),
        sc.cylinder((150, 150, 158), 495, 505, specular=0.3),
    )
    sc.paint(
        lambda d: d.ellipse(sc.box(375, 768, 625, 816), fill=255),
        sc.cylinder((58, 58, 62), 375, 625, specular=0.12),
    )
    sc.paint(
        lambda d: d.ellipse(sc.box(385, 760, 615, 800), fill=255),
        sc.cylinder((84, 84, 90), 385, 615, specular=0.1),
    )
    mustard = (214, 162, 40)
    shade = [(375, 345), (625, 345), (565, 175), (435, 175)]
    sc.paint(
        lambda d: d.polygon(sc.poly(shade), fill=255),
        sc.cylinder(mustard, 375, 625, specular=0.15),
    )
    sc.paint(
        lambda d: d.ellipse(sc.box(375, 333, 625, 357), fill=255),
        sc.cylinder(_scaled(mustard, 0.9), 375, 625, specular=0.1),
    )


def _white_on_white(sc: _Scene) -> None:
    sc.fill((246, 246, 244))
    sc.shadow(500, 774, 122, 14, 0.18, 14)
    porcelain = (236, 232, 224)

    def shade(x0: float, x1: float) -> FloatArray:
        return sc.cylinder(porcelain, x0, x1, ambient=0.86, specular=0.0)

    sc.paint(lambda d: d.rectangle(sc.box(462, 262, 538, 470), fill=255), shade(462, 538))
    sc.paint(lambda d: d.ellipse(sc.box(390, 400, 610, 780), fill=255), shade(390, 610))
    sc.paint(lambda d: d.ellipse(sc.box(448, 246, 552, 278), fill=255), shade(448, 552))


def _dark_on_dark(sc: _Scene) -> None:
    sc.fill((70, 70, 75))
    sc.vignette(0.08)
    sc.shadow(500, 770, 240, 20, 0.35, 14)
    leather = (38, 34, 36)
    sc.paint(
        lambda d: d.ellipse(sc.box(385, 285, 615, 560), outline=255, width=round(sc.length(24))),
        sc.cylinder(leather, 385, 615, ambient=0.8, specular=0.03),
    )
    body = sc.cylinder(leather, 275, 725, ambient=0.7, specular=0.03) * sc.vertical(
        455, 770, 1.12, 0.9
    )
    sc.paint(
        lambda d: d.polygon(sc.poly([(315, 455), (685, 455), (725, 700), (275, 700)]), fill=255),
        body,
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(275, 600, 725, 768), radius=sc.length(30), fill=255),
        body,
    )
    sc.paint(
        lambda d: d.polygon(sc.poly([(315, 455), (685, 455), (670, 560), (330, 560)]), fill=255),
        sc.cylinder((48, 44, 46), 315, 685, ambient=0.75, specular=0.03),
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(482, 540, 518, 575), radius=sc.length(5), fill=255),
        (172, 142, 72),
    )


def _plant_pot(sc: _Scene) -> None:
    sc.gradient_background((168, 196, 214), (238, 232, 222))
    sc.shadow(500, 790, 130, 16, 0.28, 12)
    green = (56, 128, 62)
    leaves = [(-62, 200, 64), (-38, 230, 70), (-14, 245, 72), (10, 240, 70),
              (34, 225, 72), (58, 195, 66), (-80, 150, 56), (78, 150, 56)]  # fmt: skip
    for i, (angle, length, width) in enumerate(leaves):
        tone = 0.85 + 0.3 * ((i * 37) % 10) / 10

        def leaf(
            d: ImageDraw.ImageDraw, a: float = angle, n: float = length, w: float = width
        ) -> None:
            d.polygon(sc.poly(_leaf(500, 560, n, w, a)), fill=255)

        sc.paint(
            leaf,
            np.asarray(_scaled(green, tone), np.float32) * sc.vertical(300, 560, 1.15, 0.8),
        )
    terracotta = (186, 92, 58)
    sc.paint(
        lambda d: d.polygon(sc.poly([(405, 580), (595, 580), (570, 790), (430, 790)]), fill=255),
        sc.cylinder(terracotta, 405, 595),
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(390, 552, 610, 600), radius=sc.length(8), fill=255),
        sc.cylinder(_scaled(terracotta, 1.08), 390, 610),
    )


def _jar_noisy(sc: _Scene) -> None:
    sc.fill((214, 200, 178))
    sc.texture(3.0, 30.0)
    sc.shadow(500, 782, 150, 16, 0.30, 12)
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(380, 420, 620, 782), radius=sc.length(40), fill=255),
        sc.cylinder((168, 92, 30), 380, 620, specular=0.3),
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(392, 350, 608, 432), radius=sc.length(12), fill=255),
        sc.cylinder((40, 40, 44), 392, 608, specular=0.2),
    )
    sc.paint(
        lambda d: d.rectangle(sc.box(380, 520, 620, 660), fill=255),
        sc.cylinder((246, 244, 238), 380, 620, ambient=0.7, specular=0.0),
    )


def _speaker_on_grey(sc: _Scene) -> None:
    sc.fill((128, 128, 128))
    sc.vignette(0.06)
    sc.shadow(500, 762, 170, 16, 0.35, 12)
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(360, 300, 640, 762), radius=sc.length(40), fill=255),
        sc.cylinder((70, 78, 92), 360, 640, ambient=0.6, specular=0.08),
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(372, 312, 628, 356), radius=sc.length(20), fill=255),
        sc.cylinder((176, 176, 182), 372, 628, ambient=0.6, specular=0.1),
    )
    sc.paint(lambda d: d.ellipse(sc.box(410, 420, 590, 600), fill=255), (40, 44, 52))
    sc.paint(lambda d: d.ellipse(sc.box(470, 480, 530, 540), fill=255), (90, 96, 108))
    sc.paint(lambda d: d.ellipse(sc.box(445, 630, 555, 740), fill=255), (40, 44, 52))


def _perfume_on_teal(sc: _Scene) -> None:
    sc.gradient_background((36, 124, 128), (74, 164, 162))
    sc.shadow(500, 760, 130, 14, 0.35, 12)
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(390, 420, 610, 760), radius=sc.length(24), fill=255),
        sc.cylinder((236, 168, 178), 390, 610, ambient=0.5, specular=0.35),
    )
    sc.paint(
        lambda d: d.rectangle(sc.box(475, 360, 525, 425), fill=255),
        sc.cylinder((200, 168, 90), 475, 525, specular=0.3),
    )
    sc.paint(
        lambda d: d.rounded_rectangle(sc.box(440, 250, 560, 365), radius=sc.length(14), fill=255),
        sc.cylinder((30, 30, 32), 440, 560, specular=0.25),
    )


_RENDERERS: dict[str, tuple[Callable[[_Scene], None], float]] = {
    # name: (painter, sensor noise sigma in 8-bit levels)
    "mug": (_mug, 1.0),
    "bottle": (_bottle, 1.0),
    "box": (_box, 1.0),
    "sneaker": (_sneaker, 1.0),
    "lamp": (_lamp, 1.0),
    "white-on-white": (_white_on_white, 0.8),
    "dark-on-dark": (_dark_on_dark, 1.0),
    "plant-pot-gradient": (_plant_pot, 1.0),
    "jar-noisy-background": (_jar_noisy, 4.0),
    "speaker-on-grey": (_speaker_on_grey, 1.0),
    "perfume-on-teal": (_perfume_on_teal, 1.0),
}

SAMPLE_NAMES: tuple[str, ...] = tuple(_RENDERERS)


def render_sample(
    name: str, *, width: int = 1000, height: int = 1000, seed: int = 0
) -> tuple[Image.Image, NDArray[np.bool_]]:
    """Paint sample ``name``; return the RGB photo and its mask (True = product)."""
    try:
        painter, noise = _RENDERERS[name]
    except KeyError:
        known = ", ".join(SAMPLE_NAMES)
        raise ValueError(f"Unknown sample {name!r}; known samples: {known}") from None
    if width < 16 or height < 16:
        raise ValueError("Samples must be at least 16 x 16 pixels.")
    scene = _Scene(width, height, np.random.default_rng(seed))
    painter(scene)
    return scene.finish(noise)


def sample_jpeg_bytes(name: str, *, width: int = 1000, height: int = 1000, seed: int = 0) -> bytes:
    """The sample as a quality-90 JPEG, like a shop owner's upload."""
    image, _ = render_sample(name, width=width, height=height, seed=seed)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# -- the quality set -------------------------------------------------------------------

# Each scene four times: its seed moves and scales the product and redraws all noise,
# and the variants change the frame's shape and compress as shops' uploads are.
# (seed, width, height, JPEG quality or None for lossless)
_QUALITY_VARIANTS: tuple[tuple[int, int, int, int | None], ...] = (
    (0, 1000, 1000, None),
    (1, 1000, 1000, 80),
    (2, 1200, 800, None),
    (3, 800, 1000, 70),
)


class QualityCase:
    """One photo of the quality set, with the exact mask of its product."""

    def __init__(
        self, name: str, seed: int, width: int, height: int, jpeg_quality: int | None
    ) -> None:
        self.name = name
        self.seed = seed
        self.width = width
        self.height = height
        self.jpeg_quality = jpeg_quality

    @property
    def label(self) -> str:
        kind = f"jpeg{self.jpeg_quality}" if self.jpeg_quality else "png"
        return f"{self.name}/{self.seed}/{self.width}x{self.height}/{kind}"

    def render(self) -> tuple[Image.Image, BoolArray]:
        image, mask = render_sample(self.name, width=self.width, height=self.height, seed=self.seed)
        if self.jpeg_quality is not None:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=self.jpeg_quality)
            image = Image.open(io.BytesIO(buffer.getvalue()))
            image.load()
        return image, mask


def quality_set() -> list[QualityCase]:
    """The local engine's quality set: every sample scene in four variants (44 photos)."""
    return [
        QualityCase(name, seed, width, height, quality)
        for name in SAMPLE_NAMES
        for seed, width, height, quality in _QUALITY_VARIANTS
    ]
