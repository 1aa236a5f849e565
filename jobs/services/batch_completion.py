"""A batch is complete once its last job has finished: checked after each job's commit
(exactly one check sets it and sends batch.completed), and by the sweeper as a safety net."""

from __future__ import annotations

import uuid
from functools import partial

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts import services as account_services
from accounts.models import WebhookEventType
from jobs.models import TERMINAL_STATUSES, Batch, Job
from jobs.services.events import _batch_event_data


def batch_complete_check(*, batch_id: uuid.UUID | str) -> bool:
    """Set the batch's `completed_at` if every job of it has finished; True only for the
    one call that sets it.

    One conditional update (`completed_at` still empty, no unfinished job): of checks
    racing after their jobs' commits, the database lets exactly one through; the others
    find it set.
    """
    unfinished = Job.objects.filter(batch_id=OuterRef("pk")).exclude(status__in=TERMINAL_STATUSES)
    with transaction.atomic():
        completed = (
            Batch.objects.filter(pk=batch_id, completed_at__isnull=True)
            .exclude(Exists(unfinished))
            .update(completed_at=timezone.now())
        )
        if completed:
            # In the same transaction: the event exists exactly when the completion does.
            batch = Batch.objects.select_related("tenant").get(pk=batch_id)
            account_services.webhook_event_emit(
                tenant=batch.tenant,
                type=WebhookEventType.BATCH_COMPLETED,
                data=partial(_batch_event_data, batch_id=batch.pk),
            )
    return bool(completed)


def batches_complete_pending() -> int:
    """Complete the batches whose jobs have all finished but that no check completed (a
    process stopped between a job's commit and its check): the sweeper's safety net."""
    unfinished = Job.objects.filter(batch_id=OuterRef("pk")).exclude(status__in=TERMINAL_STATUSES)
    pending = Batch.objects.filter(completed_at__isnull=True).exclude(Exists(unfinished))
    return sum(batch_complete_check(batch_id=pk) for pk in pending.values_list("pk", flat=True))
