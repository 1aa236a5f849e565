"""On real django-q2 clusters: a workspace whose webhook receiver never answers does not
hold up another workspace's local job, nor its webhooks (deliveries run in the webhooks
cluster, a share per workspace). On each broker (tests/support/brokers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.brokers import BROKERS
from tests.support.cluster import Setup, running_cluster, wait_for
from tests.support.http_server import HangingServer, LocalServer


@pytest.fixture(scope="module", params=BROKERS)
def cluster(request: pytest.FixtureRequest) -> Iterator[Setup]:
    with running_cluster(
        {
            "SEGMIND_API_KEY": "",
            "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "Q_TIMEOUT": "60",
            # Long enough that the hanging attempts are still open when the test looks.
            "WEBHOOK_TIMEOUT_SECONDS": "20",
        },
        webhooks=True,
        broker=request.param,
    ) as setup:
        yield setup


def test_a_hanging_receiver_delays_neither_another_shop_s_job_nor_its_webhook(
    cluster: Setup,
) -> None:
    hanging = HangingServer().start()
    receiver = LocalServer().start()
    try:
        receiver.route("/beta")
        cluster.cli("hooks", "Alpha", hanging.url("/alpha"), "10")
        cluster.cli("hooks", "Beta", receiver.url("/beta"), "1")
        # Alpha's two jobs make 20 deliveries to a receiver that never answers.
        cluster.cli("local", "Alpha", "2")
        wait_for("Alpha's deliveries to hang", lambda: hanging.open >= 2)

        [beta_job] = cluster.cli("local", "Beta", "1")
        wait_for(
            "Beta's job to succeed",
            lambda: cluster.cli("job", beta_job)["status"] == "succeeded",
        )
        wait_for("Beta's webhook", lambda: receiver.received)

        # Meanwhile Alpha's receiver still holds attempts open, and most of its deliveries
        # have not even been tried: they wait for Alpha's share, not anyone else's.
        assert hanging.open >= 1
        alpha = cluster.cli("deliveries", "Alpha")
        assert len(alpha) == 20
        assert sum(1 for d in alpha if d["attempts"] == 0) >= 10
        assert hanging.most_open <= 2 + 1  # its share (a closing socket may overlap)
        assert [r.path for r in receiver.received] == ["/beta"]
        assert cluster.cli("deliveries", "Beta") == [{"status": "succeeded", "attempts": 1}]
    finally:
        receiver.stop()
        hanging.stop()
