"""Memory benchmark: a batch of sixteen 49-megapixel photos through the API and the workers.

Run:

    .venv/bin/python -m bench.memory [--photos 16] [--side 7000] [--format png|jpeg]

What it does:

1. Draws one mostly flat product photo of `--side` x `--side` pixels (a 7000 x 7000 PNG is
   about 0.2 MB on disk, 147 MB decoded) and serves `--photos` copies of it from
   127.0.0.1, each with its own text chunk or comment (so each file, and its SHA-256, is
   its own; the pixels are the same).
2. Makes a fresh SQLite database in a temp dir (`tests.support.cluster.Setup`), with the local
   engine (no Segmind key), and starts a real web server (`manage.py runserver
   --noreload`, threaded, one process) and a real cluster (`manage.py qcluster`, 2
   workers).
3. After one warm-up API call, reads each process tree's idle RSS, then sends one
   `POST /api/v1/batches` with every URL, and waits until every job has ended.
4. Prints, for the web tree and the worker tree, the idle RSS, the peak RSS (sampled
   every 0.1 s; RSS counts pages a fork shares once per process, so PSS is printed too)
   and the peak over idle, with the targets: the web tree within a few hundred MB of its
   idle size (300 MB), the workers well under 2 GB (1.5 GB of RSS).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import struct
import subprocess
import sys
import time
import zlib

import httpx
from PIL import Image, ImageDraw

from bench.orchestrator import RssSampler, release, tree_rss_mb
from tests.support.cluster import PYTHON, ROOT, Setup, start_cluster, stop_cluster

WORKERS = 2
WEB_TARGET_MB = 300
WORKERS_TARGET_MB = 1536


def photo(side: int, fmt: str) -> bytes:
    """A red product with a dark handle on a light backdrop, mostly flat."""
    image = Image.new("RGB", (side, side), (236, 234, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((side * 3 // 10, side // 4, side * 6 // 10, side * 3 // 4), fill=(196, 40, 36))
    draw.ellipse(
        (side * 6 // 10 - side // 40, side // 3, side * 7 // 10, side * 2 // 3), fill=(60, 30, 30)
    )
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, format="PNG", compress_level=6)
    else:
        image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def variant(data: bytes, index: int, fmt: str) -> bytes:
    """`data` with a marker of its own (a PNG tEXt chunk after IHDR, a JPEG comment)."""
    if fmt == "png":
        body = b"Comment\x00photo %d" % index
        chunk = struct.pack(">I", len(body)) + b"tEXt" + body
        chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body))
        return data[:33] + chunk + data[33:]
    text = b"photo %d" % index
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_web(setup: Setup, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    log = (setup.tmp / "web.log").open("wb")
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**env, **setup.env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("runserver exited:\n" + (setup.tmp / "web.log").read_text()[-3000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("runserver did not listen within 60 s")


def idle_mb(root: int) -> tuple[float, float]:
    """The tree's RSS and PSS, the mean of a few samples a quarter of a second apart."""
    samples = []
    for _ in range(8):
        samples.append(tree_rss_mb(root))
        time.sleep(0.25)
    return (
        sum(s[0] for s in samples) / len(samples),
        sum(s[1] for s in samples) / len(samples),
    )


def run(args: argparse.Namespace, setup: Setup) -> bool:
    from accounts import services as accounts_services
    from accounts.models import Membership
    from jobs.models import TERMINAL_STATUSES, Job, JobStatus
    from tests.support.http_server import LocalServer

    base = photo(args.side, args.format)
    server = LocalServer().start()
    urls = [
        server.route(f"/photo-{i}.{args.format}", variant(base, i, args.format))
        for i in range(args.photos)
    ]
    user = accounts_services.user_signup(
        email="memory@example.com", password="memory-bench-2026", workspace_name="Memory"
    )
    tenant = Membership.objects.get(user=user).tenant
    key = accounts_services.api_key_create(tenant=tenant, name="bench").secret

    port = free_port()
    web = start_web(setup, port)
    cluster, log = start_cluster(setup, WORKERS)
    try:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=args.timeout,
            trust_env=False,
        )
        client.get("/api/v1/jobs").raise_for_status()  # warm-up: imports, first queries
        web_idle, web_idle_pss = idle_mb(web.pid)
        workers_idle, workers_idle_pss = idle_mb(cluster.pid)
        web_sampler = RssSampler(web.pid, every=0.1)
        worker_sampler = RssSampler(cluster.pid, every=0.1)
        web_sampler.start()
        worker_sampler.start()
        t0 = time.monotonic()
        response = client.post(
            "/api/v1/batches",
            json={"model": "bria-product-packshot", "items": [{"image_url": u} for u in urls]},
        )
        t_accepted = time.monotonic() - t0
        if response.status_code != 201:
            web_sampler.stop()
            worker_sampler.stop()
            print(f"the batch was refused: {response.status_code} {response.text[:2000]}")
            return False
        jobs = Job.objects.filter(tenant=tenant)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if jobs.filter(status__in=TERMINAL_STATUSES).count() >= args.photos:
                break
            time.sleep(0.5)
        t_done = time.monotonic() - t0
        web_sampler.stop()
        worker_sampler.stop()
        succeeded = jobs.filter(status=JobStatus.SUCCEEDED).count()
        failed = list(jobs.filter(status=JobStatus.FAILED).values_list("error_code", flat=True))
        unfinished = jobs.exclude(status__in=TERMINAL_STATUSES).count()
    finally:
        stop_cluster(cluster)
        web.terminate()
        try:
            web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()
        server.stop()

    size_mb = len(base) / 1e6
    decoded_mb = args.side * args.side * 3 / 1e6
    web_over = web_sampler.peak - web_idle
    workers_peak = worker_sampler.peak
    print(
        f"memory benchmark: {args.photos} photos of {args.side} x {args.side} "
        f"({args.format.upper()}, {size_mb:.2f} MB on disk, {decoded_mb:.0f} MB decoded as RGB), "
        f"one POST /api/v1/batches, local engine, {WORKERS} workers, SQLite"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"batch accepted in {t_accepted:.1f} s; all jobs ended {t_done:.1f} s after it was sent")
    print(
        f"jobs: {succeeded} succeeded, {len(failed)} failed {sorted(set(failed))}, "
        f"{unfinished} unfinished"
    )
    print()
    print("| process tree | idle RSS | peak RSS | peak over idle | idle PSS | peak PSS | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| web (runserver, 1 process) | {web_idle:.0f} MB | {web_sampler.peak:.0f} MB | "
        f"{web_over:+.0f} MB | {web_idle_pss:.0f} MB | {web_sampler.peak_pss:.0f} MB | "
        f"over idle ≤ {WEB_TARGET_MB} MB |"
    )
    print(
        f"| workers (qcluster, {worker_sampler.peak_procs} processes) | {workers_idle:.0f} MB | "
        f"{workers_peak:.0f} MB | {workers_peak - workers_idle:+.0f} MB | "
        f"{workers_idle_pss:.0f} MB | {worker_sampler.peak_pss:.0f} MB | "
        f"peak ≤ {WORKERS_TARGET_MB} MB |"
    )
    ok = (
        web_over <= WEB_TARGET_MB and workers_peak <= WORKERS_TARGET_MB and succeeded == args.photos
    )
    print("targets met" if ok else "TARGETS MISSED")
    if failed or unfinished:
        print("--- qcluster log (tail) ---")
        print(log.read_text()[-4000:])
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--side", type=int, default=7000)
    parser.add_argument("--format", choices=["png", "jpeg"], default="png")
    parser.add_argument("--timeout", type=float, default=1800.0, help="max wait, seconds")
    args = parser.parse_args(argv)

    setup = Setup.create(
        None,
        {
            "SEGMIND_API_KEY": "",
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_WORKERS": str(WORKERS),
            "Q_TIMEOUT": "600",
        },
    )
    try:
        os.environ.update(setup.env)
        import django

        django.setup()
        return 0 if run(args, setup) else 1
    finally:
        release(setup)


if __name__ == "__main__":
    sys.exit(main())
