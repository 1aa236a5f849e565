"""Handing work to what runs it: a task to django-q2 (`enqueue`), and the Segmind
dispatcher (`jobs.dispatcher`) started when it is needed.

The dispatcher runs as the task `jobs.tasks.segmind_dispatch`, enqueued here by name: services
never import the dispatcher (it sits above them). What decides whether one is needed reads
only its lease row: a live holder renews it every few seconds, a dead one's runs out
LEASE_SECONDS after its last renewal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from accounts.models import Lease
from jobs.models import DISPATCHER_LEASE, DISPATCHER_LEASE_SECONDS, Job, JobStatus

LEASE = DISPATCHER_LEASE
LEASE_SECONDS = DISPATCHER_LEASE_SECONDS


def enqueue(func: str, *args: Any, **options: Any) -> None:
    """Hand a task to django-q2 (call it after commit, so the worker finds the rows)."""
    from django_q.tasks import async_task

    async_task(func, *args, **options)


def dispatcher_ensure() -> bool:
    """Make sure a dispatcher will run soon (call it once the new work is committed).

    It enqueues one unless a live dispatcher holds the lease: that one looks for queued
    jobs every tick, and looks again after it gives the lease up. True if it enqueued.
    """
    held = Lease.objects.filter(name=LEASE, leased_until__gt=timezone.now()).exists()
    if not held:
        enqueue("jobs.tasks.segmind_dispatch", task_name=f"segmind-{time.time():.0f}")
    return not held


def dispatcher_watch() -> bool:
    """Start a dispatcher when Segmind jobs are queued or running and nobody holds the
    lease: its holder died (its task is not delivered again for `Q_RETRY`). The successor
    takes the lease over and settles what the dead one left (see `segmind_dispatch`).
    Run by the sweeper and by the `segmind-watch` schedule, half a minute apart, the
    backstop behind `dispatcher_watch_lease` (a dead holder replaced within about
    LEASE_SECONDS plus half a minute, without a worker starting)."""
    return _segmind_work() and dispatcher_ensure()


# A watch polls the lease row this often while it waits for its holder's next renewal.
WATCH_POLL_SECONDS = 0.5


def _segmind_work() -> bool:
    return Job.objects.filter(
        engine="segmind", status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
    ).exists()


def dispatcher_watch_lease(
    *, wait_seconds: float | None = None, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Start a successor as soon as a dead dispatcher's lease runs out.

    Run when a worker of the jobs cluster starts (a cluster started again after a crash,
    or one worker respawned after it died): its dispatcher may have been the holder. When
    Segmind work exists and the lease is held, it reads the lease row every
    WATCH_POLL_SECONDS, holding no transaction, for at most `wait_seconds` (default
    LEASE_SECONDS + 1, longer than a dead holder's lease can last): a renewal (or a new
    holder) means a live dispatcher, and it stops; the lease running out means its holder
    died, and `dispatcher_watch` starts the successor, which takes the lease over. With
    nobody holding it, it starts one at once. Two watches at once may both enqueue a
    dispatcher: only one takes the lease over. True if it enqueued a dispatcher.
    """
    if not _segmind_work():
        return False
    limit = LEASE_SECONDS + 1 if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + limit
    seen: tuple[str, datetime] | None = None
    while True:
        row = Lease.objects.filter(name=LEASE).values_list("holder", "leased_until").first()
        now = timezone.now()
        if row is None or row[1] is None or row[1] <= now:
            return dispatcher_watch()
        if seen is not None and row != seen:
            return False  # renewed, or taken by another: a live dispatcher holds it
        seen = (row[0], row[1])
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        until_expiry = (row[1] - now).total_seconds()
        sleep(max(0.01, min(WATCH_POLL_SECONDS, left, until_expiry)))
