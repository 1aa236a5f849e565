"""The scale-out run: the studio as if on four machines, one of them killed half-way.

Shared by the smoke test (tests/test_scale_out.py) and its benchmark (bench/scale_out.py).
Everything is a real process talking over 127.0.0.1: a fresh PostgreSQL database, Redis
(the broker and the shared cache), moto's S3 server (tests/support/s3_server.py), the fake
Segmind (tests/support/fake_segmind.py), and the lines of `docs/deploy/Procfile` run as an
operator runs them: `release:` (migrations, static files) then `web:` on each of two web
"machines" (two ports, a STATIC_ROOT each), two `worker:` qclusters and the `webhooks:`
cluster, each with a MEDIA_ROOT of its own that must stay empty (media only on S3, as with
no disk shared between machines).

The run: `jobs` Segmind jobs submitted through the API, alternately through both web
processes; once half are in, the qcluster whose worker holds the Segmind dispatcher's lease
is SIGKILLed (its whole process group), and the other half follows. Then every job is read
back, the fake's records are counted per job (each job has its own `sku`), and every
output is downloaded through the web process that did not take the job. `Outcome.problems`
lists what broke a guarantee; `Outcome.report` the figures (throughput, takeover time).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.support.cluster import ROOT, Setup, tree_pids, wait_for
from tests.support.fake_segmind import FakeSegmind
from tests.support.procfile import procfile_lines
from tests.support.s3_server import S3Server

KEY = "scale-out-key"
EMAIL = "owner@scale-out.test"
MODEL = "bria-product-packshot"
# Outputs smaller than Segmind's 2000 px: the run is about processes and guarantees, and
# the machine running it is small; the pixels would only cost CPU.
OUTPUT_SIZE = 512
# Q_WORKERS of each jobs qcluster.
WORKERS = 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _photo() -> bytes:
    buffer = io.BytesIO()
    picture = Image.new("RGB", (64, 64), (200, 80, 50))
    picture.paste((40, 60, 160), (16, 16, 48, 48))  # a product: a flat colour is refused
    picture.save(buffer, format="JPEG")
    return buffer.getvalue()


@dataclass
class Process:
    """One line of the Procfile, running: as if on a machine of its own."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    media: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> set[int]:
        return set(tree_pids(self.popen.pid)) if self.popen.poll() is None else set()

    def stop(self) -> None:
        """SIGTERM (gunicorn) / SIGINT (qcluster) to the group; SIGKILL if it lingers."""
        if self.popen.poll() is not None:
            return
        sig = signal.SIGTERM if self.name.startswith("web") else signal.SIGINT
        try:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        except ProcessLookupError:
            pass


@dataclass
class Outcome:
    """What the run saw: the raw facts, then `problems()` and `report()` over them."""

    jobs: int
    submitted: dict[str, int] = field(default_factory=dict)  # job id → web process index
    states: dict[str, Any] = field(default_factory=dict)
    requests_by_sku: dict[str, list[str]] = field(default_factory=dict)
    downloads: dict[str, str] = field(default_factory=dict)  # job id → "" or what failed
    credits: dict[str, Any] = field(default_factory=dict)
    local_media: dict[str, list[str]] = field(default_factory=dict)
    killed: str = ""
    survivor: str = ""
    lease_holders_after_kill: list[str] = field(default_factory=list)  # process names
    started: float = 0.0
    submitted_at: float = 0.0
    killed_at: float = 0.0
    survivor_lease_at: float | None = None
    first_completion_after_kill_at: float | None = None
    ended_at: float = 0.0
    submit_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every broken guarantee, one line each ([] when the run held them all)."""
        found = list(self.submit_errors) + list(self.page_errors)
        if len(self.submitted) != self.jobs:
            found.append(f"{len(self.submitted)} of {self.jobs} jobs were accepted")
        for job_id, state in self.states.items():
            label = f"job {job_id} ({state['sku']})"
            if state["status"] != "succeeded" or state["outputs"] != 1:
                found.append(f"{label}: {state['status']} with {state['outputs']} output(s)")
            requests = self.requests_by_sku.get(state["sku"], [])
            if state["request_id"] not in requests:
                found.append(f"{label}: its request id is not one the fake made")
            # One submission each; a second only for a job recorded as resubmitted after
            # the crash (its first may or may not have reached Segmind before the kill:
            # the successor cannot tell, so it records it either way).
            if not (len(requests) == 1 or (len(requests) == 2 and state["crash_resubmits"])):
                found.append(
                    f"{label}: {len(requests)} Segmind submissions, "
                    f"{state['crash_resubmits']} recorded as resubmitted"
                )
        missing = set(self.submitted) - set(self.states)
        found += [f"job {job_id}: not found in the database" for job_id in sorted(missing)]
        found += [f"job {job_id}: download {why}" for job_id, why in self.downloads.items() if why]
        if len(self.downloads) != len(self.submitted):
            found.append(f"{len(self.downloads)} of {len(self.submitted)} outputs downloaded")
        entries = self.credits.get("entries", {})
        if (entries.get("hold"), entries.get("capture"), self.credits.get("held")) != (
            self.jobs,
            self.jobs,
            0,
        ):
            found.append(f"credits not held and captured once per job: {self.credits}")
        if entries.get("release"):
            found.append(f"credits released: {self.credits}")
        for name, files in self.local_media.items():
            if files:
                found.append(f"{name} wrote to its local MEDIA_ROOT: {files[:5]}")
        if self.survivor_lease_at is None:
            found.append(f"the survivor ({self.survivor}) never held the dispatcher's lease")
        if self.killed in self.lease_holders_after_kill[1:]:
            found.append("the killed cluster's worker held the lease again after the kill")
        return found

    def report(self) -> str:
        took = self.ended_at - self.started
        lines = [
            f"{self.jobs} Segmind jobs through 2 web processes, 2 worker qclusters"
            f" ({WORKERS} workers each) and the webhooks cluster; PostgreSQL, Redis, S3 (moto),"
            " fake Segmind",
            f"submitted in {self.submitted_at - self.started:.1f} s; all ended"
            f" {took:.1f} s after the first submission: {self.jobs / took:.2f} jobs/s",
            f"killed {self.killed} (SIGKILL to its process group) once half were submitted",
        ]
        if self.survivor_lease_at is not None:
            lines.append(
                f"takeover: {self.survivor} held the dispatcher's lease"
                f" {self.survivor_lease_at - self.killed_at:.1f} s after the kill"
            )
        if self.first_completion_after_kill_at is not None:
            lines.append(
                "first job completed after the kill:"
                f" {self.first_completion_after_kill_at - self.killed_at:.1f} s after it"
            )
        resubmitted = sum(s["crash_resubmits"] for s in self.states.values())
        lines.append(
            f"Segmind submissions: {sum(len(r) for r in self.requests_by_sku.values())}"
            f" for {self.jobs} jobs ({resubmitted} recorded as resubmitted after the crash)"
        )
        return "\n".join(lines)


def _child_env(setup: Setup, media: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_VERSION", "Q_CLUSTER_NAME", "DJANGO_SETTINGS_MODULE")
    }
    # The Procfile names bare programs (python, gunicorn): this interpreter's first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **setup.env, "MEDIA_ROOT": str(media), **extra}


def _release(setup: Setup, line: str, name: str, **extra: str) -> None:
    """The Procfile's `release:` line, as a deploy runs it on machine `name`."""
    media = setup.tmp / f"media-{name}"
    media.mkdir(exist_ok=True)
    result = subprocess.run(
        ["bash", "-c", line],
        cwd=ROOT,
        env=_child_env(setup, media, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"release on {name} failed:\n{result.stderr[-3000:]}")


def _start(setup: Setup, line: str, name: str, **extra: str) -> Process:
    media = setup.tmp / f"media-{name}"
    media.mkdir(exist_ok=True)
    log = setup.tmp / f"qcluster-{name}.log"  # Setup.logs_tail shows qcluster*.log
    popen = subprocess.Popen(
        ["bash", "-c", f"exec {line}" if "&&" not in line else line],
        cwd=ROOT,
        env=_child_env(setup, media, **extra),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Process(name, popen, log, media, port=int(extra.get("PORT", "0")))


def _cluster_up(process: Process, workers: int) -> bool:
    if process.popen.poll() is not None:
        raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()[-3000:]}")
    # A cluster is its workers + 4 processes (sentinel, monitor, pusher, the parent).
    return len(process.pids()) >= workers + 4


def _web_up(process: Process, key: str) -> bool:
    if process.popen.poll() is not None:
        raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()[-3000:]}")
    try:
        answer = httpx.get(
            f"{process.url}/api/v1/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
    except httpx.TransportError:
        return False
    return answer.status_code == 200


def _page_problems(web: Process) -> list[str]:
    """The sign-in page and its stylesheet, from this web process (its own static files)."""
    page = httpx.get(f"{web.url}/login/", timeout=30)
    if page.status_code != 200:
        return [f"{web.name}: /login/ answered {page.status_code}"]
    sheets = re.findall(r'href="(/static/[^"]+\.css)"', page.text)
    if not sheets:
        return [f"{web.name}: /login/ links no stylesheet"]
    problems = []
    for sheet in sheets:
        answer = httpx.get(f"{web.url}{sheet}", timeout=30)
        if answer.status_code != 200 or not answer.content:
            problems.append(f"{web.name}: {sheet} answered {answer.status_code}")
    return problems


class _Database:
    """The run's database, read directly (no subprocess per look: the monitor looks often)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def lease_holder(self) -> tuple[str, datetime | None]:
        row = self.conn.execute(
            "SELECT holder, leased_until FROM jobs_lease WHERE name = 'segmind-dispatcher'"
        ).fetchone()
        return (row[0], row[1]) if row else ("", None)

    def ended(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM jobs_job WHERE status IN ('succeeded', 'failed', 'canceled')"
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()


@contextmanager
def _servers(postgres_url: str, latency: float) -> Iterator[tuple[FakeSegmind, S3Server, Setup]]:
    with ExitStack() as stack:
        fake = stack.enter_context(
            FakeSegmind(port=0, latency=latency, api_key=KEY, packshot_size=OUTPUT_SIZE)
        )
        s3 = stack.enter_context(S3Server())
        setup = Setup.create(
            postgres_url,
            {
                **s3.env,
                "SEGMIND_API_KEY": KEY,
                "SEGMIND_API_BASE": fake.base_url,
                "SEGMIND_RATE_LIMIT": "unlimited",
                "SEGMIND_FIRST_POLL_SECONDS": "0.5",
                "SEGMIND_POLL_INTERVAL_SECONDS": "0.5",
                "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                # The run's own pace is the subject, not the API's per-key limits.
                "API_RATE_LIMIT_WRITE": "100000/min",
                "API_RATE_LIMIT_READ": "100000/min",
                "Q_WORKERS": str(WORKERS),
                "WEB_CONCURRENCY": "1",
                "WEB_THREADS": "8",
            },
            broker="redis",
        )
        stack.callback(setup.drop)
        yield fake, s3, setup


def run(
    *,
    postgres_url: str,
    jobs: int = 200,
    latency: float = 1.0,
    timeout: float = 300.0,
    say: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """The whole run (see the module's doc); `postgres_url` a server where its user may
    CREATE DATABASE. Redis comes from TEST_REDIS_URL (tests/support/brokers.py)."""
    outcome = Outcome(jobs=jobs)
    lines = procfile_lines()
    with _servers(postgres_url, latency) as (fake, _s3, setup):
        setup.cli("price", "1")
        key = setup.manage(
            "create_tenant",
            "--name",
            "Scale Out",
            "--owner",
            EMAIL,
            "--password",
            "scale-out-2026",
            "--api-key",
            "--credits",
            str(jobs),
        ).strip()
        processes: list[Process] = []
        database = _Database(setup.database_url)
        try:
            say("starting 2 web processes, 2 worker qclusters and the webhooks cluster")
            workers = [_start(setup, lines["worker"], f"worker-{n}") for n in (1, 2)]
            processes += workers
            processes.append(_start(setup, lines["webhooks"], "webhooks"))
            webs = []
            for n in (1, 2):
                # Each web machine has its own static files, collected by its release.
                machine = {"STATIC_ROOT": str(setup.tmp / f"static-web-{n}")}
                _release(setup, lines["release"], f"web-{n}", **machine)
                webs.append(
                    _start(
                        setup,
                        lines["web"],
                        f"web-{n}",
                        PORT=str(_free_port()),
                        ADDR="127.0.0.1",
                        **machine,
                    )
                )
                processes.append(webs[-1])
            for worker in workers:
                wait_for(f"{worker.name} to start", partial(_cluster_up, worker, WORKERS))
            for web in webs:
                wait_for(f"{web.name} to answer", partial(_web_up, web, key), every=0.5)
                outcome.page_errors += _page_problems(web)

            photo = _photo()
            clients = [
                httpx.Client(base_url=w.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
                for w in webs
            ]

            def submit(n: int) -> None:
                answer = clients[n % 2].post(
                    "/api/v1/jobs",
                    data={"model": MODEL, "params": json.dumps({"sku": f"scale-{n}"})},
                    files={"image": ("product.jpg", photo, "image/jpeg")},
                )
                if answer.status_code != 201:
                    outcome.submit_errors.append(
                        f"job {n} via web-{n % 2 + 1}: {answer.status_code} {answer.text[:300]}"
                    )
                    return
                outcome.submitted[answer.json()["id"]] = n % 2

            half = jobs // 2
            outcome.started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(submit, range(half)))
            say(f"{half} jobs submitted; killing the qcluster holding the dispatcher's lease")

            def holder_process() -> Process | None:
                holder, until = database.lease_holder()
                if not holder or until is None or until <= datetime.now(until.tzinfo):
                    return None
                pid = int(holder.split("-")[0])
                return next((w for w in workers if pid in w.pids()), None)

            victim: Process = wait_for("a worker to hold the lease", holder_process, every=0.1)
            os.killpg(victim.popen.pid, signal.SIGKILL)
            victim.popen.wait(timeout=30)
            outcome.killed_at = time.monotonic()
            survivor = next(w for w in workers if w is not victim)
            outcome.killed, outcome.survivor = victim.name, survivor.name
            ended_at_kill = database.ended()

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(submit, range(half, jobs)))
            outcome.submitted_at = time.monotonic()
            say(f"all {jobs} submitted; waiting for them to end")

            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                holder = holder_process()
                if holder is not None and (
                    not outcome.lease_holders_after_kill
                    or outcome.lease_holders_after_kill[-1] != holder.name
                ):
                    outcome.lease_holders_after_kill.append(holder.name)
                if holder is survivor and outcome.survivor_lease_at is None:
                    outcome.survivor_lease_at = time.monotonic()
                ended = database.ended()
                if ended > ended_at_kill and outcome.first_completion_after_kill_at is None:
                    outcome.first_completion_after_kill_at = time.monotonic()
                if ended >= len(outcome.submitted):
                    break
                time.sleep(0.2)
            outcome.ended_at = time.monotonic()
            say(f"ended after {outcome.ended_at - outcome.started:.1f} s; checking")

            ids = list(outcome.submitted)
            outcome.states = setup.cli("jobs", *ids) if ids else {}
            requests: dict[str, list[str]] = defaultdict(list)
            for request_id, request in fake.stats()["requests"].items():
                requests[request["params"].get("sku", "")].append(request_id)
            outcome.requests_by_sku = dict(requests)
            outcome.credits = setup.cli("credits", EMAIL)

            def download(job_id: str) -> None:
                other = clients[1 - outcome.submitted[job_id]]  # not the web that took it
                try:
                    job = other.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
                    if len(job["outputs"]) != 1:
                        outcome.downloads[job_id] = f"impossible: {len(job['outputs'])} outputs"
                        return
                    [output] = job["outputs"]
                    data = httpx.get(output["url"], timeout=60).raise_for_status().content
                except Exception as e:  # what failed is the finding
                    outcome.downloads[job_id] = f"failed: {e!r}"[:300]
                    return
                digest = hashlib.sha256(data).hexdigest()
                outcome.downloads[job_id] = (
                    "" if digest == output["sha256"] else f"bytes differ ({len(data)} bytes)"
                )

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(download, ids))
            for client in clients:
                client.close()
        finally:
            database.close()
            for process in reversed(processes):
                process.stop()
        outcome.local_media = {
            p.name: sorted(str(f.relative_to(p.media)) for f in p.media.rglob("*") if f.is_file())
            for p in processes
        }
        for process in processes:
            shutil.rmtree(process.media, ignore_errors=True)
    return outcome


def sku_counts(outcome: Outcome) -> Counter[int]:
    """How many jobs had 1, 2, ... Segmind submissions."""
    return Counter(len(r) for r in outcome.requests_by_sku.values())
