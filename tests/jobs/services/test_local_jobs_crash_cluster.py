"""A whole jobs cluster SIGKILLed while it runs local jobs, on each broker.

The killed cluster had fetched tasks from the broker: the one its worker was running and
those waiting in its prefetch queue. The ORM broker would deliver them again after
`Q_RETRY` (minutes); Redis never will. Either way the sweeper (here run by hand once the
cluster is dead, as its schedule would after 2 x Q_TIMEOUT) sends the job that was running
back to the queue and a task again for each job still queued, and the cluster started
again ends every job exactly once: the claims are conditional updates, so a task delivered
twice, or one that finds its job taken, runs nothing twice.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from jobs.models import Job, JobStatus
from tests.support.brokers import BROKERS
from tests.support.cluster import Setup, start_cluster, stop_cluster, wait_for

JOBS = 8
# Big enough photos that each job takes a moment: the kill lands with one running.
PHOTO_SIZE = 1600


@pytest.fixture(params=BROKERS)
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    database_url = os.environ.get("DATABASE_URL", "")
    setup = Setup.create(
        database_url if database_url.startswith("postgres") else None,
        # One worker prefetching two tasks: the kill takes three tasks with it.
        {"SEGMIND_API_KEY": "", "Q_TIMEOUT": "60", "Q_QUEUE_LIMIT": "2"},
        broker=request.param,
    )
    try:
        yield setup
    finally:
        setup.drop()


def _states(setup: Setup, ids: list[str]) -> dict[str, Any]:
    states: dict[str, Any] = setup.cli("jobs", *ids)
    return states


def test_a_cluster_killed_mid_run_ends_every_local_job_once_after_the_sweep(
    setup: Setup,
) -> None:
    # The sweeper's schedule would sweep with its own (long) rule meanwhile: put off.
    setup.cli("schedules-later")
    proc, _ = start_cluster(setup, workers=1)
    procs = [proc]
    try:
        ids: list[str] = setup.cli("local", "Alpha", str(JOBS), str(PHOTO_SIZE))
        # Read here, not through `cli`: a process started per look takes seconds on a
        # loaded machine, long enough for the worker to finish every job before the kill.
        running_jobs = (
            f"SELECT COUNT(*) FROM {Job._meta.db_table} WHERE status = '{JobStatus.RUNNING}'"
        )
        wait_for(
            "a job to be running", lambda: setup.sql_value(running_jobs), every=0.02, setup=setup
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        before = _states(setup, ids)
        unfinished = [i for i, s in before.items() if s["status"] in ("queued", "running")]
        assert unfinished, before
        # The dead cluster's fetched tasks are no longer in the broker's queue: fewer
        # tasks wait there than jobs are left (on Redis they are gone for good).
        waiting = setup.cli("broker-queue")["waiting"]
        assert waiting < len(unfinished), (waiting, before)

        swept = setup.cli("sweep")
        assert swept["requeued"] == sum(s["status"] == "running" for s in before.values())
        procs.append(start_cluster(setup, workers=1)[0])
        states = wait_for(
            "every job to end",
            lambda: (
                (s := _states(setup, ids))
                and all(v["status"] in ("succeeded", "failed") for v in s.values())
                and s
            ),
            setup=setup,
        )
    finally:
        for running in reversed(procs):
            stop_cluster(running)

    for state in states.values():
        assert state["status"] == "succeeded", state
        assert state["outputs"] == 1, state
    # Claimed once, or twice for the one the kill cut off mid-run.
    attempts = sorted(state["attempts"] for state in states.values())
    assert attempts[:-1] == [1] * (JOBS - 1) and attempts[-1] in (1, 2), attempts
