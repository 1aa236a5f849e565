"""Segmind's rate limit on a real django-q2 cluster: the dispatcher hands over to a fresh
task every few seconds, so the window's history must carry across runs (and processes)
for the budget to hold; one shop's batch and another shop's single job take turns.

The fake enforces 4 requests per 3 s per key (time scaled down from a per-minute plan);
the cluster's SEGMIND_RATE_LIMIT says the same."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cluster import Setup, running_cluster, wait_for
from tests.support.fake_segmind import FakeSegmind

KEY = "rate-key"
LIMIT, WINDOW = 4, 3.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=1.0, api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(fake: FakeSegmind) -> Iterator[Setup]:
    with running_cluster(
        {
            "SEGMIND_API_KEY": KEY,
            "SEGMIND_API_BASE": fake.base_url,
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_TIMEOUT": "30",
            # Hand over often: the window's history must survive each hand-over.
            "SEGMIND_DISPATCHER_SECONDS": "4",
            "SEGMIND_RATE_LIMIT": f"{LIMIT}/{WINDOW:g}s",
            "SEGMIND_FIRST_POLL_SECONDS": "0.5",
            "SEGMIND_POLL_INTERVAL_SECONDS": "0.5",
        }
    ) as setup:
        yield setup


def most_in_any_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered[i:] if t < start + window) for i, start in enumerate(ordered)),
        default=0,
    )


def test_a_batch_larger_than_the_window_finishes_and_another_shops_job_gets_the_next_turn(
    cluster: Setup, fake: FakeSegmind
) -> None:
    fake.faults.rate_window(LIMIT, window=WINDOW, retry_after=1)
    batch = cluster.cli("submit", "batch", "shop-a@example.com", "14")["ids"]
    [single] = cluster.cli("submit", "single", "shop-b@example.com")["ids"]
    ids = [*batch, single]

    def finished() -> dict[str, Any] | None:
        times = cluster.cli("times", *ids)
        done = all(t["status"] in ("succeeded", "failed", "canceled") for t in times.values())
        return times if done else None

    times = wait_for("every job to finish", finished)

    assert [t["status"] for t in times.values()] == ["succeeded"] * len(ids)
    assert all(t["attempts"] == 1 for t in times.values())
    stats = fake.stats()["rate_by_api_key"][KEY]
    assert stats["submissions"] == len(ids)
    # Paced by the budget across hand-overs: a loaded machine may see one late arrival.
    assert stats["refused_submissions"] <= 1
    assert most_in_any_window(stats["submitted"], WINDOW) <= LIMIT
    # Shop B's job waited for at most one of shop A's jobs after it was made.
    b = times[single]
    ahead = [
        t
        for job_id, t in times.items()
        if job_id != single and b["created_at"] < t["submitted_at"] < b["submitted_at"]
    ]
    assert len(ahead) <= 1, (len(ahead), b)
