"""Which broker a cluster test runs on, and what happens without Redis (tests/support/brokers.py):
skipped on a developer's machine, a failure in CI, where the Redis runs are the point."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import brokers
from tests.support.brokers import broker_env


def _outcome_of_redis_run() -> BaseException:
    """What `broker_env("redis")` raised: a skip or a failure are both exceptions, caught
    here so that a skip where a failure is wanted fails the test instead of skipping it."""
    try:
        broker_env("redis")
    except BaseException as e:
        return e
    raise AssertionError("broker_env('redis') neither skipped nor failed")


def test_the_orm_broker_clears_any_redis_url_of_the_caller(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")

    assert broker_env("orm") == {"REDIS_URL": ""}


def test_a_redis_run_without_a_server_is_skipped_outside_ci(monkeypatch):
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.delenv("CI", raising=False)

    outcome = _outcome_of_redis_run()

    assert isinstance(outcome, pytest.skip.Exception), repr(outcome)
    assert "TEST_REDIS_URL is not set" in str(outcome)


def test_a_redis_run_without_a_server_fails_in_ci(monkeypatch):
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.setenv("CI", "true")

    outcome = _outcome_of_redis_run()

    assert isinstance(outcome, pytest.fail.Exception), repr(outcome)
    assert "CI=true: .ci/run must start one" in str(outcome)


def test_a_redis_server_that_does_not_answer_fails_even_outside_ci(monkeypatch):
    # Port 1 on loopback: nothing listens there.
    monkeypatch.setenv("TEST_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("CI", raising=False)

    outcome = _outcome_of_redis_run()

    assert isinstance(outcome, pytest.fail.Exception), repr(outcome)
    assert "does not answer" in str(outcome)


def test_each_redis_run_gets_a_queue_of_its_own(monkeypatch):
    url = "redis://127.0.0.1:6379/3"
    monkeypatch.setattr("tests.support.brokers.redis_url_for_tests", lambda: url)

    first, second = broker_env("redis"), broker_env("redis")

    assert first["REDIS_URL"] == second["REDIS_URL"] == url
    assert first["Q_NAME"] != second["Q_NAME"]


def test_an_unknown_broker_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown broker 'rabbit'"):
        broker_env("rabbit")


def test_the_cluster_tests_brokers_are_both_unless_ci_names_one(monkeypatch):
    monkeypatch.delenv("TEST_CLUSTER_BROKERS", raising=False)
    assert brokers._brokers_asked() == ("orm", "redis")
    monkeypatch.setenv("TEST_CLUSTER_BROKERS", "orm")
    assert brokers._brokers_asked() == ("orm",)
    monkeypatch.setenv("TEST_CLUSTER_BROKERS", "orm,rabbit")
    with pytest.raises(ValueError, match="rabbit"):
        brokers._brokers_asked()


def test_ci_runs_the_redis_cluster_tests_in_the_sqlite_suite_and_the_orm_ones_in_both():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    suites = [line for line in ci.splitlines() if line.startswith("run_suite ")]
    sqlite = next(line for line in suites if line.startswith("run_suite sqlite"))
    assert "TEST_REDIS_URL" in sqlite and "TEST_CLUSTER_BROKERS" not in sqlite
    assert "TEST_CLUSTER_BROKERS=orm" in ci.split("run_suite postgresql", 1)[1].split("&", 1)[0]
