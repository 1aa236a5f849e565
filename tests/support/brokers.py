"""The django-q2 brokers the cluster tests run on: the ORM (the database) and Redis.

The two deliver differently (README, "Brokers and delivery"): the ORM broker redelivers a
task not acknowledged within `Q_RETRY`, Redis delivers at most once (a task popped by a
worker that dies is gone). Tests that start real clusters run on both where that makes a
difference. Redis comes from TEST_REDIS_URL (`.ci/run` starts one); without it the Redis
runs are skipped, except in CI (CI=true), where a missing or dead server fails them: CI
must not pass by skipping what it is there to run.

TEST_CLUSTER_BROKERS (`orm,redis` by default) names the brokers the cluster tests run on:
`.ci/run` gives the PostgreSQL suite `orm` only, since the broker's guarantee does not depend
on the database, the SQLite suite runs both, and the scale-out test runs PostgreSQL with Redis
(the two suites share two cores: that keeps CI under 30 minutes).
"""

from __future__ import annotations

import os
import secrets

import pytest

KNOWN_BROKERS = ("orm", "redis")


def _brokers_asked() -> tuple[str, ...]:
    names = os.environ.get("TEST_CLUSTER_BROKERS", "orm,redis").split(",")
    asked = tuple(b.strip() for b in names if b.strip())
    unknown = [b for b in asked if b not in KNOWN_BROKERS]
    if unknown or not asked:
        raise ValueError(f"TEST_CLUSTER_BROKERS: {unknown or asked}: name some of {KNOWN_BROKERS}")
    return asked


BROKERS = _brokers_asked()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def redis_url_for_tests() -> str:
    """TEST_REDIS_URL, once its server answers; skips (fails in CI) without one."""
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        message = "TEST_REDIS_URL is not set: no Redis server to run the Redis broker on"
        if _in_ci():
            pytest.fail(message + " (CI=true: .ci/run must start one)", pytrace=False)
        pytest.skip(message)
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as e:
        pytest.fail(f"TEST_REDIS_URL={url} does not answer: {e}", pytrace=False)
    return url


def broker_env(broker: str) -> dict[str, str]:
    """The environment that puts a cluster (and its web processes) on `broker`.

    On Redis, a queue name of its own (django-q2's list is `django_q:<Q_NAME>:q`): another
    cluster on the same server (an earlier test's, a killed one's leftovers) can neither
    take its tasks nor hand it theirs. The two CI suites use two database numbers."""
    if broker == "orm":
        return {"REDIS_URL": ""}
    if broker == "redis":
        return {"REDIS_URL": redis_url_for_tests(), "Q_NAME": f"ps-test-{secrets.token_hex(4)}"}
    raise ValueError(f"unknown broker {broker!r}; one of {KNOWN_BROKERS}")
