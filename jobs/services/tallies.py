"""The running totals of ended jobs (`JobTally`) that /metrics reads instead of the jobs
table: added to by the services that end a job, once the job's end is committed, so a total
never counts a job whose end was rolled back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

from django.db import transaction
from django.db.models import F

from jobs.models import LATENCY_BUCKETS, JobStatus, JobTally, latency_bucket_field

_ENDED = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
}

# What to add to each field of an engine's row.
Deltas = dict[str, int | float]


class _Gathered:
    """The counts of one transaction that ends many jobs, per engine."""

    def __init__(self) -> None:
        self.engines: defaultdict[str, defaultdict[str, int | float]] = defaultdict(
            lambda: defaultdict(int)
        )

    def add(self, engine: str, deltas: Deltas) -> None:
        totals = self.engines[engine]
        for field, value in deltas.items():
            totals[field] += value

    def flush(self) -> None:
        for engine, deltas in self.engines.items():
            _tally_update(engine, deltas)


_gathering: ContextVar[_Gathered | None] = ContextVar("job_tallies_gathering", default=None)


def job_tally_add(*, engine: str, status: str, took: timedelta | None = None) -> None:
    """Count one job of `engine` that ended in `status` (succeeded, failed or canceled);
    `took`: a succeeded job's time from its submission to its outputs stored, added to the
    latency histogram. Call it inside the transaction that ends the job: the count is made
    when that commits (dropped if it, or the savepoint it was made in, rolls back), in one
    UPDATE of the engine's row of its own (plus, the first time, its INSERT); inside
    `job_tallies_gathered`, in one UPDATE per engine for all the jobs it ended. Every
    workspace's jobs of an engine end through that one row: its lock is held for that
    statement only, never through a job's (or the dispatcher's batch) transaction. A
    process that dies between the commit and the UPDATE loses those counts."""
    field = _ENDED.get(JobStatus(status))
    if field is None:
        raise ValueError(f"status: {status!r} is not an end state")
    deltas: Deltas = {field: 1}
    if took is not None and status == JobStatus.SUCCEEDED:
        seconds = max(0.0, took.total_seconds())
        deltas["latency_count"] = 1
        deltas["latency_sum"] = seconds
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                deltas[latency_bucket_field(bound)] = 1
    gathered = _gathering.get()
    if gathered is None:
        transaction.on_commit(lambda: _tally_update(engine, deltas), robust=True)
    else:
        # Each job's count still waits for its own commit (a savepoint rolled back drops
        # it); the gathering's flush, registered after them all, makes the UPDATEs.
        transaction.on_commit(lambda: gathered.add(engine, deltas), robust=True)


@contextmanager
def job_tallies_gathered() -> Iterator[None]:
    """Inside one transaction that ends many jobs (the Segmind dispatcher's batch): their
    counts are made in one UPDATE per engine once it commits, not one per job."""
    gathered = _Gathered()
    token = _gathering.set(gathered)
    try:
        yield
    finally:
        _gathering.reset(token)
        # Also after an error the caller caught: the counts of the jobs whose ends commit.
        transaction.on_commit(gathered.flush, robust=True)


def _tally_update(engine: str, deltas: Deltas) -> None:
    changes = {field: F(field) + value for field, value in deltas.items()}
    if JobTally.objects.filter(engine=engine).update(**changes):
        return
    # The engine's first ended job: its row made once (two first jobs at once both try;
    # the loser's insert is ignored and its update waits for the winner's row).
    JobTally.objects.bulk_create([JobTally(engine=engine)], ignore_conflicts=True)
    JobTally.objects.filter(engine=engine).update(**changes)
