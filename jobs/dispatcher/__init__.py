"""Running jobs on Segmind without holding a worker while Segmind works.

One dispatcher task does all the talking to Segmind for the whole cluster. It claims
queued Segmind jobs, submits them, commits each request id, polls every request in
flight, and downloads and stores the outputs as soon as a request completes. One thread
takes turns: it runs an event loop (one `SegmindClient`, its requests gated to its
connection pools, polls before submits) until there is news, then applies the news to
the database in one short transaction with the loop paused. Only the output downloads
and input reads run on a few threads, so that a slow image host cannot stall the loop.
So one worker carries hundreds of requests and the other workers stay free for local
jobs. New jobs are taken on at the pace the dispatcher can follow (`TARGET_LOAD`):
beyond it they wait queued, rather than results waiting unfetched.

Each job goes to Segmind with its key: the workspace's own key for a job with `own_key`,
the platform's otherwise. The dispatcher keeps one client per key, made when first
needed, and decrypts each workspace's key once per run. When Segmind answers 406 (the
account behind a key is out of credit), the key is paused (`services.provider_pause_open`)
and the refused job goes to `waiting_for_provider`, the first one included: jobs for it
that are claimed while the pause is open wait too instead of being sent, except the
pause's probe, whose acceptance clears the pause.

Every key has its own budget of requests per sliding window
(`jobs.engines.segmind.ratelimit.KeyGate`):
the platform's is SEGMIND_RATE_LIMIT, a workspace's own key's its plan. Jobs are claimed
only as far as their key's budget has room, in turns across workspaces (each workspace's
oldest job first, then each one's second, and so on), so one shop's batch does not hold
another shop's job back by more than about one turn. A 429 closes the key's gate until
its Retry-After (or a backoff): the refused job, and the claimed jobs that would follow
it, go back to `queued` with their attempt given back and their place kept. Status polls
take budget too when SEGMIND_RATE_LIMIT_COUNTS_POLLS is on, ahead of new submissions.
Each key's history is kept in `SegmindKeyBudget`, written at the lease renewals, so a
new dispatcher (or one that replaces a crashed one) carries on from it.

A lease row keeps it to one dispatcher at a time. The holder renews it every few
seconds, and claims jobs only while it holds it. A dispatcher killed mid-run leaves its
lease to run out `LEASE_SECONDS` after its last renewal. The worker that takes its
place (respawned by django-q2's sentinel, or a whole cluster started again) runs a watch
(`services.dispatcher_watch_lease`, enqueued by `jobs.signals.watch_on_spawn`) that starts a
successor as soon as the lease runs out; the next submit, the sweeper and the
`segmind-watch` schedule (twice a minute between them) are the backstop. The successor
takes the lease over and settles at once the jobs the dead one left claimed
without a request id: they go back to the queue marked as resubmitted after a crash
(`services.jobs_unsent_settle`), since Segmind may have accepted the lost submission.
It stops after its budget, well inside the task timeout, and enqueues itself again while
work remains.

Each step is claimed with a conditional update: queued -> running (the claim), running
without a request id -> with one (the request id is committed before anything polls it),
running -> succeeded or failed (only one run stores the outputs). So a dispatcher that
overlaps a dying one, or a task delivered twice, does each step once, and a job whose
request id is stored is never submitted again.

Where things live (only jobs.tasks imports this package; the modules import each other
directly):

- lease:       the lease taken, taken over from a dead holder, renewed and given up; the
               order of turns (`served`) handed on with it
- submissions: a request's client, payload, polling schedule and committed request id
- outcomes:    what the event loop reports to the database thread
- outputs:     a completed request's images downloaded, checked and stored (`_fetch_outputs`)
- loop:        one run (`_Dispatcher`): claiming in turn, each key's budget, submit, poll
"""

from __future__ import annotations

import logging
import os
import secrets

from django.conf import settings
from django.db import transaction

from jobs import services
from jobs.dispatcher.lease import SERVED_KEPT, _release_lease, _take_lease, _take_over
from jobs.dispatcher.loop import TARGET_LOAD, _Dispatcher
from jobs.dispatcher.submissions import _client, poll_interval, request_store, segmind_payload
from jobs.models import Job
from jobs.services.dispatch import LEASE, LEASE_SECONDS, dispatcher_ensure

# What the tests and the cluster tool reach for; callers use only `segmind_dispatch`.
__all__ = [
    "LEASE",
    "LEASE_SECONDS",
    "SERVED_KEPT",
    "TARGET_LOAD",
    "_Dispatcher",
    "_client",
    "_take_over",
    "poll_interval",
    "request_store",
    "segmind_dispatch",
    "segmind_payload",
]

logger = logging.getLogger(__name__)


def segmind_dispatch(*, budget_seconds: float | None = None) -> dict[str, int]:
    """Submit queued Segmind jobs and see every request in flight to its end.

    Runs until nothing is left or the budget is spent, then enqueues itself again if work
    remains. Returns counts of what this run did.
    """
    budget = budget_seconds if budget_seconds is not None else settings.SEGMIND_DISPATCHER_SECONDS
    # The process id tells an operator (and the crash tests) which worker holds it.
    holder = f"{os.getpid()}-{secrets.token_hex(6)}"
    dead = _take_over(holder)
    if not dead and not _take_lease(holder):
        return {"submitted": 0, "polled": 0, "finished": 0, "skipped": 1}
    dispatcher = _Dispatcher(holder, budget)
    try:
        if dead:
            # Its lease ran out, so it is gone, and it alone claimed Segmind jobs: those
            # it left without a request id are settled now, before this one claims any.
            # (Those with one are polled again by this run, never submitted again.)
            settled = services.jobs_unsent_settle()
            logger.warning("Segmind dispatcher %s died; took over its lease: %s", dead, settled)
        counts = dispatcher.run()
    finally:
        try:
            dispatcher.save_gates()
        except Exception:  # the lease must still be given up
            logger.exception("saving the Segmind key budgets failed")
        _release_lease(holder, dispatcher.lease_state())
    # After the release: a job committed before this check is seen here, and one
    # committed after it finds the lease free and enqueues a dispatcher itself.
    if Job.objects.segmind_queued().exists() or Job.objects.segmind_in_flight().exists():
        transaction.on_commit(dispatcher_ensure)
    return counts
