"""Concurrent connections to the web server: Django's development server against gunicorn.

Run:

    .venv/bin/python -m bench.web_concurrency [--bursts 50,200] [--repeat 1]

What it does, for each server in turn (`manage.py runserver`, threaded, which `make run`
used to start and `make dev` still does; then gunicorn with `productstudio/gunicorn.conf.py`
and its defaults, 2 processes of 8 threads, which `make run` and production start):

1. Makes a fresh SQLite database (`tests.support.cluster.Setup`, as `make run` has) and
   starts the server on it on 127.0.0.1 (`tests.support.web_server`).
2. For each burst size N: a new workspace and API key, then N `POST /api/v1/presets` (a
   small write, each creating one preset) on N connections opened at once (no pool, no
   keep-alive), and waits for every one to end.
3. Counts the answers (201), other statuses, and connections dropped (refused, reset or
   closed without an answer), checks in the database that each 201 made its preset and
   nothing else was made, and takes the latency percentiles of the answered requests.

Prints one table for both servers. No queue cluster runs (a preset makes no job).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.support.cluster import Setup
from tests.support.web_server import web_server, workspace_with_key

MODEL = "bria-product-packshot"
SERVERS = ("runserver", "gunicorn")


@dataclass
class Burst:
    server: str
    size: int
    answered: int = 0
    created: int = 0
    other: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _burst(base: str, key: str, size: int, result: Burst) -> None:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=300,
    ) as client:
        start = asyncio.Event()

        async def one(n: int) -> None:
            await start.wait()
            began = time.perf_counter()
            try:
                response = await client.post(
                    "/api/v1/presets", json={"model": MODEL, "name": f"Burst {n:04d}"}
                )
            except httpx.TransportError as e:
                result.dropped[type(e).__name__] += 1
                return
            if response.status_code == 201:
                result.answered += 1
                result.latencies_ms.append((time.perf_counter() - began) * 1000)
            else:
                result.other[str(response.status_code)] += 1

        tasks = [asyncio.ensure_future(one(n)) for n in range(size)]
        await asyncio.sleep(0)
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - began


def _presets_of(setup: Setup, key_name: str) -> int:
    code = (
        "from accounts.models import Tenant; from jobs.models import Preset; "
        f"t = Tenant.objects.get(name={key_name!r}); "
        "print(Preset.objects.filter(tenant=t, name__startswith='Burst ').count())"
    )
    return int(setup.manage("shell", "--no-imports", "-c", code).strip())


def run(bursts: list[int], repeat: int) -> list[Burst]:
    results: list[Burst] = []
    for server in SERVERS:
        # A new key per burst: its 300 writes a minute hold any burst here.
        setup = Setup.create(None, {})
        try:
            with web_server(setup, server) as base:
                for round_ in range(repeat):
                    for size in bursts:
                        name = f"Burst {server} {size} {round_}"
                        key = workspace_with_key(setup, name)
                        result = Burst(server=server, size=size)
                        asyncio.run(_burst(base, key, size, result))
                        result.created = _presets_of(setup, name)
                        results.append(result)
                        print(
                            f"{server:9} {size:4}: {result.answered} answered, "
                            f"{sum(result.dropped.values())} dropped, {result.created} created",
                            flush=True,
                        )
        finally:
            setup.drop()
    return results


def _table(results: list[Burst]) -> str:
    rows = [
        "| server | connections at once | answered | dropped | other answers | created "
        "| p50 | p90 | p99 | max | all done in |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        name = (
            "runserver (threaded)"
            if r.server == "runserver"
            else "gunicorn (2 processes, 8 threads)"
        )
        dropped = sum(r.dropped.values())
        how = ", ".join(f"{n} {k}" for k, n in r.dropped.most_common())
        other = ", ".join(f"{n}: {k}" for k, n in r.other.most_common()) or "none"
        lat = [_percentile(r.latencies_ms, q) for q in (0.5, 0.9, 0.99, 1.0)]
        rows.append(
            f"| {name} | {r.size} | {r.answered} | {dropped}{f' ({how})' if how else ''} "
            f"| {other} | {r.created} | "
            + " | ".join(f"{v / 1000:.2f} s" for v in lat)
            + f" | {r.seconds:.1f} s |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", default="50,200", help="connection counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="bursts of each size per server")
    parser.add_argument("--json", action="store_true", help="also print the raw results")
    args = parser.parse_args()
    results = run([int(n) for n in args.bursts.split(",")], args.repeat)
    print()
    print(
        "POST /api/v1/presets on N connections opened at once; SQLite; "
        "latency of the answered requests"
    )
    print(_table(results))
    if args.json:
        print(json.dumps([r.__dict__ for r in results], default=dict, indent=1))


if __name__ == "__main__":
    main()
