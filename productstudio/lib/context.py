"""What a log line is about: the request, the workspace and the job being worked on.

Context variables, so each thread of a web server and each asyncio task of the Segmind
dispatcher carries its own values: the request-id middleware sets the request's, the
workspace views and the API's authentication the workspace's, and the job runners the
job's. `LogContextFilter` copies them onto every log record (`request_id`,
`workspace_id`, `job_id`; "" when unknown), for the JSON formatter and any other.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
# The request's id is also kept in its WSGI environ (`request.META`): Django writes its
# "Not Found" and other 4xx lines after the middleware has returned, with the request.
REQUEST_ID_ENVIRON = "productstudio.request_id"
workspace_id_var: ContextVar[str] = ContextVar("workspace_id", default="")
job_id_var: ContextVar[str] = ContextVar("job_id", default="")

# An incoming X-Request-ID is kept when it looks like an id (a proxy's or a client's: a
# UUID, a hex or base64url token): short, and nothing a log reader could be fooled by.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(incoming: str | None) -> str:
    """The incoming id when it is sane, else a new one (32 hex digits)."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The id of the request being answered, or a new one outside a request (so an error
    reported outside a request still has an id to quote)."""
    return request_id_var.get() or uuid.uuid4().hex


def workspace_bind(workspace_id: object) -> None:
    """Say which workspace the rest of this request (or task) acts for."""
    workspace_id_var.set(str(workspace_id) if workspace_id is not None else "")


@contextmanager
def job_context(job_id: object, workspace_id: object = None) -> Iterator[None]:
    """Log lines inside carry this job's id (and its workspace's, when given)."""
    job_token = job_id_var.set(str(job_id))
    workspace_token = workspace_id_var.set(str(workspace_id)) if workspace_id is not None else None
    try:
        yield
    finally:
        job_id_var.reset(job_token)
        if workspace_token is not None:
            workspace_id_var.reset(workspace_token)


class LogContextFilter(logging.Filter):
    """Puts the request, workspace and job ids on every record passing a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or _request_id_of(record)
        record.workspace_id = workspace_id_var.get()
        record.job_id = job_id_var.get()
        return True


def _request_id_of(record: logging.LogRecord) -> str:
    """The id of the request a record was logged with (`extra={"request": ...}`, as
    Django's django.request lines are), or ""."""
    meta = getattr(getattr(record, "request", None), "META", None)
    value = meta.get(REQUEST_ID_ENVIRON, "") if isinstance(meta, dict) else ""
    return value if isinstance(value, str) else ""
