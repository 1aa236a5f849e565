"""`LOG_FORMAT=json`: one JSON object per line, for log collectors.

The standard library's `logging.Formatter` and `json` are enough for one flat object a
line: python-json-logger would add a dependency for what is a dozen lines here, and its
field renaming and extras are not needed (the fields are fixed and documented).
"""

from __future__ import annotations

import json
import logging
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
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Anything a log call could pass (a byte string, an object) is written, not raised.
        return json.dumps(line, ensure_ascii=False, default=str)
