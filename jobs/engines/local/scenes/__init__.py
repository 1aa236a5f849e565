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

Where things live (callers use `scenes.<name>`; the modules import each other directly):

- request:   SceneRequest, DETAILER_MODES, scene_request from a job's parameters, qwen_size
- backdrops: Backdrop, BACKDROPS, DEFAULT_BACKDROP, backdrop_choose (preset or prompt)
- textures:  the flat tabletop textures (marble, wood), cached per seed
- render:    backdrop_render: walls, sweeps, spotlights, tabletops, podium, scenery, grain
- product:   product_layer: cut-out, product_alpha_clean, outline mend, relight, blend modes
- shadows:   shadow_layer (ShadowLayer) and the shadow cast into the scene
- compose:   compose_scene
- encode:    encode (JPEG, WebP, PNG)
- pixels:    small image helpers (noise, arrays to images, upscale, perspective)
"""

from __future__ import annotations

from jobs.engines.local.scenes.backdrops import BACKDROPS as BACKDROPS
from jobs.engines.local.scenes.backdrops import DEFAULT_BACKDROP as DEFAULT_BACKDROP
from jobs.engines.local.scenes.backdrops import Backdrop as Backdrop
from jobs.engines.local.scenes.backdrops import backdrop_choose as backdrop_choose
from jobs.engines.local.scenes.compose import compose_scene as compose_scene
from jobs.engines.local.scenes.encode import encode as encode
from jobs.engines.local.scenes.product import product_alpha_clean as product_alpha_clean
from jobs.engines.local.scenes.product import product_layer as product_layer
from jobs.engines.local.scenes.render import backdrop_render as backdrop_render
from jobs.engines.local.scenes.request import DETAILER_MODES as DETAILER_MODES
from jobs.engines.local.scenes.request import QWEN_MEGAPIXELS as QWEN_MEGAPIXELS
from jobs.engines.local.scenes.request import SceneRequest as SceneRequest
from jobs.engines.local.scenes.request import light_side as light_side
from jobs.engines.local.scenes.request import qwen_size as qwen_size
from jobs.engines.local.scenes.request import scene_request as scene_request
from jobs.engines.local.scenes.shadows import ShadowLayer as ShadowLayer
from jobs.engines.local.scenes.shadows import shadow_layer as shadow_layer

__all__ = [
    "BACKDROPS",
    "DEFAULT_BACKDROP",
    "DETAILER_MODES",
    "QWEN_MEGAPIXELS",
    "Backdrop",
    "SceneRequest",
    "ShadowLayer",
    "backdrop_choose",
    "backdrop_render",
    "compose_scene",
    "encode",
    "light_side",
    "product_alpha_clean",
    "product_layer",
    "qwen_size",
    "scene_request",
    "shadow_layer",
]
