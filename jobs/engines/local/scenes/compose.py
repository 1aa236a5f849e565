"""The scene composite (`compose_scene`): the request checked, the product's layer
(`product`) placed on the backdrop drawn for it (`render`), its shadow cast (`shadows`),
its tone matched to the backdrop's light and its detail transferred, then pasted.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from jobs.engines.local.errors import EngineError
from jobs.engines.local.scenes.backdrops import BACKDROPS
from jobs.engines.local.scenes.pixels import _to_image
from jobs.engines.local.scenes.product import _blend, _blur, _relight, product_layer
from jobs.engines.local.scenes.render import backdrop_render
from jobs.engines.local.scenes.request import DETAILER_MODES, SceneRequest
from jobs.engines.local.scenes.shadows import _cast_shadow


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
