"""The backdrops the local engine can draw (`Backdrop`, `BACKDROPS`): each one's surface,
its wall and floor colours and the scenery behind it, the default one, and the choice of
a job's backdrop (`backdrop_choose`): the preset's when it names one, else the closest to
the words of the prompt. Drawing them is `render`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from jobs.engines.local.scenes.pixels import RGB

Surface = Literal["sweep", "podium", "gradient", "marble", "wood", "weathered-wood", "oak"]


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


def backdrop_choose(*, preset_backdrop: str, prompt: str) -> str:
    """The backdrop of a scene job: the preset's when it names one, else the prompt's."""
    if preset_backdrop in BACKDROPS:
        return preset_backdrop
    text = prompt.lower()
    for words, slug in _PROMPT_BACKDROPS:
        if any(word in text for word in words):
            return slug
    return DEFAULT_BACKDROP
