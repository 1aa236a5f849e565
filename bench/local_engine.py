"""How fast the local engine makes packshots and scenes, against a plain Pillow floor.

Run: `taskset -c 0 .venv/bin/python -m bench.local_engine` (one core, as the figures in
the README). Prints the median time of a 2000 x 2000 packshot and of a 1.5-megapixel
scene composite from a 1-megapixel photo (background removal, its model included, and
encoding), milliseconds per output megapixel, and the ratio to opening, resizing and
saving the same image with Pillow alone, measured in the same process; then a PASS or
FAIL line per target (issue 20): packshot <= 500 ms and scene <= 700 ms median, and the
resident memory the first cut-out adds to the process (what a worker pays for the
model and its buffers) <= 150 MB.
"""

from __future__ import annotations

import dataclasses
import io
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from jobs import catalog, samples
from jobs.engines import local as local_engine
from jobs.engines.local import scenes

RUNS = 7
PACKSHOT_TARGET_MS = 500
SCENE_TARGET_MS = 700
FIRST_CUTOUT_TARGET_MB = 150
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


def _resident_bytes() -> int:
    """This process's resident memory, from /proc/self/statm (its second field, pages)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _first_cutout_megabytes() -> float:
    """The resident memory the process's first cut-out adds: the model loaded, its
    session's buffers, and whatever the matte keeps; measured before anything else ran."""
    photo = Image.open(io.BytesIO(samples.sample_jpeg_bytes("mug")))
    photo.load()
    before = _resident_bytes()
    local_engine.remove_background(photo)
    return (_resident_bytes() - before) / 2**20


def _verdict(what: str, value: float, target: float, unit: str) -> None:
    outcome = "PASS" if value <= target else "FAIL"
    print(f"{outcome}  {what}: {value:.0f} {unit} (target <= {target:.0f} {unit})")


def _close_up_jpeg(name: str) -> bytes:
    """A 1-megapixel photo of ``name`` framed tight, so its product is enlarged less
    than 2x to fill the packshot (no notice)."""
    photo, mask = samples.render_sample(name, width=2000, height=2000)
    ys, xs = np.nonzero(mask)
    side = int(max(ys.max() - ys.min(), xs.max() - xs.min()) * 1.12)
    cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2
    box = (cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side)
    out = io.BytesIO()
    photo.crop(box).resize((1000, 1000), Image.Resampling.LANCZOS).save(out, "JPEG", quality=90)
    return out.getvalue()


def _real_background_jpeg() -> bytes:
    """A 1-megapixel photo with a cluttered background: the mug composited on
    scikit-image's brick wall (the quality set's first real-background case, re-rendered
    at 1155 x 866), which takes the model-and-GrabCut path rather than the colour matte."""
    from jobs.quality_photos import real_background_set

    case = dataclasses.replace(real_background_set("tuning")[0], width=1155, height=866)
    image, _ = case.render()
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
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
    first_cutout_mb = _first_cutout_megabytes()
    print(f"local engine benchmark: median of {RUNS} runs, 1000 x 1000 JPEG inputs, encoded")
    print("as the job stores them; 'x floor' is the ratio to Pillow's open + resize + save")
    header = f"{'':<38} {'ms':>8} {'out MP':>7} {'ms/out MP':>10} {'x floor':>8}"
    print(
        "\npackshots (bria-product-packshot: always 2000 x 2000, JPEG q92 4:4:4; "
        f"target <= {PACKSHOT_TARGET_MS} ms)\n{header}"
    )
    worst_packshot = 0.0
    inputs = [(name, samples.sample_jpeg_bytes(name)) for name in SAMPLES]
    inputs.append(("mug, framed tight", _close_up_jpeg("mug")))
    inputs.append(("mug on a brick wall (real photo)", _real_background_jpeg()))
    for name, data in inputs:

        def packshot(data: bytes = data) -> Image.Image:
            result = local_engine.make_packshot(Image.open(io.BytesIO(data)))
            local_engine.encode_packshot(result, quality=92)
            return result

        worst_packshot = max(worst_packshot, _row(name, packshot, data))

    width, height = catalog.output_size(1.5, "16:9")
    print(
        f"\nscenes (segmind-scenecraft-v01 defaults: 1.5 MP 16:9 = {width} x {height}, "
        f"JPEG q90; target <= {SCENE_TARGET_MS} ms)\n{header}"
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
    print("\ntargets (worst median; memory of the first cut-out, from /proc/self/statm)")
    _verdict("packshot, 1 MP photo", worst_packshot * 1000, PACKSHOT_TARGET_MS, "ms")
    _verdict("scene, 1.5 MP", worst_scene * 1000, SCENE_TARGET_MS, "ms")
    _verdict("first cut-out's extra resident memory", first_cutout_mb, FIRST_CUTOUT_TARGET_MB, "MB")


if __name__ == "__main__":
    main()
