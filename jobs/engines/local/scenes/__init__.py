"""Scene composites on the local engine (being split into modules by area)."""

from __future__ import annotations

from jobs.engines.local.scenes.render import BACKDROPS as BACKDROPS
from jobs.engines.local.scenes.render import DEFAULT_BACKDROP as DEFAULT_BACKDROP
from jobs.engines.local.scenes.render import DETAILER_MODES as DETAILER_MODES
from jobs.engines.local.scenes.render import QWEN_MEGAPIXELS as QWEN_MEGAPIXELS
from jobs.engines.local.scenes.render import Backdrop as Backdrop
from jobs.engines.local.scenes.render import SceneRequest as SceneRequest
from jobs.engines.local.scenes.render import ShadowLayer as ShadowLayer
from jobs.engines.local.scenes.render import backdrop_choose as backdrop_choose
from jobs.engines.local.scenes.render import backdrop_render as backdrop_render
from jobs.engines.local.scenes.render import compose_scene as compose_scene
from jobs.engines.local.scenes.render import encode as encode
from jobs.engines.local.scenes.render import light_side as light_side
from jobs.engines.local.scenes.render import product_alpha_clean as product_alpha_clean
from jobs.engines.local.scenes.render import product_layer as product_layer
from jobs.engines.local.scenes.render import qwen_size as qwen_size
from jobs.engines.local.scenes.render import scene_request as scene_request
from jobs.engines.local.scenes.render import shadow_layer as shadow_layer

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
