"""The local engine: background removal and packshots on the CPU, with no network.

Background removal starts from a learned salient-object segmentation model, U²-Net-p
(``saliency``), and refines its coarse map with the photo itself: the colour matte
where the backdrop is plain, OpenCV's GrabCut where it is not (``refine``).

Approach (``remove_background``):

1. Normalise the input to 8-bit RGB (palette, CMYK, 16-bit, grey and LA inputs
   are converted; EXIF orientation is applied). An input whose alpha channel
   already has transparent pixels is returned as-is: it has been cut out before.
   Photos above ``MAX_WORK_PIXELS`` are analysed at that size; the alpha is scaled
   back up.
2. The colour matte (``matte``, ``backdrop``): the backdrop is estimated from a band
   along the border (nothing assumes white; a Coons patch of four border curves
   reproduces studio sweeps and gradients), pixels are thresholded by their Lab
   distance to it at a level read from the border's own noise, soft shadows reached
   from the open backdrop become backdrop, edge pixels get a soft alpha by linear
   unmixing of the local backdrop and product colours, specks are dropped and small
   pinholes filled while real openings (a mug's handle) are kept. A blank photo
   (nothing off the backdrop) and a product filling the frame (no backdrop at all)
   keep this matte's outcome: fully transparent, fully opaque.
3. The model (``saliency``): U²-Net-p on onnxruntime, in the photo's aspect ratio,
   gives each pixel a probability of belonging to the salient object: at about
   160 x 160 when the border is plain once downscaled (the colour matte will draw the
   outline), 224 x 224 when it is textured. Its map is not rescaled, so a photo where
   nothing stands out stays low.
4. No product: when under 0.3% of the map is salient and the border is textured (a
   lawn, a brick wall, a landscape), the job fails with ``EngineError("no_product")``.
   On a plain backdrop the colour matte is trusted even then (a tiny product).
5. Plain backdrop: the colour matte keeps its
   precise edges, shadow removal and openings; components the model does not find
   salient are dropped, and a thick piece of product the matte lost to a backdrop of
   nearly its colour (a white mug on off-white) is restored where the model is
   confident and not inside one of the matte's openings.
6. Textured border, or a colour matte the model disagrees with even at 224 x 224: GrabCut
   on the product's box plus a margin, at most 640 px long and 120 000 px in area,
   seeded from the map and a colour posterior (product and nearby background colour
   histograms): probable product where both say so, sure product where the map is
   near 1 and the colour clearly the product's, probable background around the
   outline, sure background far from it; thick regions inside the cut whose colour is
   the background's are openings. Parts the model does not find salient are dropped; when
   a whole salient object stands apart from others cut by the frame (a person, a
   cup on the table), it is the product. A guided filter (on ``cv2.boxFilter``)
   makes the mask's edge follow the photo.
7. Decontaminate edge colours: un-mix the background behind semi-transparent pixels
   (F = B + (C - B) / alpha), B being the backdrop model on a plain backdrop and the
   mean of nearby clear pixels on a cluttered one, so the cut-out has no halo.

``render_packshot`` crops the cut-out to the product, scales it with Lanczos so its
longer side spans the same share of an always-square canvas (2000 x 2000 by default)
and composites it over a flat colour or transparency, reporting how much a small
product was enlarged (``Packshot.notice`` tells the shop past 2x); ``make_packshot``
returns just the image. On a flat colour it composites first, at the photo's
resolution, and scales the result: the same picture as scaling the premultiplied
cut-out, for less work. ``encode_packshot`` stores it as JPEG with full-resolution
colour, so white around the product decodes to exactly 255.

Where things live (callers import the public names from this package):

- ``packshot``: ``render_packshot``, ``Packshot``, ``make_packshot``, ``encode_packshot``,
  ``parse_color``, ``BBOX_ALPHA_THRESHOLD``;
- ``matte``: ``remove_background`` and the colour matte (steps 1, 2 and 7),
  ``MAX_WORK_PIXELS``;
- ``saliency``: the model's loader and inference (step 3);
- ``refine``: the model combined with the colour matte, GrabCut, the guided filter and
  decontamination on cluttered backgrounds (steps 4 to 7);
- ``backdrop``: the border inliers, the backdrop model and soft shadows (step 2);
- ``normalise``: input normalisation (step 1);
- ``colour``: sRGB to CIE Lab;
- ``arrays``: strips, smoothing, dilation and erosion, connected components, window sums;
- ``errors``: ``EngineError``;
- ``scenes``: scene composition on top of the cut-out (imported as its own module).
"""

from __future__ import annotations

from jobs.engines.local.errors import EngineError as EngineError
from jobs.engines.local.matte import MAX_WORK_PIXELS as MAX_WORK_PIXELS
from jobs.engines.local.matte import remove_background as remove_background
from jobs.engines.local.packshot import BBOX_ALPHA_THRESHOLD as BBOX_ALPHA_THRESHOLD
from jobs.engines.local.packshot import SOFT_UPSCALE as SOFT_UPSCALE
from jobs.engines.local.packshot import Packshot as Packshot
from jobs.engines.local.packshot import encode_packshot as encode_packshot
from jobs.engines.local.packshot import make_packshot as make_packshot
from jobs.engines.local.packshot import parse_color as parse_color
from jobs.engines.local.packshot import render_packshot as render_packshot

__all__ = [
    "BBOX_ALPHA_THRESHOLD",
    "MAX_WORK_PIXELS",
    "SOFT_UPSCALE",
    "EngineError",
    "Packshot",
    "encode_packshot",
    "make_packshot",
    "parse_color",
    "remove_background",
    "render_packshot",
]
