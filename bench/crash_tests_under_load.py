"""The crash tests, run again and again while other processes keep every core busy.

The crash tests kill real workers and wait for the state they need; a machine under load
is where a test that reads a value too early, or waits a fixed time, fails. This runs them
`--runs` times in a row (each run a fresh pytest process, so each starts its own clusters)
while `--burners` processes spin on the CPU, and prints how many runs passed.

    .venv/bin/python -m bench.crash_tests_under_load --runs 20
    DATABASE_URL=postgres://... .venv/bin/python -m bench.crash_tests_under_load --runs 20

The burners are plain Python loops (`stress`-like load, without needing the package).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRASH_TESTS = [
    "tests/jobs/engines/segmind/test_crashes.py",
    "tests/jobs/engines/segmind/test_crash_takeover.py",
    "tests/jobs/engines/segmind/test_crash_watch.py",
]


def _burn() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--burners", type=int, default=os.cpu_count() or 2, help="busy processes (one a core)"
    )
    args = parser.parse_args(argv)

    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.burners)]
    for burner in burners:
        burner.start()
    database = (
        "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    )
    print(f"crash tests under load: {args.runs} runs, {args.burners} busy processes, {database}")
    passed = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *CRASH_TESTS],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            seconds = time.monotonic() - started
            summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
            passed += result.returncode == 0
            print(
                f"run {run:2d}: {'pass' if result.returncode == 0 else 'FAIL'} "
                f"in {seconds:5.0f} s  {summary}",
                flush=True,
            )
            if result.returncode != 0:
                print(result.stdout[-4000:], flush=True)
    finally:
        for burner in burners:
            burner.terminate()
    print(f"passed {passed} of {args.runs} runs")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
