"""What the event loop reports to the database thread: one outcome per job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from jobs import services
from jobs.engines.segmind import client as segmind
from jobs.models import Asset


@dataclass(frozen=True)
class _Submitted:
    job_id: uuid.UUID
    model: str
    submission: segmind.Submission
    key: services.SegmindKey
    # Its results are stored under the workspace's id, without a query on the I/O thread.
    tenant_id: int


@dataclass(frozen=True)
class _OutOfCredit:
    """Segmind refused the submit with 406: the account behind the key has no credit."""

    job_id: uuid.UUID
    key: services.SegmindKey
    provider_message: str


@dataclass(frozen=True)
class _Failed:
    job_id: uuid.UUID
    code: str
    message: str


@dataclass(frozen=True)
class _Completed:
    """The request's images are stored already (on the I/O thread that fetched them):
    `stored` are their rows, not saved yet (`job_succeed` saves them or deletes the
    files)."""

    job_id: uuid.UUID
    stored: list[Asset]


@dataclass(frozen=True)
class _Throttled:
    """The job was not sent for want of its key's budget (a 429, or the gate is closed):
    it goes back to the queue without spending an attempt."""

    job_id: uuid.UUID


@dataclass(frozen=True)
class _Released:
    """Tracking stopped without an outcome (shutdown); the request stays in flight."""

    job_id: uuid.UUID


_Event = _Submitted | _OutOfCredit | _Failed | _Completed | _Released | _Throttled
