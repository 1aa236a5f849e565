"""`LOG_FORMAT=json`: one JSON object per line, for log collectors.

The standard library's `logging.Formatter` and `json` are enough for one flat object a
line: python-json-logger would add a dependency for what is a dozen lines here, and its
field renaming and extras are not needed (the fields are fixed and documented).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Fields of every line, in this order; `exception` and `stack` are added when present.
FIELDS = ("time", "level", "logger", "message", "request_id", "workspace_id", "job_id")


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC, ISO 8601 with milliseconds), level,
    logger, message, and the request, workspace and job ids (`LogContextFilter`), empty
    when unknown."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
            "workspace_id": getattr(record, "workspace_id", ""),
            "job_id": getattr(record, "job_id", ""),
        }
        if record.name == ACCESS_LOGGER and isinstance(record.args, Mapping):
            line.update(_access_fields(record.args))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Anything a log call could pass (a byte string, an object) is written, not raised.
        # ASCII only: a lone surrogate (an undecodable byte in a path, smuggled through
        # `surrogateescape`) is written as `\udcxx` instead of failing the whole line when
        # the stream encodes it.
        return json.dumps(line, ensure_ascii=True, default=str)


# gunicorn's access log: its records carry the request's "atoms" as their arguments
# (productstudio/gunicorn.conf.py), from which the JSON line takes named fields.
ACCESS_LOGGER = "gunicorn.access"
ACCESS_FIELDS = {
    "remote_addr": "h",
    "method": "m",
    "path": "U",
    "query": "q",
    "status": "s",
    "bytes": "B",
    "duration_ms": "M",
    "referer": "f",
    "user_agent": "a",
}
# The response header RequestIdMiddleware sets: gunicorn names it lower-cased.
REQUEST_ID_ATOM = "{x-request-id}o"


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    def atom(key: str) -> Any:
        try:
            value = atoms[key]
        except KeyError:
            return ""
        if isinstance(value, str):
            # gunicorn escapes quotes for its text format; JSON has its own escaping.
            value = value.replace('\\"', '"')
            return "" if value == "-" else value
        return value

    fields = {name: atom(key) for name, key in ACCESS_FIELDS.items()}
    for number in ("status", "bytes", "duration_ms"):
        with contextlib.suppress(TypeError, ValueError):  # "-": not known, left as is
            fields[number] = int(fields[number])
    request_id = atom(REQUEST_ID_ATOM)
    return {"request_id": request_id, **fields} if request_id else fields
