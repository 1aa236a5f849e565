"""On a real django-q2 cluster: a shop's single local job does not wait for another
shop's whole batch (the workers claim local jobs in turn across workspaces)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster import Setup, start_cluster, stop_cluster

BATCH = 16


@pytest.fixture(scope="module")
def cluster() -> Iterator[Setup]:
    database_url = os.environ.get("DATABASE_URL", "")
    setup = Setup.create(
        database_url if database_url.startswith("postgres") else None,
        {"SEGMIND_API_KEY": "", "Q_TIMEOUT": "60"},
    )
    proc, _log = start_cluster(setup, workers=2)
    try:
        yield setup
    finally:
        stop_cluster(proc)
        setup.drop()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_shop_s_single_job_starts_before_most_of_another_shop_s_batch(cluster: Setup) -> None:
    submitted = cluster.cli("local-turns", str(BATCH))

    started = wait_for(
        "every job to finish",
        lambda: (
            (rows := cluster.cli("started"))
            and len(rows) == BATCH + 1
            and all(r["status"] == "succeeded" for r in rows)
            and rows
        ),
    )
    order = [row["workspace"] for row in started]
    assert order.count("Alpha") == BATCH
    [beta_id] = submitted["b"]
    assert started[order.index("Beta")]["id"] == beta_id
    # First come, first served would start it last (after all 16). In turn, it starts as
    # soon as a worker is free: after the jobs already running when it was sent.
    assert order.index("Beta") <= 4, order
