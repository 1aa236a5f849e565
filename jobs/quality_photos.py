"""The real-background quality set: the project's products on real photographs, exact masks.

The synthetic set (`jobs.samples.quality_set`) paints its own backdrops; a cut-out engine
tuned on it can still fail on a real table, wall or sky. Here each painted product
(`jobs.samples.ALL_SAMPLE_NAMES`, the eleven samples and the six unseen products) is
composited onto a crop of a photograph that scikit-image ships inside its wheel
(`skimage/data/*.png|jpg`, read from the installed package: never a download):

* the product layer is painted with its anti-aliased coverage ``a`` over the photo,
  ``photo * (1 - a) + product * a``; the mask is ``a >= 0.5``, exact to the pixel;
* some cases darken the photo under the product with a soft contact shadow, which is
  not part of the mask;
* placement, scale (the product spans 20% to 70% of the frame), crops of the photo (the
  wood of ``coffee`` beside the cup, the flag of ``astronaut``, the floor of
  ``motorcycle_left``), frame sizes (0.3 to 1.4 MP, landscape, square and portrait) and
  JPEG quality 80 or 70 vary from case to case; grey photos become tinted RGB.
* every crop is a background (a surface, a wall, a sky, fur as a fabric) with no other
  subject in it: a product set beside a cat, an astronaut or a motorcycle has no single
  right cut-out, and no shop photographs one that way.

Held-out split, fixed: tune only on the photos of ``TUNING_PHOTOS`` (brick, grass,
coffee, astronaut, ihc, moon, camera). The cases on ``HELD_OUT_PHOTOS`` (gravel,
hubble_deep_field, rocket, chelsea, motorcycle_left, page) are for measuring only: no
threshold, weight or constant of the engine may be chosen by looking at them.

scikit-image is a development dependency: it is imported inside functions only, so the
studio itself never needs it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from jobs.samples import composite_sample, sample_extent

__all__ = [
    "HELD_OUT_PHOTOS",
    "TUNING_PHOTOS",
    "RealBackgroundCase",
    "real_background_set",
    "skimage_photo",
]

Split = Literal["all", "tuning", "held_out"]
BoolArray = NDArray[np.bool_]

TUNING_PHOTOS: tuple[str, ...] = ("brick", "grass", "coffee", "astronaut", "ihc", "moon", "camera")
HELD_OUT_PHOTOS: tuple[str, ...] = (
    "gravel",
    "hubble_deep_field",
    "rocket",
    "chelsea",
    "motorcycle_left",
    "page",
)

_FILES = {
    "brick": "brick.png",
    "grass": "grass.png",
    "coffee": "coffee.png",
    "astronaut": "astronaut.png",
    "ihc": "ihc.png",
    "moon": "moon.png",
    "camera": "camera.png",
    "gravel": "gravel.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "rocket": "rocket.jpg",
    "chelsea": "chelsea.png",
    "motorcycle_left": "motorcycle_left.png",
    "page": "page.png",
}


@dataclass(frozen=True)
class _Backdrop:
    photo: str
    # The part of the photo to use, as fractions (x0, y0, x1, y1) of its width and height.
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    # Multiplies a grey photo's level per channel, so bricks look red and grass green.
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


_BACKDROPS: dict[str, _Backdrop] = {
    "brick": _Backdrop("brick", tint=(0.93, 0.70, 0.60)),
    "grass": _Backdrop("grass", tint=(0.60, 0.85, 0.45)),
    # The wooden table right of the saucer, without the cup.
    "coffee-table": _Backdrop("coffee", crop=(0.8, 0.0, 1.0, 1.0)),
    # The flag and the grey studio wall left of the astronaut's head.
    "astronaut-flag": _Backdrop("astronaut", crop=(0.0, 0.0, 0.3, 0.62)),
    "ihc": _Backdrop("ihc"),
    "moon": _Backdrop("moon", tint=(0.95, 0.95, 1.0)),
    # The lawn and far buildings right of the cameraman, with a leg of his tripod.
    "camera-field": _Backdrop("camera", crop=(0.55, 0.5, 1.0, 1.0), tint=(0.9, 1.0, 0.85)),
    # The plain sky right of the cameraman: his camera cut by the left edge, a tower and
    # a dome cut by the bottom edge (salient scenery on a backdrop plain enough for the
    # colour matte).
    "camera-sky": _Backdrop("camera", crop=(0.56, 0.0, 1.0, 0.5), tint=(0.82, 0.9, 1.0)),
    "gravel": _Backdrop("gravel", tint=(1.0, 0.93, 0.82)),
    "hubble": _Backdrop("hubble_deep_field", crop=(0.0, 0.0, 0.55, 0.55)),
    "hubble-wide": _Backdrop("hubble_deep_field", crop=(0.3, 0.35, 1.0, 0.95)),
    # The evening sky and a launch tower left of the rocket.
    "rocket-sky": _Backdrop("rocket", crop=(0.0, 0.0, 0.42, 0.6)),
    "chelsea-fur": _Backdrop("chelsea", crop=(0.0, 0.45, 0.5, 1.0)),
    "motorcycle-floor": _Backdrop("motorcycle_left", crop=(0.2, 0.72, 1.0, 1.0)),
    "page": _Backdrop("page", tint=(1.0, 0.96, 0.88)),
}

# (backdrop, product, (width, height), span, (u, v), shadow, JPEG quality or None)
# span: the product's larger side as a fraction of the frame's; (u, v): where the
# centre of the product's box sits, as fractions of the frame (kept inside the frame).
_CaseSpec = tuple[str, str, tuple[int, int], float, tuple[float, float], bool, int | None]
_CASES: tuple[_CaseSpec, ...] = (
    # -- tuning photos -------------------------------------------------------------------
    ("brick", "mug", (1000, 750), 0.55, (0.45, 0.55), True, None),
    ("brick", "ring", (800, 800), 0.30, (0.60, 0.50), False, 80),
    ("brick", "chair", (900, 1200), 0.70, (0.50, 0.55), True, None),
    ("brick", "perfume-on-teal", (640, 480), 0.45, (0.35, 0.50), False, 70),
    ("grass", "sneaker", (1200, 800), 0.50, (0.50, 0.60), True, None),
    ("grass", "headphones", (1000, 1000), 0.40, (0.40, 0.45), False, 80),
    ("grass", "plant-pot-gradient", (750, 1000), 0.60, (0.55, 0.50), True, None),
    ("grass", "watch-strap", (800, 800), 0.25, (0.65, 0.40), False, None),
    ("coffee-table", "white-mug-off-white", (500, 1000), 0.45, (0.50, 0.50), True, None),
    ("coffee-table", "wine-glass", (600, 900), 0.55, (0.50, 0.50), True, 80),
    ("coffee-table", "bottle", (500, 1000), 0.65, (0.50, 0.55), False, None),
    ("coffee-table", "jar-noisy-background", (800, 1000), 0.45, (0.50, 0.55), True, None),
    ("coffee-table", "ring", (600, 800), 0.30, (0.50, 0.45), False, 70),
    ("astronaut-flag", "bottle", (600, 900), 0.60, (0.55, 0.55), True, None),
    ("astronaut-flag", "lamp", (640, 480), 0.45, (0.45, 0.50), False, 80),
    ("astronaut-flag", "speaker-on-grey", (750, 1000), 0.40, (0.45, 0.60), True, None),
    ("astronaut-flag", "box", (800, 1000), 0.40, (0.50, 0.60), True, None),
    ("ihc", "dark-on-dark", (1000, 1000), 0.50, (0.50, 0.50), False, None),
    ("ihc", "white-on-white", (800, 800), 0.45, (0.40, 0.55), True, 70),
    ("ihc", "headphones", (1400, 1000), 0.60, (0.55, 0.50), False, None),
    ("ihc", "mug", (640, 480), 0.30, (0.30, 0.40), True, 80),
    ("moon", "white-mug-off-white", (1000, 750), 0.40, (0.55, 0.50), True, None),
    ("moon", "sneaker", (1200, 800), 0.65, (0.50, 0.55), False, 80),
    ("moon", "wine-glass", (750, 1000), 0.35, (0.35, 0.45), False, None),
    ("camera-field", "chair", (1000, 1000), 0.50, (0.40, 0.55), True, None),
    ("camera-field", "lamp", (900, 1200), 0.55, (0.55, 0.50), True, 70),
    ("camera-field", "box", (1000, 750), 0.28, (0.60, 0.65), True, None),
    # -- held-out photos -----------------------------------------------------------------
    ("gravel", "watch-strap", (1000, 1000), 0.60, (0.50, 0.50), True, None),
    ("gravel", "mug", (1200, 800), 0.35, (0.40, 0.55), True, 80),
    ("gravel", "ring", (800, 800), 0.45, (0.55, 0.45), False, None),
    ("gravel", "dark-on-dark", (640, 480), 0.55, (0.50, 0.55), True, 70),
    ("hubble", "perfume-on-teal", (800, 800), 0.50, (0.45, 0.50), False, None),
    ("hubble", "wine-glass", (750, 1000), 0.60, (0.50, 0.50), False, 80),
    ("hubble-wide", "headphones", (1200, 800), 0.30, (0.65, 0.40), False, None),
    ("hubble-wide", "white-mug-off-white", (1000, 1000), 0.40, (0.35, 0.60), False, None),
    ("rocket-sky", "bottle", (750, 1000), 0.55, (0.45, 0.55), True, None),
    ("rocket-sky", "speaker-on-grey", (1000, 1000), 0.35, (0.55, 0.50), False, 80),
    ("rocket-sky", "lamp", (1000, 750), 0.60, (0.55, 0.50), False, None),
    ("rocket-sky", "chair", (800, 800), 0.45, (0.45, 0.55), False, 70),
    ("chelsea-fur", "jar-noisy-background", (900, 600), 0.50, (0.50, 0.55), True, None),
    ("chelsea-fur", "plant-pot-gradient", (800, 800), 0.55, (0.50, 0.50), True, None),
    ("chelsea-fur", "sneaker", (1000, 1000), 0.45, (0.45, 0.60), True, 80),
    ("motorcycle-floor", "box", (1200, 700), 0.40, (0.30, 0.50), True, None),
    ("motorcycle-floor", "headphones", (1200, 800), 0.45, (0.60, 0.45), False, 70),
    ("motorcycle-floor", "white-on-white", (1200, 600), 0.60, (0.40, 0.50), True, None),
    ("motorcycle-floor", "mug", (1400, 700), 0.50, (0.65, 0.50), True, 80),
    ("page", "ring", (1000, 750), 0.35, (0.45, 0.50), False, None),
    ("page", "watch-strap", (800, 800), 0.50, (0.60, 0.50), True, None),
    ("page", "dark-on-dark", (1200, 800), 0.55, (0.40, 0.55), True, 70),
    # -- tuning photos, added after the rest (appended so the others keep their seeds) --
    ("camera-sky", "perfume-on-teal", (900, 900), 0.35, (0.55, 0.30), False, 80),
    ("camera-sky", "box", (1000, 750), 0.30, (0.40, 0.30), False, None),
    ("camera-sky", "wine-glass", (750, 1000), 0.40, (0.50, 0.30), False, None),
    ("camera-sky", "headphones", (1200, 800), 0.30, (0.40, 0.30), False, 70),
)


@cache
def skimage_photo(name: str) -> Image.Image:
    """One of scikit-image's bundled photographs as RGB, read from the installed wheel."""
    from importlib.resources import files

    import skimage.data  # noqa: F401  (a development dependency: imported only here)

    folder = files("skimage.data")
    candidates = [folder / _FILES.get(name, ""), folder / f"{name}.png", folder / f"{name}.jpg"]
    found = [path for path in candidates if path.name and path.is_file()]
    if not found:
        raise ValueError(f"scikit-image ships no photo named {name!r}")
    with found[0].open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


def _backdrop(key: str, width: int, height: int) -> Image.Image:
    """The backdrop's crop, trimmed to the frame's aspect ratio and resized to it."""
    spec = _BACKDROPS[key]
    photo = skimage_photo(spec.photo)
    pw, ph = photo.size
    x0, y0, x1, y1 = spec.crop[0] * pw, spec.crop[1] * ph, spec.crop[2] * pw, spec.crop[3] * ph
    cw, ch = x1 - x0, y1 - y0
    target = width / height
    if cw / ch > target:  # too wide: keep the middle columns
        trim = (cw - ch * target) / 2
        x0, x1 = x0 + trim, x1 - trim
    else:
        trim = (ch - cw / target) / 2
        y0, y1 = y0 + trim, y1 - trim
    if photo.mode == "L":
        grey = np.asarray(photo, dtype=np.float32)[..., None]
        tinted = np.clip(grey * np.asarray(spec.tint, np.float32), 0, 255)
        photo = Image.fromarray(np.rint(tinted).astype(np.uint8), "RGB")
    else:
        photo = photo.convert("RGB")
    return photo.resize((width, height), Image.Resampling.BICUBIC, box=(x0, y0, x1, y1))


@dataclass(frozen=True)
class RealBackgroundCase:
    """One photo of the real-background set, with the exact mask of its product."""

    backdrop: str
    name: str
    width: int
    height: int
    span: float
    position: tuple[float, float]
    shadow: bool
    jpeg_quality: int | None
    seed: int

    @property
    def photo(self) -> str:
        """The scikit-image photograph the backdrop is cut from."""
        return _BACKDROPS[self.backdrop].photo

    @property
    def held_out(self) -> bool:
        return self.photo in HELD_OUT_PHOTOS

    @property
    def label(self) -> str:
        kind = f"jpeg{self.jpeg_quality}" if self.jpeg_quality else "png"
        return f"{self.backdrop}/{self.name}/{self.width}x{self.height}/{kind}"

    def render(self) -> tuple[Image.Image, BoolArray]:
        x0, y0, x1, y1 = sample_extent(self.name)
        box_w, box_h = x1 - x0, y1 - y0
        scale = self.span * min(self.width / box_w, self.height / box_h)
        # Where the box's centre lands, kept 2% inside the frame.
        margin = 0.02 * min(self.width, self.height)
        half_w, half_h = box_w * scale / 2, box_h * scale / 2
        cx = min(max(self.position[0] * self.width, margin + half_w), self.width - margin - half_w)
        cy = min(
            max(self.position[1] * self.height, margin + half_h), self.height - margin - half_h
        )
        # composite_sample takes the pixel of the design centre (500, 500).
        centre = (cx - ((x0 + x1) / 2 - 500) * scale, cy - ((y0 + y1) / 2 - 500) * scale)
        backdrop = _backdrop(self.backdrop, self.width, self.height)
        image, mask = composite_sample(
            self.name, backdrop, scale=scale, centre=centre, shadow=self.shadow, seed=self.seed
        )
        if self.jpeg_quality is not None:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=self.jpeg_quality)
            image = Image.open(io.BytesIO(buffer.getvalue()))
            image.load()
        return image, mask


def real_background_set(split: Split = "all") -> list[RealBackgroundCase]:
    """The real-background quality set (53 photos), or its tuning or held-out part."""
    if split not in ("all", "tuning", "held_out"):
        raise ValueError(f"split must be 'all', 'tuning' or 'held_out', not {split!r}")
    cases = [
        RealBackgroundCase(backdrop, name, size[0], size[1], span, position, shadow, quality, seed)
        for seed, (backdrop, name, size, span, position, shadow, quality) in enumerate(_CASES)
    ]
    if split == "all":
        return cases
    return [case for case in cases if case.held_out == (split == "held_out")]
