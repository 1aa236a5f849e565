"""The local engine's cut-out quality over the quality sets, as a printed table.

Run: `.venv/bin/python -m bench.local_engine_quality [--set NAME] [--only SUBSTRING]`

Three sets, each photo with its exact product mask:

* `synthetic`: `jobs.samples.quality_set()`, the eleven painted sample scenes and six
  products added after the engine was tuned, four variants each (68 photos);
* `real-tuning` and `real-held-out`: `jobs.quality_photos.real_background_set()`, the
  products composited on scikit-image's photographs. The held-out photos (gravel,
  hubble_deep_field, rocket, chelsea, motorcycle_left, page) are for measuring only:
  tune nothing on them.

For each photo it prints the intersection over union of the engine's alpha (>= 50%) with
the mask and the wall time of the cut-out; then each set's mean and worst, and the
targets of issue 20: mean IoU >= 0.97 on the synthetic set, >= 0.95 on each part of the
real-background set, and no photo below 0.85. It exits 1 when a target is missed.
`--set` runs one set, `--only` the photos whose label contains a substring (quick runs
while tuning; the verdict then covers only what ran).
`tests/jobs/engines/local/test_engine_quality.py` holds the same targets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

MIN_IOU = 0.85
MEAN_TARGETS = {"synthetic": 0.97, "real-tuning": 0.95, "real-held-out": 0.95}
SET_NAMES = tuple(MEAN_TARGETS)


class Case(Protocol):
    @property
    def label(self) -> str: ...

    def render(self) -> tuple[Image.Image, NDArray[np.bool_]]: ...


def cases(set_name: str) -> Sequence[Case]:
    """The photos of one set, by its name in `SET_NAMES`."""
    from jobs.quality_photos import real_background_set
    from jobs.samples import quality_set

    if set_name == "synthetic":
        return quality_set()
    if set_name == "real-tuning":
        return real_background_set("tuning")
    if set_name == "real-held-out":
        return real_background_set("held_out")
    raise ValueError(f"unknown set {set_name!r}; sets: {', '.join(SET_NAMES)}")


def iou(alpha: NDArray[np.bool_], mask: NDArray[np.bool_]) -> float:
    union = np.logical_or(alpha, mask).sum()
    return float(np.logical_and(alpha, mask).sum() / union) if union else 1.0


def verdict(set_name: str, scores: dict[str, float]) -> tuple[bool, str]:
    """Whether one set's scores meet the targets, and a line saying so."""
    mean = statistics.mean(scores.values())
    worst_label, worst = min(scores.items(), key=lambda item: item[1])
    target = MEAN_TARGETS[set_name]
    ok = mean >= target and worst >= MIN_IOU
    line = (
        f"{set_name:<14} {len(scores):3d} photos: mean IoU {mean:.4f} (target >= {target}), "
        f"worst {worst:.4f} {worst_label} (target >= {MIN_IOU}): {'PASS' if ok else 'FAIL'}"
    )
    return ok, line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--set", choices=SET_NAMES, action="append", dest="sets")
    parser.add_argument("--only", default="", help="run the photos whose label contains this")
    args = parser.parse_args(argv)

    from jobs.engines.local import remove_background

    cut: Callable[[Image.Image], Image.Image] = remove_background
    print("held-out photos (never tune on them): gravel, hubble_deep_field, rocket, chelsea,")
    print(
        "motorcycle_left, page; tuning photos: brick, grass, coffee, astronaut, ihc, moon, camera"
    )
    lines: list[str] = []
    passed = True
    for set_name in args.sets or SET_NAMES:
        scores: dict[str, float] = {}
        print(f"\n{set_name}\n{'photo':<52} {'IoU':>7} {'cut-out':>9}")
        for case in cases(set_name):
            if args.only not in case.label:
                continue
            image, mask = case.render()
            started = time.perf_counter()
            cutout = cut(image)
            took = time.perf_counter() - started
            scores[case.label] = iou(np.asarray(cutout.getchannel("A")) >= 128, mask)
            flag = "  < 0.85" if scores[case.label] < MIN_IOU else ""
            print(f"{case.label:<52} {scores[case.label]:7.4f} {took * 1000:6.0f} ms{flag}")
        if scores:
            ok, line = verdict(set_name, scores)
            passed = passed and ok
            lines.append(line)
    print()
    for line in lines:
        print(line)
    partial = " (partial run: --set/--only)" if args.sets or args.only else ""
    print(f"targets: {'PASS' if passed else 'FAIL'}{partial}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
