"""Fair share under Segmind's rate limit: one shop's big batch, another shop's trickle.

Run:

    .venv/bin/python -m bench.fairshare [--batch 300] [--rate 20] [--window 6]
        [--latency 5] [--b-every 3] [--retry-after 1] [--count-polls]
        [--limit-setting 20/6s] [--database-url postgres://...]

What it does:

1. Starts the fake Segmind in its own process with a per-key sliding-window limit of
   `--rate` requests per `--window` seconds (time scaled: 20 per 6 s stands for 200 a
   minute), answering 429 past it with `Retry-After: --retry-after`; every request
   completes `--latency` seconds after its submit.
2. A fresh database and a real cluster (two django-q2 workers, ORM broker), with
   `SEGMIND_RATE_LIMIT` set to `--limit-setting` (by default the fake's own limit; set it
   higher to watch a mis-set limit converge).
3. Shop A submits one batch of `--batch` packshot jobs; shop B, starting a second
   later, submits one job every `--b-every` seconds until A's batch is done.
4. Reports, against the targets of issue 17:
   - A's makespan (batch created -> its last output stored) against the physical limit
     N x window / rate + L, where N counts every submission Segmind accepted while A's
     batch ran (A's and B's: they share the key's budget);
   - submissions refused with 429, of all submission attempts;
   - B's wait from its job's creation to Segmind accepting it, against one slot
     (window / rate) plus L;
   - status polls per job, and failed jobs.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.orchestrator import (
    API_KEY,
    SLUG,
    WORKERS,
    FakeProcess,
    pct,
    small_jpeg,
    tree_cpu_seconds,
)
from tests.cluster import Setup, start_cluster, stop_cluster


def make_setup(database_url: str | None, fake: FakeProcess, args: argparse.Namespace) -> Setup:
    return Setup.create(
        database_url,
        {
            "SEGMIND_API_KEY": API_KEY,
            "SEGMIND_API_BASE": fake.base_url,
            "SEGMIND_RATE_LIMIT": args.limit_setting or f"{args.rate}/{args.window:g}s",
            "SEGMIND_RATE_LIMIT_COUNTS_POLLS": "1" if args.count_polls else "0",
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_WORKERS": str(WORKERS),
            "Q_TIMEOUT": "120",
        },
    )


def _shop(name: str) -> tuple[Any, Any]:
    from accounts import services as accounts_services
    from accounts.models import Membership

    user = accounts_services.user_signup(
        email=f"{name.lower()}-{secrets.token_hex(3)}@example.com",
        password=secrets.token_hex(16),
        workspace_name=f"Shop {name}",
    )
    return user, Membership.objects.get(user=user).tenant


def _upload(name: str, index: int) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, small_jpeg(index), content_type="image/jpeg")


class Trickle(threading.Thread):
    """Shop B: one job every `every` seconds until told to stop."""

    def __init__(self, user: Any, tenant: Any, every: float) -> None:
        super().__init__(daemon=True)
        self.user, self.tenant, self.every = user, tenant, every
        self.sent = 0
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from jobs import services

        try:
            while not self._stop_event.wait(self.every if self.sent else 1.0):
                services.job_submit(
                    tenant=self.tenant,
                    user=self.user,
                    model=SLUG,
                    upload=_upload(f"b-{self.sent}.jpg", 10_000 + self.sent),
                    params={"sku": f"b-{self.sent}"},
                )
                self.sent += 1
        except BaseException as e:  # reported, not swallowed
            self.error = e
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run(fake: FakeProcess, cluster: subprocess.Popen[bytes], args: argparse.Namespace) -> Any:
    from jobs import services
    from jobs.models import TERMINAL_STATUSES, Job, JobStatus

    user_a, shop_a = _shop("A")
    user_b, shop_b = _shop("B")
    sources = [
        services.PhotoSource(label=f"a-{i}.jpg", upload=_upload(f"a-{i}.jpg", i), sku=f"a-{i}")
        for i in range(args.batch)
    ]
    cpu0 = tree_cpu_seconds(cluster.pid)
    trickle = Trickle(user_b, shop_b, args.b_every)
    trickle.start()
    portal = services.batch_submit_portal(
        tenant=shop_a, user=user_a, model=SLUG, sources=sources, name="A's catalogue"
    )
    jobs_a = Job.objects.filter(batch=portal.batch)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if jobs_a.filter(status__in=TERMINAL_STATUSES).count() >= args.batch:
            break
        time.sleep(0.5)
    trickle.stop()
    jobs_b = Job.objects.filter(tenant=shop_b)
    while time.monotonic() < deadline:
        if not jobs_b.exclude(status__in=TERMINAL_STATUSES).exists():
            break
        time.sleep(0.5)
    cpu = tree_cpu_seconds(cluster.pid) - cpu0
    fields = ("status", "created_at", "submitted_at", "completed_at", "error_code", "attempts")
    rows_a = list(jobs_a.values(*fields))
    rows_b = list(jobs_b.values(*fields))
    return rows_a, rows_b, trickle, cpu, fake.stats(), JobStatus


def report(args: argparse.Namespace, setup: Setup, result: Any) -> bool:
    rows_a, rows_b, trickle, cpu, stats, status = result
    rows = rows_a + rows_b
    done_a = [r for r in rows_a if r["status"] == status.SUCCEEDED]
    failed = Counter(r["error_code"] for r in rows if r["status"] == status.FAILED)
    unfinished = sum(1 for r in rows if r["status"] not in (status.SUCCEEDED, status.FAILED))
    start_a = min(r["created_at"] for r in rows_a)
    end_a = max((r["completed_at"] for r in done_a), default=start_a)
    makespan = (end_a - start_a).total_seconds()
    accepted_during = sum(
        1 for r in rows if r["submitted_at"] is not None and start_a <= r["submitted_at"] <= end_a
    )
    slot = args.window / args.rate
    limit = accepted_during * slot + args.latency
    ratio = makespan / limit if limit else float("inf")
    per_key = stats.get("rate_by_api_key", {}).get(API_KEY, {})
    accepted = per_key.get("submissions", 0)
    refused = per_key.get("refused_submissions", 0)
    refused_share = refused / (accepted + refused) if accepted + refused else 0.0
    waits_b = [
        (r["submitted_at"] - r["created_at"]).total_seconds() for r in rows_b if r["submitted_at"]
    ]
    b_target = slot + args.latency
    b_max = max(waits_b, default=float("nan"))
    polls_per_job = stats["status_polls"] / len(rows) if rows else 0.0
    checks = [
        ("A's makespan <= 1.05 x (N x slot + L)", ratio <= 1.05, f"{ratio:.3f}"),
        ("submissions refused with 429 <= 1%", refused_share <= 0.01, f"{refused_share:.2%}"),
        (f"B's wait <= one slot + L ({b_target:.2f} s)", b_max <= b_target, f"max {b_max:.2f} s"),
        ("failed jobs = 0", not failed and not unfinished, f"{sum(failed.values())} {dict(failed)}"),
        ("B's trickle ran", trickle.error is None and trickle.sent > 0, f"{trickle.sent} jobs"),
    ]
    print()
    print(
        f"=== fair-share benchmark: {setup.label}, A: batch of {args.batch}, B: one job every "
        f"{args.b_every:g} s ==="
    )
    print(
        f"fake Segmind: {args.rate} requests per {args.window:g} s per key (one slot "
        f"{slot:.2f} s), Retry-After {args.retry_after}, polls "
        f"{'counted' if args.count_polls else 'not counted'}, L = {args.latency:g} s; "
        f"SEGMIND_RATE_LIMIT={args.limit_setting or f'{args.rate}/{args.window:g}s'}"
    )
    lines = [
        ("A's makespan (created -> last stored)", f"{makespan:.1f} s"),
        ("physical limit N x slot + L", f"{limit:.1f} s (N = {accepted_during} accepted)"),
        ("submissions accepted / refused (429)", f"{accepted} / {refused}"),
        ("polls refused (429)", f"{per_key.get('refused_polls', 0)}"),
        ("B's jobs", f"{len(rows_b)}"),
        (
            "B's wait created -> accepted p50 / p95 / max",
            f"{pct(waits_b, 50):.2f} / {pct(waits_b, 95):.2f} / {b_max:.2f} s",
        ),
        ("status polls per job", f"{polls_per_job:.2f}"),
        (
            "result fetches / downloads",
            f"{stats['result_fetches']} / {stats['output_downloads']}",
        ),
        ("attempts per job (max)", f"{max((r['attempts'] for r in rows), default=0)}"),
        ("cluster CPU per job", f"{cpu * 1000 / max(1, len(rows)):.1f} ms"),
    ]
    for name, value in lines:
        print(f"  {name:<46} {value}")
    print("targets:")
    for name, ok, value in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name:<46} {value}")
    return all(ok for _, ok, _ in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairshare", description=__doc__)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--latency", type=float, default=5.0)
    parser.add_argument("--b-every", type=float, default=3.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--count-polls", action="store_true")
    parser.add_argument("--limit-setting", default="", help="SEGMIND_RATE_LIMIT (default: R/Ws)")
    parser.add_argument("--database-url", default="", help="postgres://... (default SQLite)")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)

    extra = ["--rate-limit", f"{args.rate}/{args.window:g}s"]
    if args.retry_after is not None:
        extra += ["--retry-after", f"{args.retry_after:g}"]
    if args.count_polls:
        extra.append("--count-polls")
    fake = FakeProcess(args.latency, extra)
    setup = make_setup(args.database_url or None, fake, args)
    cluster: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    try:
        os.environ.update(setup.env)
        import django

        django.setup()
        cluster, log = start_cluster(setup, WORKERS)
        result = run(fake, cluster, args)
        ok = report(args, setup, result)
        if not ok and log is not None:
            print("--- qcluster log (tail) ---")
            print(log.read_text()[-3000:])
        return 0 if ok else 1
    finally:
        if cluster is not None:
            stop_cluster(cluster)
        fake.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        setup.drop()


if __name__ == "__main__":
    sys.exit(main())
