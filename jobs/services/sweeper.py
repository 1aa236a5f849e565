"""The sweeper's work, every minute: jobs whose worker died requeued or failed, tasks lost
sent again, jobs that waited too long failed (their credits back), Segmind's probes
started; and settling what a dead dispatcher left unsent."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import (
    Job,
    JobStatus,
    ProviderPause,
    provider_gave_up_message,
    provider_rate_gave_up_message,
)
from jobs.services.batch_completion import batches_complete_pending
from jobs.services.dispatch import dispatcher_watch
from jobs.services.pauses import (
    _incident_record,
    jobs_waiting_unpaused_resume,
    provider_pauses_stale_clear,
    provider_probes_start,
)
from jobs.services.runs import job_fail
from jobs.services.submit import job_enqueue

logger = logging.getLogger(__name__)


def jobs_sweep(*, stale_after: timedelta | None = None, max_attempts: int = 3) -> dict[str, int]:
    """Requeue jobs whose worker died mid-run; fail them after `max_attempts` tries.

    A job still `running` long after the task timeout has no live worker any more: a run
    that were still alive would have been killed by django-q2's timeout.
    """
    stale_after = stale_after or timedelta(seconds=settings.Q_TIMEOUT * 2)
    cutoff = timezone.now() - stale_after
    # Jobs with a Segmind request are the dispatcher's: they are never submitted again.
    stuck = Job.objects.filter(
        status=JobStatus.RUNNING, started_at__lt=cutoff, provider_request_id=""
    )
    # One by one, so each gives its held credits back.
    failed = sum(
        job_fail(
            job_id=job_id,
            code="worker_lost",
            message="The job stopped moving several times and was given up. Try again.",
        )
        for job_id in list(stuck.filter(attempts__gte=max_attempts).values_list("pk", flat=True))
    )
    resend: list[tuple[uuid.UUID, str]] = []
    for job_id, engine in list(stuck.filter(attempts__lt=max_attempts).values_list("pk", "engine")):
        changes: dict[str, Any] = {"status": JobStatus.QUEUED}
        if engine == "segmind":
            # Its submission may have reached Segmind (see jobs_unsent_settle).
            changes.update(_crash_resubmit_changes())
        if Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, started_at__lt=cutoff).update(
            **changes
        ):
            resend.append((job_id, engine))
    requeued = len(resend)
    # A queued job whose task was lost (the Redis broker is at-most-once) is sent again.
    lost = list(
        Job.objects.filter(status=JobStatus.QUEUED, created_at__lt=cutoff).values_list(
            "pk", "engine"
        )
    )
    resend += lost
    for job_id, engine in resend:
        if engine != "segmind":
            transaction.on_commit(partial(job_enqueue, job_id=job_id, engine=engine))
    # Segmind jobs need the one dispatcher, woken once, not once per job; one that died
    # is replaced once its lease runs out (and its successor settles what it left).
    transaction.on_commit(dispatcher_watch)
    # Jobs waiting for Segmind: a probe once a pause is due, a refund after the limit.
    expired = jobs_wait_expire() + jobs_queue_wait_expire()
    provider_pauses_stale_clear()
    jobs_waiting_unpaused_resume()
    probes = provider_probes_start()
    return {
        "failed": failed,
        "requeued": requeued,
        "resent": len(lost),
        "probes": probes,
        "expired": expired,
        "batches_completed": batches_complete_pending(),
    }


def _crash_resubmit_changes() -> dict[str, Any]:
    return {
        "crash_resubmits": F("crash_resubmits") + 1,
        "resubmitted_after_crash_at": timezone.now(),
    }


def jobs_unsent_settle(*, max_attempts: int = 3) -> dict[str, int]:
    """Settle the Segmind jobs a dead dispatcher left claimed without a request id.

    Only the dispatcher that has just taken the lease over from a holder whose lease ran
    out may call this, before it claims anything: a Segmind job is claimed only by the
    lease's holder, so these are the dead holder's, cut off mid-submission. Segmind has no
    idempotency keys and may have accepted the submission, so each job is counted as
    resubmitted after a crash (`crash_resubmits`, for operators to reconcile) and goes
    back to the queue with its place kept, to be sent again; one claimed `max_attempts`
    times already fails with `worker_lost` and its credits go back. Returns counts.
    """
    unsent = Job.objects.segmind_unsent()
    failed = 0
    for job_id in list(unsent.filter(attempts__gte=max_attempts).values_list("pk", flat=True)):
        with transaction.atomic():
            if job_fail(
                job_id=job_id,
                code="worker_lost",
                message="The job stopped moving several times and was given up. Try again.",
            ):
                failed += 1
                Job.objects.filter(pk=job_id).update(**_crash_resubmit_changes())
    requeued = unsent.filter(attempts__lt=max_attempts).update(
        status=JobStatus.QUEUED, started_at=None, **_crash_resubmit_changes()
    )
    if failed or requeued:
        logger.warning(
            "a Segmind dispatcher died mid-submission: %d job(s) sent again, %d failed; "
            "Segmind may have accepted (and bill) the lost submissions",
            requeued,
            failed,
        )
    return {"requeued": requeued, "failed": failed}


def jobs_queue_wait_expire() -> int:
    """Fail the Segmind jobs still queued, unsent, SEGMIND_RATE_WAIT_LIMIT_SECONDS after
    they were made (their key's rate limit kept them waiting); their credits go back.
    Returns how many failed. Each fails once: the update is conditional on `queued`."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SEGMIND_RATE_WAIT_LIMIT_SECONDS)
    expired = 0
    stale = Job.objects.segmind_queued().filter(created_at__lt=cutoff)
    for job_id, created_at in list(stale.values_list("pk", "created_at")):
        expired += job_fail(
            job_id=job_id,
            code="provider_rate_limited",
            message=provider_rate_gave_up_message(
                waited_seconds=(now - created_at).total_seconds()
            ),
            from_status=JobStatus.QUEUED,
        )
    return expired


def jobs_wait_expire() -> int:
    """Fail the jobs that have waited for Segmind longer than SEGMIND_WAIT_LIMIT_SECONDS;
    their held credits go back. Returns how many failed."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SEGMIND_WAIT_LIMIT_SECONDS)
    expired = 0
    waiting = Job.objects.filter(
        status=JobStatus.WAITING_FOR_PROVIDER, waiting_since__lt=cutoff
    ).select_related("tenant")
    for job in waiting:
        assert job.waiting_since is not None
        last4 = job.tenant.segmind_key_last4 if job.own_key else ""
        message = provider_gave_up_message(
            own_key=job.own_key,
            last4=last4,
            waited_seconds=(now - job.waiting_since).total_seconds(),
        )
        with transaction.atomic():
            if not job_fail(
                job_id=job.pk,
                code="provider_insufficient_credits",
                message=message,
                from_status=JobStatus.WAITING_FOR_PROVIDER,
            ):
                continue
            pauses = ProviderPause.objects.open()
            owner = pauses.filter(tenant=job.tenant) if job.own_key else pauses.filter(tenant=None)
            pause = owner.first()
            _incident_record(
                pause=pause,
                job_id=job.pk,
                key_id=pause.key_id if pause else "",
                own_key=job.own_key,
                message=message,
            )
        expired += 1
    return expired
