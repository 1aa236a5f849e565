"""The scale-out run of tests/test_scale_out.py, as a benchmark: prints its report.

    TEST_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.scale_out \\
        --database-url postgres://user:pass@127.0.0.1:5432/postgres [--jobs 200] [--latency 1]

Starts moto's S3 server and the fake Segmind, makes a fresh database on that PostgreSQL
server (the URL's user must be allowed to CREATE DATABASE; it is dropped at the end), runs
the Procfile's `web:` line twice (two ports), `worker:` twice and `webhooks:` once, each
with an empty media folder of its own, submits the jobs alternately through both web
processes and SIGKILLs the qcluster holding the Segmind dispatcher's lease half-way. It
prints the throughput, the takeover time and anything that broke a guarantee (see
tests/support/scale_out.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--latency", type=float, default=1.0, help="Segmind's seconds per job")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("--database-url (or DATABASE_URL) must name a PostgreSQL server")
    if not os.environ.get("TEST_REDIS_URL"):
        parser.error("TEST_REDIS_URL must name a Redis server (redis://127.0.0.1:6379/0)")
    # The harness refuses a dead server through pytest's fail(): only a test's concern.
    from tests.support import scale_out

    t0 = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {message}", flush=True)

    outcome = scale_out.run(
        postgres_url=args.database_url,
        jobs=args.jobs,
        latency=args.latency,
        timeout=args.timeout,
        say=say,
    )
    print(outcome.report())
    problems = outcome.problems()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("every guarantee held" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
