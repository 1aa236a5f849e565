"""The scale-out smoke test: the studio as if on four machines, one qcluster killed.

Two web processes (each after the `release:` line, with static files of its own, its
sign-in page and stylesheet served) and two qclusters from `docs/deploy/Procfile` (and the
webhooks cluster), each with a local media folder of its own that stays empty, on
PostgreSQL, Redis, S3 (moto) and the fake Segmind: 200 jobs submitted alternately through
both web processes, the qcluster holding the dispatcher's lease SIGKILLed half-way. See
tests/support/scale_out.py; `python -m bench.scale_out` runs the same and prints the report.

PostgreSQL only: SQLite is one machine's file, and its suite skips this. In CI (.ci/run,
CI=true) the PostgreSQL suite runs it, and a missing Redis fails it.
"""

from __future__ import annotations

import os

import pytest

from tests.support import scale_out

DATABASE_URL = os.environ.get("DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres"),
    reason="many machines share a PostgreSQL server, not an SQLite file: "
    "runs in the PostgreSQL suite (DATABASE_URL=postgres://...)",
)

JOBS = 200


def test_200_jobs_on_two_web_processes_and_two_qclusters_survive_a_killed_qcluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcome = scale_out.run(postgres_url=DATABASE_URL, jobs=JOBS, say=print)
    # The report (throughput, takeover time) goes to the CI log whether the test passes or not.
    with capsys.disabled():
        print("\n" + outcome.report())

    assert outcome.problems() == []
    assert len(outcome.states) == JOBS
    # The kill cut the dead cluster's dispatcher off; the survivor took the lease over and
    # ended the jobs (the killed one never came back to hold it).
    assert outcome.survivor_lease_at is not None
    assert outcome.lease_holders_after_kill[-1] == outcome.survivor
    assert outcome.first_completion_after_kill_at is not None
