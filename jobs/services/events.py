"""The webhook events of jobs and batches; their data is the job or batch as the API shows
it (`jobs.payloads`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from accounts import services as account_services
from accounts.models import WebhookEndpoint
from jobs.models import Job
from jobs.payloads import batch_event_data, job_event_data


def _job_event_emit(
    *, job: Job, type: str, listening: Sequence[WebhookEndpoint] | None = None
) -> None:
    """The job's webhook event, in the transaction that finished it. Its data is the
    job as the API shows it, built only when an endpoint or the job's URL listens."""

    def data() -> dict[str, Any]:
        return job_event_data(job_id=job.pk)

    account_services.webhook_event_emit(
        tenant=job.tenant, type=type, data=data, job=job, listening=listening
    )


def _batch_event_data(*, batch_id: uuid.UUID) -> dict[str, Any]:
    return dict(batch_event_data(batch_id=batch_id))
