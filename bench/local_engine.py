"""How fast the local engine makes packshots and scenes, against a plain Pillow floor.

Run: `.venv/bin/python -m bench.local_engine` (pinned to one core with `taskset -c 0` for
the figures in the README). Prints the median time of a packshot and of a 1.5-megapixel
scene composite from a 1-megapixel photo (background removal and encoding included),
milliseconds per output megapixel, and the ratio to opening, resizing and saving the same
image with Pillow alone, measured in the same process.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from jobs import catalog, samples
from jobs.engines import local as local_engine
from jobs.engines.local import scenes

RUNS = 7
SAMPLES = ("mug", "bottle", "white-on-white", "jar-noisy-background")
SCENE_BACKDROPS = ("marble-tabletop", "living-room", "outdoor", "grey-sweep")


def _median_seconds(fn: Callable[[], object], runs: int = RUNS) -> float:
    fn()  # warm up lazy imports and caches
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _floor(data: bytes, size: tuple[int, int]) -> Callable[[], None]:
    """Pillow alone: open the same photo, resize it to the output size, save a JPEG."""

    def run() -> None:
        image = Image.open(io.BytesIO(data))
        image.load()
        image.resize(size, Image.Resampling.LANCZOS).save(io.BytesIO(), format="JPEG")

    return run


def _close_up_jpeg(name: str) -> bytes:
    """A 1-megapixel photo of ``name`` framed tight, so its packshot is a full 2000 x 2000
    (the product needs less than the 2x upscale the packshot allows)."""
    photo, mask = samples.render_sample(name, width=2000, height=2000)
    ys, xs = np.nonzero(mask)
    side = int(max(ys.max() - ys.min(), xs.max() - xs.min()) * 1.12)
    cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2
    box = (cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side)
    out = io.BytesIO()
    photo.crop(box).resize((1000, 1000), Image.Resampling.LANCZOS).save(out, "JPEG", quality=90)
    return out.getvalue()


def _row(name: str, work: Callable[[], Image.Image], data: bytes) -> float:
    result = work()
    seconds = _median_seconds(work)
    floor_seconds = _median_seconds(_floor(data, result.size))
    out_mp = result.width * result.height / 1e6
    print(
        f"{name:<38} {seconds * 1000:>8.0f} {out_mp:>7.2f} "
        f"{seconds * 1000 / out_mp:>10.0f} {seconds / floor_seconds:>8.1f}"
    )
    return seconds


def main() -> None:
    print(f"local engine benchmark: median of {RUNS} runs, 1000 x 1000 JPEG inputs, encoded")
    print("as the job stores them; 'x floor' is the ratio to Pillow's open + resize + save")
    header = f"{'':<38} {'ms':>8} {'out MP':>7} {'ms/out MP':>10} {'x floor':>8}"
    print(
        "\npackshots (bria-product-packshot: up to 2000 x 2000, less when the product is too"
        f" small\nto deserve it; JPEG q92; target <= 400 ms)\n{header}"
    )
    worst_packshot = 0.0
    inputs = [(name, samples.sample_jpeg_bytes(name)) for name in SAMPLES]
    inputs.append(("mug, framed tight", _close_up_jpeg("mug")))
    for name, data in inputs:

        def packshot(data: bytes = data) -> Image.Image:
            result = local_engine.make_packshot(Image.open(io.BytesIO(data)))
            scenes.encode(result, image_format="jpeg", quality=92)
            return result

        worst_packshot = max(worst_packshot, _row(name, packshot, data))

    width, height = catalog.output_size(1.5, "16:9")
    print(
        f"\nscenes (segmind-scenecraft-v01 defaults: 1.5 MP 16:9 = {width} x {height}, "
        f"JPEG q90; target <= 600 ms)\n{header}"
    )
    worst_scene = 0.0
    for name, backdrop in zip(SAMPLES, SCENE_BACKDROPS, strict=True):
        data = samples.sample_jpeg_bytes(name)
        request = scenes.SceneRequest(width=width, height=height, backdrop=backdrop, seed=7)

        def scene(data: bytes = data, request: scenes.SceneRequest = request) -> Image.Image:
            result = scenes.compose_scene(Image.open(io.BytesIO(data)), request)
            scenes.encode(result, image_format="jpeg", quality=90)
            return result

        worst_scene = max(worst_scene, _row(f"{name} on {backdrop}", scene, data))
    print(
        f"\nworst median: packshot {worst_packshot * 1000:.0f} ms (target 400), "
        f"scene {worst_scene * 1000:.0f} ms (target 600)"
    )


if __name__ == "__main__":
    main()
