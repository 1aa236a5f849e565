"""gunicorn's hooks for Prometheus' multiprocess mode.

gunicorn runs several worker processes, and each keeps its own django-prometheus figures:
with PROMETHEUS_MULTIPROC_DIR set (a directory of this machine, empty at start, writable
by the workers), prometheus_client writes each process's figures to files there, and
/metrics adds them up (productstudio/health.py). `productstudio/gunicorn.conf.py` calls
these hooks by the names gunicorn gives them: `on_starting = metrics.on_starting` and
`child_exit = metrics.child_exit`. The studio's own figures come from the database and
need none of this.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def on_starting(server: Any) -> None:
    """Start from an empty directory: files of a previous run's processes would be added
    to this run's figures (their pids are reused)."""
    directory = multiproc_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.db"):
        path.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker process ended: its live gauges are dropped (its counters are kept)."""
    if multiproc_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
