"""What the event loop reports to the database thread: one outcome per job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from jobs import images, services
from jobs.engines.segmind import client as segmind


@dataclass(frozen=True)
class _Submitted:
    job_id: uuid.UUID
    model: str
    submission: segmind.Submission
    key: services.SegmindKey


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
    job_id: uuid.UUID
    outputs: list[tuple[bytes, images.ImageInfo]]


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
