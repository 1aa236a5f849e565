"""The local engine's cut-out quality over the quality set, as a printed table.

Run: `.venv/bin/python -m bench.local_engine_quality`

For each of the 44 photos of `jobs.samples.quality_set()` it prints the intersection over
union of the engine's alpha (>= 50%) with the exact mask, and the time the cut-out took;
then the mean and the worst. `tests/jobs/engines/local/test_engine_quality.py` holds the engine to
a mean of at least 0.95 and at least 0.85 on every photo.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np


def main() -> int:
    from jobs.engines.local import remove_background
    from jobs.samples import quality_set

    scores: list[float] = []
    print(f"{'photo':<44} {'IoU':>7} {'cut-out':>8}")
    for case in quality_set():
        image, mask = case.render()
        started = time.process_time()
        cutout = remove_background(image)
        took = time.process_time() - started
        alpha = np.asarray(cutout)[..., 3] >= 128
        union = np.logical_or(alpha, mask).sum()
        score = float(np.logical_and(alpha, mask).sum() / union) if union else 1.0
        scores.append(score)
        print(f"{case.label:<44} {score:7.4f} {took * 1000:6.0f} ms")
    print(f"{len(scores)} photos: mean IoU {statistics.mean(scores):.4f}, worst {min(scores):.4f}")
    ok = statistics.mean(scores) >= 0.95 and min(scores) >= 0.85
    print("targets (mean >= 0.95, every photo >= 0.85):", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
