"""What one shop's slow photo host does to another shop's requests, on SQLite.

Run:

    .venv/bin/python -m bench.sqlite_contention [--reads 200] [--writes 20] [--fetches 4]

What it does:

1. Makes a fresh SQLite file database (`tests.support.cluster.Setup`) and starts the studio on it
   as production does: a threaded web server in its own process (`tests.support.web_server`), with
   two workspaces, A and B, each with an API key.
2. Alone: shop B sends `--reads` `GET /api/v1/jobs` one after another, then `--writes`
   `POST /api/v1/jobs` (a small PNG upload, each with its own `Idempotency-Key`), and the
   latency of each is measured.
3. During A's slow fetches: shop A sends `--fetches` `POST /api/v1/jobs` at once, each with
   an `Idempotency-Key` and the URL of a photo host on 127.0.0.1 that sends half the photo
   and then waits. Once every fetch is in flight, B repeats step 2; the photo host finishes
   only after B's last request, so every one of B's requests ran during A's fetches.
4. Prints B's p50 and p99 latency for reads and writes, alone and during A's fetches, the
   ratios, and B's answers that were not 200/201 (a 500 or 503 would show here).

No queue cluster runs: the jobs wait in the queue, so only the web requests share the
database.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.support.cluster import Setup
from tests.support.web_server import SlowImageHost, png_bytes, web_server, workspace_with_key

MODEL = "bria-product-packshot"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class _Run:
    read_ms: list[float] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


def _shop_b(base: str, key: str, reads: int, writes: int) -> _Run:
    run = _Run()
    statuses, read_ms, write_ms = run.statuses, run.read_ms, run.write_ms
    photo = png_bytes()
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        for _ in range(reads):
            started = time.perf_counter()
            response = client.get("/api/v1/jobs")
            read_ms.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] += 1
        for _ in range(writes):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/jobs",
                data={"model": MODEL},
                files={"image": ("mug.png", photo, "image/png")},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            write_ms.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] += 1
    return run


def _line(label: str, alone: list[float], during: list[float]) -> str:
    a50, a99 = statistics.median(alone), _percentile(alone, 0.99)
    d50, d99 = statistics.median(during), _percentile(during, 0.99)
    return (
        f"{label:<7} alone p50 {a50:7.1f} ms  p99 {a99:7.1f} ms | during A's fetches "
        f"p50 {d50:7.1f} ms  p99 {d99:7.1f} ms | ratio p50 {d50 / a50:5.2f}  p99 {d99 / a99:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--fetches", type=int, default=4)
    args = parser.parse_args()

    setup = Setup.create(None, {"FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "FETCH_TIMEOUT": "600"})
    host = SlowImageHost(delay=600)
    try:
        with web_server(setup) as base:
            shop_a = workspace_with_key(setup, "Shop A")
            shop_b = workspace_with_key(setup, "Shop B")
            _shop_b(base, shop_b, 5, 2)  # warm up: imports, first queries
            alone = _shop_b(base, shop_b, args.reads, args.writes)

            answers: list[int] = []

            def shop_a_posts(n: int) -> None:
                response = httpx.post(
                    base + "/api/v1/jobs",
                    json={"model": MODEL, "image_url": f"{host.url}?photo={n}"},
                    headers={
                        "Authorization": f"Bearer {shop_a}",
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                    timeout=900,
                )
                answers.append(response.status_code)

            threads = [
                threading.Thread(target=shop_a_posts, args=(n,)) for n in range(args.fetches)
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while host.started < args.fetches:
                if time.monotonic() > deadline:
                    raise RuntimeError("shop A's fetches did not start")
                time.sleep(0.05)
            during = _shop_b(base, shop_b, args.reads, args.writes)
            still_fetching = sum(thread.is_alive() for thread in threads)
            host.release()
            for thread in threads:
                thread.join(timeout=120)
    finally:
        host.stop()
        setup.drop()

    print(
        f"SQLite, threaded runserver; shop A: {args.fetches} POST /api/v1/jobs with an "
        f"Idempotency-Key, each fetching a photo that stalls; shop B: {args.reads} reads, "
        f"then {args.writes} writes, one at a time"
    )
    print(_line("reads", alone.read_ms, during.read_ms))
    print(_line("writes", alone.write_ms, during.write_ms))
    print(f"B's answers alone: {dict(alone.statuses)}")
    print(f"B's answers during A's fetches: {dict(during.statuses)}")
    print(
        f"A's fetches still in flight when B finished: {still_fetching} of {args.fetches}; "
        f"A's answers: {dict(Counter(answers))}"
    )


if __name__ == "__main__":
    main()
