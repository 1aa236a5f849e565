"""A worker killed with SIGKILL mid-job, on a real django-q2 cluster, against the fake.

The cluster runs on a database of its own (SQLite, or a fresh database on the suite's
PostgreSQL server), and the test drives it with `tests.cluster_cli`. The worker killed
is the one holding the Segmind dispatcher's lease (its process id is in the holder).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.cluster import Setup, running_cluster, wait_for
from tests.fake_segmind import FakeSegmind

KEY = "crash-key"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=2.0, api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(fake: FakeSegmind) -> Iterator[Setup]:
    with running_cluster(
        {
            "SEGMIND_API_KEY": KEY,
            "SEGMIND_API_BASE": fake.base_url,
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_TIMEOUT": "30",
            "SEGMIND_FIRST_POLL_SECONDS": "0.5",
            "SEGMIND_POLL_INTERVAL_SECONDS": "0.5",
        }
    ) as setup:
        yield setup


@pytest.fixture(autouse=True)
def clean_faults(fake: FakeSegmind) -> Iterator[None]:
    fake.faults.reset()
    fake.faults.latency = 2.0
    yield
    fake.faults.reset()


def kill_the_dispatcher(cluster: Setup) -> None:
    # Between one dispatcher's hand-over and the next one's start nobody holds the lease
    # (a loaded machine makes that gap longer): wait for the holder, then kill it.
    holder = wait_for(
        "a dispatcher to hold the lease",
        lambda: (lease := cluster.cli("lease"))["held"] and lease["holder"],
    )
    os.kill(int(holder.split("-")[0]), signal.SIGKILL)


def requests_for(fake: FakeSegmind, sku: str) -> list[str]:
    """Segmind request ids the fake made for this sku, in the order it made them."""
    return [rid for rid, req in fake.stats()["requests"].items() if req["params"].get("sku") == sku]


def recover(cluster: Setup) -> dict[str, int]:
    """What happens within a minute or two on its own: the dead holder's lease runs out,
    then the sweeper (a schedule) runs. Here the sweep is run as soon as the lease is free."""
    wait_for("the dead dispatcher's lease to run out", lambda: not cluster.cli("lease")["held"])
    result: dict[str, int] = cluster.cli("sweep")
    return result


def test_a_dispatcher_killed_before_the_request_id_is_stored_submits_again_once(
    cluster: Setup, fake: FakeSegmind
) -> None:
    # Segmind takes 10 s to answer the submission: the dispatcher dies waiting for it. The
    # margin is wide because finding the holder starts a process, slow on a busy CI machine.
    fake.faults.slow(1, seconds=10.0, scope="submit")
    job_id = cluster.cli("submit", "killed-before")["id"]
    wait_for("the submission to reach Segmind", lambda: fake.stats()["submit_attempts"] >= 1)
    kill_the_dispatcher(cluster)
    assert cluster.cli("job", job_id)["request_id"] == ""
    # Segmind did get it: a request the job never learnt of.
    wait_for("the orphaned request", lambda: requests_for(fake, "killed-before"))

    assert recover(cluster)["requeued"] == 1
    state = wait_for(
        "the job to finish",
        lambda: (s := cluster.cli("job", job_id))["status"] in ("succeeded", "failed") and s,
    )
    assert state["status"] == "succeeded", state
    assert state["outputs"] == 1
    orphan, kept = requests_for(fake, "killed-before")
    # Exactly one submission once the request id was stored: the one the job keeps.
    assert state["request_id"] == kept != orphan
    assert state["attempts"] == 2


def test_a_dispatcher_killed_after_the_request_id_is_stored_never_submits_again(
    cluster: Setup, fake: FakeSegmind
) -> None:
    # Long enough to outlast a dispatcher's hand-over while the test finds the holder.
    fake.faults.latency = 20.0
    job_id = cluster.cli("submit", "killed-after")["id"]
    request_id = wait_for(
        "the request id to be stored", lambda: cluster.cli("job", job_id)["request_id"]
    )
    kill_the_dispatcher(cluster)
    assert cluster.cli("job", job_id)["status"] == "running"

    assert recover(cluster)["requeued"] == 0
    state = wait_for(
        "the job to finish",
        lambda: (s := cluster.cli("job", job_id))["status"] in ("succeeded", "failed") and s,
    )
    assert state["status"] == "succeeded", state
    assert state["outputs"] == 1
    assert state["request_id"] == request_id
    assert requests_for(fake, "killed-after") == [request_id]
