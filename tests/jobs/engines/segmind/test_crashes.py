"""Workers killed with SIGKILL mid-job, on a real django-q2 cluster, against the fake.

The cluster runs on a database of its own (SQLite, or a fresh database on the suite's
PostgreSQL server), and the test drives it with `tests.support.cluster_cli`. The worker killed
is the one holding the Segmind dispatcher's lease (its process id is in the holder); the
last test kills the whole cluster and starts it again. Nothing is swept by hand, and
the schedules (the sweeper, `segmind-watch`) are put off by a day: the cluster recovers
through the watch each worker enqueues when it starts (a whole cluster started again, or
the one worker the sentinel respawns), which starts a successor as soon as the dead
holder's lease runs out; the successor settles what it left.

Each test runs on both brokers (tests/support/brokers.py): on the ORM broker a killed
worker's task would come back after `Q_RETRY`, on Redis it is gone for good; neither is
waited for, and every job still ends exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import BROKERS
from tests.support.cluster import Setup, running_cluster, start_cluster, stop_cluster, wait_for
from tests.support.fake_segmind import FakeSegmind

KEY = "crash-key"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=2.0, api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module", params=BROKERS)
def cluster(request: pytest.FixtureRequest, fake: FakeSegmind) -> Iterator[Setup]:
    # Each broker's run gets a fake that knows no request: the tests find their requests by
    # SKU, and the other broker's run used the same ones.
    fake.reset()
    with running_cluster(
        {
            "SEGMIND_API_KEY": KEY,
            "SEGMIND_API_BASE": fake.base_url,
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_TIMEOUT": "30",
            "SEGMIND_FIRST_POLL_SECONDS": "0.5",
            "SEGMIND_POLL_INTERVAL_SECONDS": "0.5",
        },
        broker=request.param,
    ) as setup:
        # Only the workers' start-up watch may start a successor (see the module's doc).
        setup.cli("schedules-later")
        yield setup


@pytest.fixture(autouse=True)
def clean_faults(fake: FakeSegmind) -> Iterator[None]:
    fake.faults.reset()
    fake.faults.latency = 2.0
    yield
    fake.faults.reset()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"  # a zombie is dead, not yet reaped


def kill_the_dispatcher(cluster: Setup) -> str:
    """SIGKILL the worker whose dispatcher holds the lease; the dead holder's name.

    The lease read may be a moment old: its holder may have handed over meanwhile (a
    hand-over leaves the lease free for a moment, longer on a loaded machine), and the
    kill then hits a worker that no longer holds it. So a kill counts once the lease, read
    after the worker is gone, still names that worker (a dead holder cannot give it up);
    otherwise the new holder is found and killed in turn."""
    while True:
        holder = wait_for(
            "a dispatcher to hold the lease",
            lambda: (lease := cluster.cli("lease"))["held"] and lease["holder"],
            setup=cluster,
        )
        pid = int(holder.split("-")[0])
        with contextlib.suppress(ProcessLookupError):  # gone already: the lease says whose
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
        still: str = cluster.cli("lease")["holder"]
        if still.split("-")[0] == str(pid):
            return still


def finished(cluster: Setup, *job_ids: str) -> dict[str, Any]:
    """Each job's state once every one of them has ended (succeeded or failed)."""
    states: dict[str, Any] = cluster.cli("jobs", *job_ids)
    done = all(s["status"] in ("succeeded", "failed") for s in states.values())
    return states if done and len(states) == len(job_ids) else {}


def watch_ids(cluster: Setup) -> set[str]:
    return {w["id"] for w in cluster.cli("watches")}


def successor_watches(cluster: Setup, dead: str, seen: set[str]) -> list[dict[str, Any]]:
    """The watches run since `seen` that started a dispatcher, by workers other than the
    dead holder's (each is named after its worker's process id).

    Waited for: the cluster's monitor saves a task's result after the task returns, so the
    watch's row may land after the dispatcher it started has finished the job."""
    dead_name = f"segmind-watch-{dead.split('-')[0]}"
    watches: list[dict[str, Any]] = wait_for(
        "the watch that started a successor",
        lambda: [
            w
            for w in cluster.cli("watches")
            if w["id"] not in seen and w["result"] is True and w["name"] != dead_name
        ],
        setup=cluster,
    )
    return watches


def requests_for(fake: FakeSegmind, sku: str) -> list[str]:
    """Segmind request ids the fake made for this sku, in the order it made them."""
    return [rid for rid, req in fake.stats()["requests"].items() if req["params"].get("sku") == sku]


def held_requests(fake: FakeSegmind, sku: str) -> list[str]:
    """Those of them answered late, by `faults.slow`: made once the hold ended."""
    return [
        rid
        for rid, req in fake.stats()["requests"].items()
        if req["params"].get("sku") == sku and req["held"]
    ]


def test_a_dispatcher_killed_before_the_request_id_is_stored_submits_again_once(
    cluster: Setup, fake: FakeSegmind
) -> None:
    # Segmind holds the submission until the test lets it go (or 25 s, inside the
    # client's 30 s read timeout): the dispatcher dies waiting for it, however slow the
    # machine is to find the holder.
    seen = watch_ids(cluster)
    fake.faults.slow(1, seconds=25.0, scope="submit")
    job_id = cluster.cli("submit", "killed-before")["id"]
    wait_for("the submission to reach Segmind", lambda: fake.stats()["submit_attempts"] >= 1)
    dead = kill_the_dispatcher(cluster)
    killed_at = time.monotonic()
    # Segmind had not answered when the dispatcher died, so the job cannot have learnt
    # the request id. (Not read from the job: once the lease runs out, a successor may
    # already have stored its own.)
    assert held_requests(fake, "killed-before") == []
    # Segmind did get it: a request the job never learnt of.
    fake.faults.slow_end()
    orphans = wait_for("the orphaned request", lambda: held_requests(fake, "killed-before"))

    # The worker the sentinel respawns watches the lease; once it runs out, a successor
    # takes it over and sends the job again.
    state = wait_for("the job to finish", lambda: finished(cluster, job_id), setup=cluster)[job_id]
    took = time.monotonic() - killed_at
    print(f"\nthe job ended {took:.1f} s after its dispatcher's worker was killed")
    # Started by the watch of the worker respawned in the dead one's place.
    assert successor_watches(cluster, dead, seen)
    assert state["status"] == "succeeded", state
    assert state["outputs"] == 1
    # Exactly one submission besides the orphan: the one the job keeps.
    requests = requests_for(fake, "killed-before")
    assert len(orphans) == 1 and len(requests) == 2, requests
    assert state["request_id"] in requests and state["request_id"] not in orphans
    assert state["attempts"] == 2
    # Segmind may bill the orphan too: the job says so, for operators to reconcile.
    assert state["crash_resubmits"] == 1


# Far longer than any wait of the test (within the fake's one-hour retention).
IN_FLIGHT_SECONDS = 1800.0


def test_a_dispatcher_killed_after_the_request_id_is_stored_never_submits_again(
    cluster: Setup, fake: FakeSegmind
) -> None:
    # Segmind works on the request until the test moves the fake's clock past it: it is
    # still in flight when the holder is killed, however slow the machine is to find it.
    seen = watch_ids(cluster)
    fake.faults.latency = IN_FLIGHT_SECONDS
    job_id = cluster.cli("submit", "killed-after")["id"]
    request_id = wait_for(
        "the request id to be stored",
        lambda: cluster.cli("job", job_id)["request_id"],
        setup=cluster,
    )
    dead = kill_the_dispatcher(cluster)
    assert cluster.cli("job", job_id)["status"] == "running"
    # Even counted stale at once, a job with a request id is not the sweeper's to resend.
    assert cluster.cli("sweep")["requeued"] == 0
    fake.advance(IN_FLIGHT_SECONDS)  # Segmind is done: the successor finds it completed

    state = wait_for("the job to finish", lambda: finished(cluster, job_id), setup=cluster)[job_id]
    assert state["status"] == "succeeded", state
    assert state["outputs"] == 1
    assert state["request_id"] == request_id
    assert requests_for(fake, "killed-after") == [request_id]
    assert state["crash_resubmits"] == 0
    assert successor_watches(cluster, dead, seen)


# A task timeout this long puts the sweeper's own rule (stale after 2 x Q_TIMEOUT, 20 min)
# out of reach: only the takeover can end the jobs within the test's wait.
LONG_Q_TIMEOUT = 600
# How long the test waits for the jobs to end after the kill: the lease (15 s), the
# restart, Segmind's latency, and wide room for a loaded machine (the time is printed).
# The schedules are put off by a day, so only the workers' start-up watch can do it.
ENDED_WITHIN_SECONDS = 300


@pytest.fixture(params=BROKERS)
def setup(request: pytest.FixtureRequest, fake: FakeSegmind) -> Iterator[Setup]:
    fake.reset()  # as for `cluster`: the other broker's run made requests with these SKUs
    database_url = os.environ.get("DATABASE_URL", "")
    setup = Setup.create(
        database_url if database_url.startswith("postgres") else None,
        {
            "SEGMIND_API_KEY": KEY,
            "SEGMIND_API_BASE": fake.base_url,
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_TIMEOUT": str(LONG_Q_TIMEOUT),
            "SEGMIND_RATE_LIMIT": "unlimited",
            "TRIAL_CREDITS": "20",
            "SEGMIND_FIRST_POLL_SECONDS": "0.5",
            "SEGMIND_POLL_INTERVAL_SECONDS": "0.5",
        },
        broker=request.param,
    )
    try:
        yield setup
    finally:
        setup.drop()


def test_a_cluster_killed_with_12_submissions_in_flight_ends_each_job_once_after_the_lease(
    setup: Setup, fake: FakeSegmind
) -> None:
    email = "whole@example.com"
    setup.cli("price", "1")
    setup.cli("schedules-later")
    proc, _ = start_cluster(setup)
    procs = [proc]
    try:
        # Four jobs in flight at Segmind (request ids stored, being polled)...
        fake.faults.latency = 40.0
        polled = setup.cli("submit", "polled", email, "4")["ids"]
        wait_for(
            "the four request ids to be stored",
            lambda: all(s["request_id"] for s in setup.cli("jobs", *polled).values()),
        )
        # ...and twelve submissions that Segmind holds open (then accepts) when the whole
        # cluster is killed: until the test lets them go, or 25 s (inside the client's 30 s
        # read timeout).
        fake.faults.latency = 2.0
        fake.faults.slow(12, seconds=25.0, scope="submit")
        before = fake.stats()["submit_attempts"]
        unsent = setup.cli("submit", "unsent", email, "12")["ids"]
        wait_for(
            "the twelve submissions to reach Segmind",
            lambda: fake.stats()["submit_attempts"] >= before + 12,
            every=0.05,
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at = time.monotonic()
        assert all(s["request_id"] == "" for s in setup.cli("jobs", *unsent).values())
        fake.faults.slow_end()

        procs.append(start_cluster(setup)[0])
        wait_for(
            "the twelve cut-off jobs to end",
            lambda: finished(setup, *unsent),
            timeout=ENDED_WITHIN_SECONDS,
            every=0.5,
        )
        unsent_took = time.monotonic() - killed_at
        states = wait_for(
            "every job to end",
            lambda: finished(setup, *polled, *unsent),
            timeout=ENDED_WITHIN_SECONDS,
            every=0.5,
        )
        took = time.monotonic() - killed_at
        print(
            f"\nafter the cluster was killed: the 12 cut-off jobs ended in {unsent_took:.1f} s,"
            f" all 16 in {took:.1f} s (lease 15 s, L 2 s; the 4 polled ones take 40 s"
            " at Segmind)"
        )
        # Started by a new worker's watch (the first cluster's found no work at its start);
        # waited for, as the monitor saves a task's result after the task returns.
        wait_for(
            "a new worker's watch to start a successor",
            lambda: any(w["result"] is True for w in setup.cli("watches")),
        )
    finally:
        for running in reversed(procs):
            stop_cluster(running)

    for state in states.values():
        assert state["status"] == "succeeded", state
        assert state["outputs"] == 1, state
    for job_id in polled:
        state = states[job_id]
        # Polled again by the successor, never submitted again, not marked.
        assert requests_for(fake, state["sku"]) == [state["request_id"]]
        assert (state["attempts"], state["crash_resubmits"]) == (1, 0)
    for job_id in unsent:
        state = states[job_id]
        # Segmind accepted the held submission after the kill: an orphan, then the one kept.
        requests = requests_for(fake, state["sku"])
        assert len(requests) == 2 and state["request_id"] in requests, state
        assert (state["attempts"], state["crash_resubmits"]) == (2, 1)
    # Credits right: each job held and captured once, nothing held, nothing released.
    credits = setup.cli("credits", email)
    assert (credits["balance"], credits["held"]) == (20 - 16, 0)
    assert credits["entries"].get("hold") == 16
    assert credits["entries"].get("capture") == 16
    assert "release" not in credits["entries"]
