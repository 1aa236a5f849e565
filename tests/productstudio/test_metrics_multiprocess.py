"""Under gunicorn, each worker process counts its own requests: with PROMETHEUS_MULTIPROC_DIR,
/metrics adds up every process's, and the gunicorn hooks keep the directory to this run's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from productstudio.lib import metrics as gunicorn_hooks

ROOT = Path(__file__).resolve().parents[2]

SERVE_REQUESTS = """
import django, sys
django.setup()
from django.test import Client
for _ in range(int(sys.argv[1])):
    assert Client().get("/healthz").status_code == 200
"""

SCRAPE = """
import django
django.setup()
from productstudio.health import metrics_text
print(metrics_text().decode())
"""


def _python(code: str, *args: str, directory: Path, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "DATABASE_URL"}}
    env.update(
        ENV_FILE="",
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="productstudio.settings",
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        DATABASE_URL=f"sqlite:///{tmp_path / 'metrics.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gunicorns_start_empties_the_directory_of_a_previous_run(tmp_path, monkeypatch):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_99999.db").write_bytes(b"a previous run's")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))

    gunicorn_hooks.on_starting(SimpleNamespace())
    gunicorn_hooks.child_exit(SimpleNamespace(), SimpleNamespace(pid=99999))

    assert list(directory.iterdir()) == []


def test_metrics_add_up_the_requests_of_every_worker_process(tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()

    _python(SERVE_REQUESTS, "3", directory=directory, tmp_path=tmp_path)
    _python(SERVE_REQUESTS, "2", directory=directory, tmp_path=tmp_path)
    scraped = _python(SCRAPE, directory=directory, tmp_path=tmp_path)

    assert "django_http_requests_before_middlewares_total 5.0" in scraped
