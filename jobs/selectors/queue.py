"""Where a queued job stands in line, and when a batch should be done.

A Segmind job waits for its key's turn: the dispatcher claims queued jobs per key (the
platform's, or a workspace's own) in turns across workspaces, oldest first within each
(`JobQuerySet.segmind_in_turn`), and sends them as the key's budget allows
(`jobs.engines.segmind.ratelimit.KeyGate`). So a job's place is the number of jobs of its
key ahead of it in that order (plus those claimed and not yet accepted by Segmind), and its
start is when the key's budget, as the dispatcher last saved it, has room for that many
requests.

A local job waits for a worker: workspaces take turns on the shared workers (the one with
the fewest local jobs running first, then each workspace's oldest job before its next,
then the oldest), and its start is about `ceil(place / Q_WORKERS)` local jobs' usual time
away.

Estimates, not promises: a 429, a slower model or a cancel moves them; the pages that show
them ask again every few seconds. Each function here makes a fixed number of queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Lease, Tenant
from jobs.engines.segmind import ratelimit
from jobs.models import (
    DISPATCHER_LEASE,
    LOCAL_TYPICAL_SECONDS,
    Batch,
    Job,
    JobQuerySet,
    JobStatus,
    SegmindKeyBudget,
)

# The dispatcher's lease row keeps each model's recent inference time ("expected").

# A Segmind model the catalog gives no time for: assume this long.
SEGMIND_FALLBACK_SECONDS = 30.0
# Local jobs' usual time: the average of this many recent ones.
LOCAL_RECENT_JOBS = 20


@dataclass(frozen=True)
class QueuePlace:
    """A queued job's place in its line: `position` 1 is next; `ahead` jobs go first."""

    position: int
    ahead: int
    estimated_start_at: datetime


def _before(job: Job) -> Q:
    # Strictly older in the order (created_at, id): ties broken as the dispatcher does.
    return Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, id__lt=job.id)


def _same_key(jobs: JobQuerySet, job: Job) -> JobQuerySet:
    """Jobs sent with the same Segmind key as `job`'s."""
    return jobs.sent_with_key_of(job.tenant_id if job.own_key else None)


def _key_gate(job: Job) -> ratelimit.KeyGate:
    """The job's key's budget: its rate as the dispatcher will use it (the setting, or the
    workspace's plan) with the history the dispatcher last saved (none yet: a fresh one)."""
    budgets = SegmindKeyBudget.objects.order_by("-updated_at")
    if job.own_key:
        tenant: Tenant = job.tenant
        rate = ratelimit.Rate(tenant.segmind_per_minute, 60.0)
        budget = budgets.filter(tenant_id=job.tenant_id).first()
    else:
        rate = ratelimit.parse_rate(settings.SEGMIND_RATE_LIMIT)
        budget = budgets.filter(tenant__isnull=True).first()
    return ratelimit.KeyGate.from_state(
        rate,
        budget.state if budget is not None else None,
        retry_after_max=settings.SEGMIND_RETRY_AFTER_MAX_SECONDS,
    )


def _segmind_place(job: Job, now: datetime) -> QueuePlace:
    turn = (
        1
        + _same_key(Job.objects.segmind_queued(), job)
        .filter(tenant_id=job.tenant_id)
        .filter(_before(job))
        .count()
    )
    queued_ahead = (
        _same_key(Job.objects.all(), job)
        .segmind_in_turn()
        .filter(Q(turn__lt=turn) | (Q(turn=turn) & _before(job)))
        .count()
    )
    # Claimed by the dispatcher and waiting at the key's gate: they go first.
    claimed = (
        _same_key(Job.objects.filter(status=JobStatus.RUNNING, engine="segmind"), job)
        .filter(provider_request_id="")
        .count()
    )
    ahead = queued_ahead + claimed
    gate = _key_gate(job)
    at = now.timestamp()
    start = max(at, gate.forecast(at, ahead + 1))
    return QueuePlace(ahead + 1, ahead, datetime.fromtimestamp(start, UTC))


def local_typical_seconds() -> float:
    """How long a local job takes lately: the average of the last few that succeeded, or
    `LOCAL_TYPICAL_SECONDS` before there are any."""
    rows = list(
        Job.objects.filter(status=JobStatus.SUCCEEDED, started_at__isnull=False)
        .exclude(engine="segmind")
        .order_by("-completed_at")
        .values_list("started_at", "completed_at")[:LOCAL_RECENT_JOBS]
    )
    took = [(done - started).total_seconds() for started, done in rows if done and started]
    return max(0.1, sum(took) / len(took)) if took else LOCAL_TYPICAL_SECONDS


def _local_place(job: Job, now: datetime) -> QueuePlace:
    running = Job.objects.local_running_of(job.tenant_id).count()
    rank = (
        1 + Job.objects.local_queued().filter(tenant_id=job.tenant_id).filter(_before(job)).count()
    )
    served = Job.objects.local_last_start_of(job.tenant_id).first()
    # Served longest ago first, never served before all (as `local_in_turn` orders).
    if served is None:
        served_before = Q(tenant_served__isnull=True) & _before(job)
    else:
        served_before = (
            Q(tenant_served__isnull=True)
            | Q(tenant_served__lt=served)
            | (Q(tenant_served=served) & _before(job))
        )
    ahead = (
        Job.objects.local_in_turn()
        .filter(
            Q(tenant_running__lt=running)
            | Q(tenant_running=running, tenant_rank__lt=rank)
            | (Q(tenant_running=running, tenant_rank=rank) & served_before)
        )
        .count()
    )
    position = ahead + 1
    rounds = math.ceil(position / max(1, settings.Q_WORKERS))
    start = now + timedelta(seconds=rounds * local_typical_seconds())
    return QueuePlace(position, ahead, start)


def job_queue_place(*, job: Job, now: datetime | None = None) -> QueuePlace | None:
    """A queued job's place in its line and when it should start; None unless `queued`
    (a job waiting for Segmind's credit has its own `waiting` state instead)."""
    if job.status != JobStatus.QUEUED:
        return None
    now = now or timezone.now()
    if job.engine == "segmind":
        return _segmind_place(job, now)
    return _local_place(job, now)


def model_typical_seconds(*, model: str, engine: str) -> float:
    """How long a job of `model` usually runs once started: for Segmind, the inference
    time the dispatcher learnt lately, else the catalog's; for the local engine, its
    recent average."""
    if engine != "segmind":
        return local_typical_seconds()
    state = Lease.objects.filter(name=DISPATCHER_LEASE).values_list("state", flat=True).first()
    learnt = ((state or {}).get("expected") or {}).get(model)
    if isinstance(learnt, int | float) and learnt > 0:
        return float(learnt)
    from jobs.catalog import get_model

    spec = get_model(model)
    return spec.typical_seconds if spec and spec.typical_seconds else SEGMIND_FALLBACK_SECONDS


def batch_finish_estimate(*, batch: Batch, now: datetime | None = None) -> datetime | None:
    """When the batch's last job should be done: the start of its last queued job in turn
    order plus the model's usual time, or, with none queued, when the last one started
    should finish. None when the batch is done, or when its only unfinished jobs wait for
    Segmind's credit (no one can say when that clears)."""
    now = now or timezone.now()
    unfinished = Job.objects.filter(
        batch_id=batch.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    )
    last = (
        unfinished.filter(status=JobStatus.QUEUED)
        .select_related("tenant")
        .order_by("-created_at", "-id")
        .first()
    )
    if last is not None:
        place = job_queue_place(job=last, now=now)
        assert place is not None
        typical = model_typical_seconds(model=last.model, engine=last.engine)
        return place.estimated_start_at + timedelta(seconds=typical)
    newest = unfinished.order_by(F("started_at").desc(nulls_last=True)).first()
    if newest is None:
        return None
    typical = model_typical_seconds(model=newest.model, engine=newest.engine)
    started = newest.started_at or now
    return max(now, started + timedelta(seconds=typical))
