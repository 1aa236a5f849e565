"""The one representation of a job and of a batch, as the API shows them: what their webhook
events carry.

For now the serializers stay in `jobs.api` and are imported when an event's data is built
(so `jobs.services` does not import the API at import time).
"""

from __future__ import annotations

from typing import Any


def job_event_data(*, job_id: Any) -> Any:
    """A job as `GET /api/v1/jobs/<id>` shows it, for its webhook events."""
    from jobs import api

    return api.job_event_data(job_id=job_id)


def batch_event_data(*, batch_id: Any) -> Any:
    """A batch as `GET /api/v1/batches/<id>` shows it, for its `batch.completed` event."""
    from jobs import api

    return api.batch_event_data(batch_id=batch_id)
