"""The running totals of ended jobs (`JobTally`) that /metrics reads instead of the jobs
table: added to by the services that end a job, once the job's end is committed, so a total
never counts a job whose end was rolled back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F

from jobs.models import LATENCY_BUCKETS, JobStatus, JobTally, latency_bucket_field

_ENDED = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
}


def job_tally_add(*, engine: str, status: str, took: timedelta | None = None) -> None:
    """Count one job of `engine` that ended in `status` (succeeded, failed or canceled);
    `took`: a succeeded job's time from its submission to its outputs stored, added to the
    latency histogram. Call it inside the transaction that ends the job: the count is made
    when that commits (dropped if it rolls back), in one UPDATE of the engine's row of its
    own (plus, the first time, its INSERT). Every workspace's jobs of an engine end through
    that one row: its lock is held for that statement only, never through a job's (or the
    dispatcher's batch) transaction. A process that dies between the commit and the UPDATE
    loses that one count."""
    field = _ENDED.get(JobStatus(status))
    if field is None:
        raise ValueError(f"status: {status!r} is not an end state")
    changes: dict[str, Any] = {field: F(field) + 1}
    if took is not None and status == JobStatus.SUCCEEDED:
        seconds = max(0.0, took.total_seconds())
        changes["latency_count"] = F("latency_count") + 1
        changes["latency_sum"] = F("latency_sum") + seconds
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                name = latency_bucket_field(bound)
                changes[name] = F(name) + 1
    transaction.on_commit(lambda: _tally_update(engine, changes), robust=True)


def _tally_update(engine: str, changes: dict[str, Any]) -> None:
    if JobTally.objects.filter(engine=engine).update(**changes):
        return
    # The engine's first ended job: its row made once (two first jobs at once both try;
    # the loser's insert is ignored and its update waits for the winner's row).
    JobTally.objects.bulk_create([JobTally(engine=engine)], ignore_conflicts=True)
    JobTally.objects.filter(engine=engine).update(**changes)
