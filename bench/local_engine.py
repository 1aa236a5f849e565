"""How fast the local engine makes a packshot, against a plain Pillow floor.

Run: `.venv/bin/python -m bench.local_engine` (pinned to one core with `taskset -c 0` for
the figures in the README). Prints the median time of a packshot from a 1-megapixel photo,
milliseconds per output megapixel, and the ratio to opening, resizing and saving the same
image with Pillow alone, measured in the same process.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

from PIL import Image

from jobs import local_engine, samples

RUNS = 7


def _median_seconds(fn: Callable[[], object], runs: int = RUNS) -> float:
    fn()  # warm up lazy imports and caches
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    print(f"local engine benchmark: median of {RUNS} runs, 1000 x 1000 JPEG inputs")
    print(f"{'sample':<22} {'packshot ms':>12} {'out MP':>7} {'ms/out MP':>10} {'x floor':>8}")
    for name in ("mug", "bottle", "white-on-white", "jar-noisy-background"):
        data = samples.sample_jpeg_bytes(name)

        def floor(data: bytes = data) -> None:
            image = Image.open(io.BytesIO(data))
            image.load()
            out = io.BytesIO()
            image.resize((2000, 2000), Image.Resampling.LANCZOS).save(out, format="JPEG")

        def packshot(data: bytes = data) -> Image.Image:
            result = local_engine.make_packshot(Image.open(io.BytesIO(data)))
            result.convert("RGB").save(io.BytesIO(), format="JPEG", quality=92)
            return result

        out_mp = (lambda r: r.width * r.height / 1e6)(packshot())
        seconds = _median_seconds(packshot)
        floor_seconds = _median_seconds(floor)
        print(
            f"{name:<22} {seconds * 1000:>12.0f} {out_mp:>7.2f} "
            f"{seconds * 1000 / out_mp:>10.0f} {seconds / floor_seconds:>8.1f}"
        )


if __name__ == "__main__":
    main()
