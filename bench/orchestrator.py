"""End-to-end benchmark of the Segmind orchestration against the fake Segmind API.

Run:

    .venv/bin/python -m bench.orchestrator [--jobs 500] [--latency 5]
        [--database-url postgres://user:pass@host:port/db] [--baseline-jobs 10]

What it does:

1. Starts the fake Segmind (`python -m tests.support.fake_segmind`, a real HTTP server on
   127.0.0.1) in its own process, as Segmind is, where every request completes
   `--latency` seconds after its submit.
2. Makes a fresh database: a SQLite file in a temp dir (default), or, with
   `--database-url`, a new database `cluster_<random>` created on that PostgreSQL server
   (the URL's user must be allowed to CREATE DATABASE) and dropped at the end (see
   `tests.support.cluster`). Runs
   `manage.py migrate` in a subprocess, then `django.setup()` here with the same env.
3. Starts a real cluster: `manage.py qcluster` with Q_WORKERS=2 (ORM broker).
4. Baseline: `--baseline-jobs` django-q2 tasks `bench._bench_tasks.sdk_run`, each calling
   the official SDK's blocking `SegmindClient.run()` (1 s poll) and downloading the output,
   on the same 2 workers. Its jobs/s is the reference rate.
5. Main run: submits `--jobs` jobs for `bria-product-packshot` through
   `jobs.services.job_submit` (a 64x64 JPEG upload; each job gets its own `sku`, so the
   fake can count submissions per job), waits until every job is terminal, and reports
   throughput, latency, submissions per job, cluster CPU per job and peak cluster RSS.

Latency is reported two ways: `submitted` = completed_at - submitted_at (from the moment
Segmind's request id is stored, just after Segmind accepted the request, to the output
stored in the gallery: L plus polling granularity plus download and storage), which is
what the targets are about; and, for information, `created` = completed_at - created_at,
which adds the time a job waits queued. 500 jobs arriving within a few seconds are more
than one dispatcher takes on at once: it starts them at the pace it can follow closely
(see `jobs.dispatcher.TARGET_LOAD`), so later jobs wait queued and
throughput is bounded by the dispatcher's CPU per job.

CPU is the user+system time of the qcluster process tree (live processes plus reaped
children) over the main run, divided by the number of jobs; it includes the output
download, PNG inspection and storage (2000x2000 PNG per job), not only orchestration.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

from tests.support.cluster import PYTHON, ROOT, Setup, start_cluster, stop_cluster, tree_pids

API_KEY = "bench-key"
SLUG = "bria-product-packshot"
WORKERS = 2
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_TARGET_MB = 600


# --- process tree -------------------------------------------------------------------------


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of every live process in the tree, plus its reaped children."""
    ticks = 0
    for pid in tree_pids(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
        ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / CLK_TCK


def _kb(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(root: int) -> tuple[float, float]:
    """(sum of VmRSS, sum of Pss) of the tree in MB; forked workers share pages, so RSS
    counts the shared ones once per process and PSS splits them."""
    pids = tree_pids(root)
    rss = sum(_kb(f"/proc/{pid}/status", "VmRSS:") for pid in pids)
    pss = sum(_kb(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in pids)
    return rss / 1024, pss / 1024


class RssSampler(threading.Thread):
    def __init__(self, root: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.every = every
        self.peak = 0.0
        self.peak_pss = 0.0
        self.peak_procs = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss, pss = tree_rss_mb(self.root)
            self.peak = max(self.peak, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(tree_pids(self.root)))
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# --- the fake Segmind, in a process of its own ---------------------------------------------


class FakeProcess:
    """`python -m tests.support.fake_segmind` in a subprocess; stats over its HTTP control API."""

    def __init__(self, latency: float, extra: list[str] | tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "tests.support.fake_segmind", "--port", "0", "--latency", str(latency),
             "--api-key", API_KEY, *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"the fake Segmind did not start: {line!r}")
        self.base_url = line.rsplit(" ", 1)[-1].strip()

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/_fake/stats", timeout=30, trust_env=False)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- environment ----------------------------------------------------------------------------


def release(setup: Setup) -> None:
    """Let go of the benchmark's database: this process's connections (it ran
    django.setup() on it), then the database and its files."""
    try:
        from django.db import connections

        connections.close_all()
    except Exception:
        pass
    setup.drop()


def make_setup(database_url: str | None, fake: FakeProcess) -> Setup:
    return Setup.create(
        database_url,
        {
            "SEGMIND_API_KEY": API_KEY,
            "SEGMIND_API_BASE": fake.base_url,
            # The unlimited-capacity figures: no rate limit on the key.
            "SEGMIND_RATE_LIMIT": "unlimited",
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_WORKERS": str(WORKERS),
            "Q_TIMEOUT": "120",
        },
    )


# --- workloads ------------------------------------------------------------------------------


def small_jpeg(index: int) -> bytes:
    image = Image.new("RGB", (64, 64), (236, 229, 218))
    draw = ImageDraw.Draw(image)
    draw.rectangle((16, 12, 48, 56), fill=(index % 256, (index // 256) % 256, 80))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def run_baseline(fake: FakeProcess, count: int, timeout: float) -> dict[str, Any]:
    import base64

    from django_q.models import Task
    from django_q.tasks import async_task

    group = f"bench-baseline-{secrets.token_hex(3)}"
    image = base64.b64encode(small_jpeg(0)).decode()
    t0 = time.time()
    for i in range(count):
        async_task(
            "bench._bench_tasks.sdk_run",
            API_KEY,
            fake.base_url,
            SLUG,
            {"image_url": image, "sku": f"baseline-{i}"},
            group=group,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Task.objects.filter(group=group).count() >= count:
            break
        time.sleep(0.25)
    tasks = list(Task.objects.filter(group=group))
    ok = [t.result for t in tasks if t.success and isinstance(t.result, dict)]
    finished = max((r["finished"] for r in ok), default=time.time())
    latencies = [r["finished"] - t0 for r in ok]
    return {
        "jobs": count,
        "succeeded": len(ok),
        "failed": len(tasks) - len(ok),
        "seconds": finished - t0,
        "rate": len(ok) / (finished - t0) if ok else 0.0,
        "p50": pct(latencies, 50),
    }


def run_main(
    fake: FakeProcess, cluster: subprocess.Popen[bytes], jobs: int, timeout: float
) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts import services as accounts_services
    from accounts.models import Membership
    from jobs import services
    from jobs.models import TERMINAL_STATUSES, Job, JobStatus

    user = accounts_services.user_signup(
        email=f"bench-{secrets.token_hex(3)}@example.com",
        password=secrets.token_hex(16),
        workspace_name="Bench",
    )
    tenant = Membership.objects.get(user=user).tenant

    uploads = [small_jpeg(i) for i in range(jobs)]
    # The idle cluster's own CPU (sentinel and broker polling), to subtract it.
    idle0, idle_t0 = tree_cpu_seconds(cluster.pid), time.monotonic()
    time.sleep(5)
    idle_rate = (tree_cpu_seconds(cluster.pid) - idle0) / (time.monotonic() - idle_t0)
    sampler = RssSampler(cluster.pid)
    cpu_before, cpu_t0 = tree_cpu_seconds(cluster.pid), time.monotonic()
    sampler.start()
    t_submit0 = time.time()
    for i, data in enumerate(uploads):
        services.job_submit(
            tenant=tenant,
            user=user,
            model=SLUG,
            upload=SimpleUploadedFile(f"product-{i}.jpg", data, content_type="image/jpeg"),
            params={"sku": f"bench-{i}"},
        )
    t_submit1 = time.time()
    deadline = time.monotonic() + timeout
    ids = Job.objects.filter(tenant=tenant)
    while time.monotonic() < deadline:
        if ids.filter(status__in=TERMINAL_STATUSES).count() >= jobs:
            break
        time.sleep(0.5)
    t_done = time.time()
    sampler.stop()
    cpu_after, cpu_t1 = tree_cpu_seconds(cluster.pid), time.monotonic()
    cpu_busy = (cpu_after - cpu_before) - idle_rate * (cpu_t1 - cpu_t0)

    rows: list[dict[str, Any]] = [
        dict(row)
        for row in ids.values("status", "created_at", "submitted_at", "completed_at", "error_code")
    ]
    done = [r for r in rows if r["status"] == JobStatus.SUCCEEDED]
    errors = Counter(r["error_code"] for r in rows if r["status"] == JobStatus.FAILED)
    not_done = sum(1 for r in rows if r["status"] not in TERMINAL_STATUSES)
    first_created = min(r["created_at"] for r in rows)
    last_completed = max((r["completed_at"] for r in done), default=first_created)
    span = (last_completed - first_created).total_seconds()
    from_created = [(r["completed_at"] - r["created_at"]).total_seconds() for r in done]
    from_submitted = [
        (r["completed_at"] - r["submitted_at"]).total_seconds() for r in done if r["submitted_at"]
    ]

    # The most requests in flight at once (submitted, output not stored yet).
    edges = sorted(
        [(r["submitted_at"], 1) for r in done if r["submitted_at"]]
        + [(r["completed_at"], -1) for r in done if r["submitted_at"]]
    )
    in_flight = peak_in_flight = 0
    for _, step in edges:
        in_flight += step
        peak_in_flight = max(peak_in_flight, in_flight)

    stats = fake.stats()
    per_sku = Counter(
        req["params"].get("sku")
        for req in stats["requests"].values()
        if str(req["params"].get("sku", "")).startswith("bench-")
    )
    counts = [per_sku.get(f"bench-{i}", 0) for i in range(jobs)]
    return {
        "jobs": jobs,
        "succeeded": len(done),
        "failed": sum(errors.values()),
        "errors": dict(errors),
        "unfinished": not_done,
        "submit_seconds": t_submit1 - t_submit0,
        "wait_seconds": t_done - t_submit1,
        "span": span,
        "rate": len(done) / span if span > 0 else 0.0,
        "created": [pct(from_created, q) for q in (50, 95, 99)],
        "submitted": [pct(from_submitted, q) for q in (50, 95, 99)],
        "subs_min": min(counts),
        "subs_max": max(counts),
        "subs_total": sum(counts),
        "cpu_ms_per_job": (cpu_after - cpu_before) * 1000 / jobs,
        "cpu_seconds": cpu_after - cpu_before,
        "cpu_ms_per_job_busy": cpu_busy * 1000 / jobs,
        "idle_cpu_pct": idle_rate * 100,
        "peak_in_flight": peak_in_flight,
        "rss_peak_mb": sampler.peak,
        "pss_peak_mb": sampler.peak_pss,
        "procs": sampler.peak_procs,
        "status_polls": stats["status_polls"],
        "result_fetches": stats["result_fetches"],
        "output_downloads": stats["output_downloads"],
    }


# --- report ---------------------------------------------------------------------------------


def report(setup: Setup, latency: float, base: dict[str, Any], main: dict[str, Any]) -> bool:
    ratio = main["rate"] / base["rate"] if base["rate"] else float("inf")
    c50, c95, c99 = main["created"]
    s50, s95, s99 = main["submitted"]
    n = main["jobs"]
    checks = [
        ("all jobs succeeded", main["succeeded"] == n, f"{main['succeeded']}/{n}"),
        ("throughput >= 50 x baseline", ratio >= 50, f"{ratio:.1f} x"),
        (f"p50 <= L + 1 s ({latency + 1:g} s), submitted", s50 <= latency + 1, f"{s50:.2f} s"),
        (f"p99 <= L + 3 s ({latency + 3:g} s), submitted", s99 <= latency + 3, f"{s99:.2f} s"),
        (
            "exactly one submission per job",
            main["subs_min"] == main["subs_max"] == 1 and main["subs_total"] == n,
            f"min {main['subs_min']} / max {main['subs_max']} / total {main['subs_total']}",
        ),
        (
            "CPU <= 25 ms per job (image work included)",
            main["cpu_ms_per_job"] <= 25,
            f"{main['cpu_ms_per_job']:.1f} ms",
        ),
        (
            f"cluster memory < {PAGE_TARGET_MB} MB (RSS sum)",
            main["rss_peak_mb"] < PAGE_TARGET_MB,
            f"RSS {main['rss_peak_mb']:.0f} MB, PSS {main['pss_peak_mb']:.0f} MB",
        ),
    ]
    print()
    print(f"=== orchestrator benchmark: {setup.label}, {n} jobs, L = {latency:g} s ===")
    print(f"model {SLUG} (fake output 2000x2000 PNG), {WORKERS} django-q2 workers, ORM broker")
    print(
        f"baseline (SDK blocking run() in a task): {base['succeeded']}/{base['jobs']} jobs in "
        f"{base['seconds']:.1f} s = {base['rate']:.3f} jobs/s"
    )
    print(
        f"submitting {n} jobs took {main['submit_seconds']:.1f} s in the bench process; "
        f"then waited {main['wait_seconds']:.1f} s"
    )
    rows = [
        ("jobs/s (first created -> last completed)", f"{main['rate']:.2f}"),
        ("ratio to baseline", f"{ratio:.1f} x"),
        ("latency created->stored p50/p95/p99", f"{c50:.2f} / {c95:.2f} / {c99:.2f} s"),
        ("latency submitted->stored p50/p95/p99", f"{s50:.2f} / {s95:.2f} / {s99:.2f} s"),
        ("succeeded / failed / unfinished", f"{main['succeeded']} / {main['failed']} / "
         f"{main['unfinished']} {main['errors'] or ''}"),
        ("most requests in flight at once", f"{main['peak_in_flight']}"),
        ("submissions per job min / max (total)",
         f"{main['subs_min']} / {main['subs_max']} ({main['subs_total']})"),
        ("fake: status polls / result fetches / downloads",
         f"{main['status_polls']} / {main['result_fetches']} / {main['output_downloads']}"),
        ("cluster CPU per job", f"{main['cpu_ms_per_job']:.1f} ms ({main['cpu_seconds']:.1f} s)"),
        ("  of it above the idle cluster", f"{main['cpu_ms_per_job_busy']:.1f} ms "
         f"(idle cluster uses {main['idle_cpu_pct']:.1f}% of a core)"),
        ("peak cluster RSS (sum) / PSS (sum)",
         f"{main['rss_peak_mb']:.0f} MB / {main['pss_peak_mb']:.0f} MB "
         f"({main['procs']} processes)"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"  {name:<48} {value}")
    print("targets:")
    for name, ok, value in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name:<44} {value}")
    return all(ok for _, ok, _ in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orchestrator", description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--latency", type=float, default=5.0)
    parser.add_argument("--database-url", default="", help="postgres://... (default SQLite)")
    parser.add_argument("--baseline-jobs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600.0, help="max wait for the jobs")
    args = parser.parse_args(argv)

    fake = FakeProcess(args.latency)
    setup = make_setup(args.database_url or None, fake)
    cluster: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    try:
        os.environ.update(setup.env)
        import django

        django.setup()
        cluster, log = start_cluster(setup, WORKERS)
        base = run_baseline(fake, args.baseline_jobs, timeout=args.timeout)
        result = run_main(fake, cluster, args.jobs, timeout=args.timeout)
        ok = report(setup, args.latency, base, result)
        if result["unfinished"] or result["failed"]:
            print("--- qcluster log (tail) ---")
            print(log.read_text()[-4000:])
        return 0 if ok else 1
    finally:
        if cluster is not None:
            stop_cluster(cluster)
        fake.stop()
        release(setup)


if __name__ == "__main__":
    sys.exit(main())
