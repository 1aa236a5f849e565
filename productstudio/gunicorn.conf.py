"""gunicorn's configuration for ProductStudio's web process, from the environment.

`gunicorn -c productstudio/gunicorn.conf.py productstudio.wsgi` is the web line of
`docs/deploy/Procfile` and of the systemd unit, and what `make run` starts. Every value comes
from an environment variable (the README's settings table), so one file serves a laptop, one
machine and many:

- `GUNICORN_BIND`: where to listen, one or more `HOST:PORT` or `unix:PATH` separated by
  commas; otherwise `ADDR`:`PORT` (`127.0.0.1`:`8000`): a reverse proxy or load balancer in
  front, which is what serves TLS. Set `ADDR=0.0.0.0` for a balancer on another machine.
- `WEB_CONCURRENCY` worker processes (2) of `WEB_THREADS` threads each (8): the threads
  worker (gthread) keeps every open connection in its poller and hands requests to its
  threads, so slow clients and keep-alives hold no thread and connections beyond the threads
  wait their turn instead of being dropped. Threads suit the studio: its requests wait on the
  database, the storage and photo hosts, not on the CPU (images are made by the workers).
- `WEB_TIMEOUT`: seconds a request may take (default: the longest one the studio has, a
  batch of `BATCH_MAX_ITEMS` photos fetched while its request waits, plus a margin); the
  same long grace on a restart lets such a request finish instead of cutting it.

This file is plain Python read by gunicorn's master before the application is imported, so
it imports nothing from Django (productstudio.lib.metrics does not either).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from productstudio.lib import metrics

# How many of a batch's photos are fetched at once (jobs.services.batches.BATCH_FETCH_THREADS;
# tests/productstudio/test_gunicorn_conf.py holds the two equal).
BATCH_FETCH_THREADS = 8
# What a request needs besides its fetches: the checks, storing, the transaction.
REQUEST_MARGIN_SECONDS = 60


def _positive_int(name: str, default: int, *, least: int = 1) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {value!r}.") from None
    if number < least:
        raise SystemExit(f"{name} must be at least {least}, not {number}.")
    return number


def longest_request_seconds() -> int:
    """The worst case of the slowest synchronous request: a full batch whose every photo
    host takes the whole `FETCH_TIMEOUT`, `BATCH_FETCH_THREADS` at a time. (The gallery's
    ZIP reads at most `GALLERY_ZIP_MAX_ASSETS` stored images: far less.)"""
    raw = os.environ.get("FETCH_TIMEOUT", "").strip() or "20"
    try:
        fetch_timeout = float(raw)
    except ValueError:
        raise SystemExit(f"FETCH_TIMEOUT must be a number of seconds, not {raw!r}.") from None
    batch_items = _positive_int("BATCH_MAX_ITEMS", 100)
    rounds = math.ceil(batch_items / BATCH_FETCH_THREADS)
    return math.ceil(rounds * fetch_timeout) + REQUEST_MARGIN_SECONDS


def _bind() -> list[str]:
    explicit = [b.strip() for b in os.environ.get("GUNICORN_BIND", "").split(",") if b.strip()]
    if explicit:
        return explicit
    addr = os.environ.get("ADDR", "").strip() or "127.0.0.1"
    port = _positive_int("PORT", 8000)
    host = f"[{addr}]" if ":" in addr else addr
    return [f"{host}:{port}"]


wsgi_app = "productstudio.wsgi:application"
bind = _bind()

worker_class = "gthread"
workers = _positive_int("WEB_CONCURRENCY", 2)
threads = _positive_int("WEB_THREADS", 8)
# Connections a worker holds open at once, most of them idle keep-alives or waiting for a
# thread; the listen queue (backlog) takes a burst beyond that.
worker_connections = 1000
backlog = 2048
keepalive = 5

# With threads, `timeout` is how long a worker may go without a heartbeat (its main loop
# beats while requests run in threads); a stuck worker is replaced after it. On a restart
# (SIGTERM, SIGHUP) each worker stops taking connections and has `graceful_timeout` to
# finish the requests it holds: long enough for the longest one.
timeout = _positive_int("WEB_TIMEOUT", longest_request_seconds())
graceful_timeout = timeout

# Off (0) by default: a replaced worker leaves its counter and histogram files in
# PROMETHEUS_MULTIPROC_DIR (prometheus_client drops only a dead process's live gauges and
# offers no clean way to fold the rest into one file), and every scrape reads them all
# until gunicorn restarts, so recycling every N requests would make scrapes slower without
# end. `WEB_MAX_REQUESTS=N` replaces a worker after about N requests (with 10 % jitter, so
# the workers do not restart together) where memory a long life gathers matters more.
max_requests = _positive_int("WEB_MAX_REQUESTS", 0, least=0)
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0

# The heartbeat file in memory, not on a disk that can stall (Docker-like hosts have no
# tmpfs /tmp).
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None

# Requests to stdout, with their duration in milliseconds and the request id (the
# `X-Request-ID` the studio answers with, which its own log lines carry); errors to stderr.
# The journal or the process manager keeps both.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms %({x-request-id}o)s'
)


def _log_format() -> str:
    value = os.environ.get("LOG_FORMAT", "").strip().lower() or "text"
    if value not in ("text", "json"):
        raise SystemExit(f"LOG_FORMAT must be text or json, not {value!r}.")
    return value


# LOG_FORMAT=json: gunicorn's own lines are JSON too, by the studio's formatter (standard
# library only, so the master can load it), the access lines with the request's fields
# (productstudio/lib/logs.py). Neither logger propagates: the studio's root handler in each
# worker would write every line a second time.
if _log_format() == "json":
    logging.captureWarnings(True)  # the master's Python warnings: JSON lines too
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "productstudio.lib.logs.JsonFormatter"}},
        "handlers": {
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
            "error": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": "INFO", "handlers": ["error"]},
        "loggers": {
            "gunicorn.error": {
                "level": loglevel.upper(),
                "handlers": ["error"],
                "propagate": False,
            },
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }

# gunicorn 25's control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl): two web
# processes of one user (two ports on one machine) would take it from each other.
control_socket_disable = True

proc_name = "productstudio-web"

# /metrics adds up every worker's request figures through files in PROMETHEUS_MULTIPROC_DIR
# (productstudio/lib/metrics.py). Unset, each gunicorn makes a directory of its own when it
# starts (the workers, forked after, inherit it) and removes it when it stops: two web
# processes on one machine must not add up each other's figures.
_own_metrics_dir = ""


def on_starting(server: Any) -> None:
    global _own_metrics_dir
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _own_metrics_dir = tempfile.mkdtemp(prefix="productstudio-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir
        server.log.info("Metrics of the workers in %s", _own_metrics_dir)
    metrics.on_starting(server)


child_exit = metrics.child_exit


def on_exit(server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
