"""The local engine: background removal and packshots on the CPU, with no network
and no model weights.

Product photos for small shops are mostly taken against a backdrop: a white
sheet, a grey card, a coloured wall, a studio sweep. This engine assumes that and
separates the product from its backdrop by colour and by simple image structure,
not by learned semantics. It is fast (a 1-megapixel photo takes a few tenths of a
second) and predictable, and it fails on cluttered scenes, where a model would be
needed.

Approach (``remove_background``):

1. Normalise the input to 8-bit RGB (palette, CMYK, 16-bit, grey and LA inputs
   are converted; EXIF orientation is applied). An input whose alpha channel
   already has transparent pixels is returned as-is: it has been cut out before.
2. Smooth lightly (a binomial kernel, wider when the border is noisy) and
   convert to CIE Lab, so that colour distances are roughly perceptual.
3. Estimate the backdrop from a band along the image border; nothing assumes
   white. The band's most common colour (preferring colours seen on several
   sides) seeds a robust fit of increasing order that separates backdrop pixels
   from product pixels touching the edge. The medians of the backdrop pixels
   across each side give four border curves, and a Coons patch (transfinite
   interpolation) fills the interior from them, which reproduces vertical or
   horizontal studio sweeps of any profile and linear gradients exactly.
4. Threshold each pixel's Lab distance to that model at a level read from the
   border itself (its noise tail and its mottling), so nothing is hand-tuned per
   photo.
5. Soft shadows are a darker copy of the backdrop: dimming linear light scales
   (L + 16, a, b) uniformly, and a blurred shadow changes slowly from pixel to
   pixel. Such pixels reached from the open backdrop become backdrop. A
   product's sharp outline stops that flood, and deep shadow may only be
   entered a short way, so a grey product is not eaten as its own shadow.
6. Pixels within a few pixels of the backdrop get a soft alpha by linear
   unmixing: the pixel is a mix of the local backdrop and the local product
   colour (means over nearby pixels of each), and its position on the segment
   between them is its coverage. The band also takes in the faint pixels a
   little off the backdrop's colour next to it (JPEG's ringing and chroma
   bleed beside a strong outline), which would otherwise stay solid as specks
   of the old backdrop.
7. Clean up with connected components (computed on horizontal runs in NumPy:
   SciPy and OpenCV are not dependencies): drop specks much smaller than the
   product and faint blobs of a mottled backdrop, fill holes much smaller than
   the product, and keep real openings such as a mug handle.
8. Decontaminate edge colours by un-mixing the local backdrop
   (F = B + (C - B) / alpha), so the cut-out has no halo on a new background.

Photos above ``MAX_WORK_PIXELS`` are analysed at that size and the alpha is
scaled back up, which bounds the cost; their edges are then slightly softer.

Everything runs on one core in NumPy and Pillow, so the hot paths avoid whole-
image temporaries where they can: Lab conversion and the distance to the
backdrop model work on colour planes, strip by strip, so that intermediate
arrays stay in the CPU's cache; smoothing is done in 16-bit integer passes;
connected components stay as runs; dilations, the clean-up and the local means
only touch the boxes or the band along the outline where pixels can change.

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
- ``matte``: ``remove_background`` and the matte it computes (steps 1, 2, 4, 6 to 8),
  ``MAX_WORK_PIXELS``;
- ``backdrop``: the border inliers, the backdrop model and soft shadows (steps 3 and 5);
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
