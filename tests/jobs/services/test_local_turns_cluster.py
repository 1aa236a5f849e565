"""On a real django-q2 cluster: a shop's single local job does not wait for another
shop's whole batch (the workers claim local jobs in turn across workspaces). On each
broker (tests/support/brokers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.brokers import BROKERS
from tests.support.cluster import Setup, running_cluster, wait_for

BATCH = 16
# The cluster's workers (running_cluster starts two).
WORKERS = 2


@pytest.fixture(scope="module", params=BROKERS)
def cluster(request: pytest.FixtureRequest) -> Iterator[Setup]:
    with running_cluster({"SEGMIND_API_KEY": "", "Q_TIMEOUT": "60"}, broker=request.param) as setup:
        yield setup


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
    # soon as a worker is free: after the jobs already started when it was sent, and at
    # most one more per worker (one each may have been claimed as it was committed). How
    # many had started depends on the machine's speed, so the test reads it, not guesses.
    sent_after = submitted["alpha_started_when_b_sent"]
    assert sent_after + WORKERS < BATCH, f"B was sent too late to tell: {sent_after} started"
    assert order.index("Beta") <= sent_after + WORKERS, (sent_after, order)
