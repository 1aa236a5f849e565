"""LOG_FORMAT=json: one JSON object a line with time, level, logger and message, and the
request id (the one the answer echoes and a server error quotes), the workspace's id and
the job's id where they are known."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import services, tasks
from jobs.services import runs
from productstudio.lib.context import LogContextFilter
from productstudio.lib.logs import JsonFormatter
from tests.support.api_helpers import key_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, as LOG_FORMAT=json's handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_a_server_errors_log_line_carries_the_request_id_the_answer_quotes(
    tenant, credits_api_fails_with, json_lines
):
    credits_api_fails_with(RuntimeError("secret internals"))
    api = key_client(tenant, raise_request_exception=False)

    response = api.get("/api/v1/credits", HTTP_X_REQUEST_ID="edge-42-abc")

    assert response.status_code == 500
    assert response["X-Request-ID"] == "edge-42-abc"
    assert response.json()["request_id"] == "edge-42-abc"
    [line] = [line for line in _lines(json_lines) if line["logger"] == "productstudio.middleware"]
    assert list(line)[:7] == [
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "workspace_id",
        "job_id",
    ]
    assert line["level"] == "ERROR"
    assert line["request_id"] == "edge-42-abc"
    assert line["workspace_id"] == str(tenant.pk)
    assert line["job_id"] == ""
    assert "edge-42-abc" in line["message"]
    assert "secret internals" in line["exception"]
    assert line["time"].endswith("+00:00")


def test_djangos_not_found_line_carries_the_request_id_the_answer_echoes(client, json_lines):
    response = client.get("/no/such/page/", HTTP_X_REQUEST_ID="edge-404-abc")

    assert response.status_code == 404
    assert response["X-Request-ID"] == "edge-404-abc"
    [line] = [line for line in _lines(json_lines) if line["logger"] == "django.request"]
    assert line["message"] == "Not Found: /no/such/page/"
    assert line["request_id"] == "edge-404-abc"
    # Logged after the middleware returned: nothing of the request is left for the next.
    logging.getLogger("after").warning("later")
    assert _lines(json_lines)[-1]["request_id"] == ""


def test_a_job_runs_log_lines_carry_its_id_and_its_workspaces(
    tenant, owner, product_jpeg, monkeypatch, json_lines
):
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )

    def broken(job: Any) -> Any:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(runs, "_render_local", broken)

    tasks.job_run(str(job.pk))

    [line] = [line for line in _lines(json_lines) if line["message"] == f"job {job.pk} failed"]
    assert line["job_id"] == str(job.pk)
    assert line["workspace_id"] == str(tenant.pk)
    assert line["request_id"] == ""
    # Outside the run, nothing of it is left.
    logging.getLogger("after").warning("later")
    assert _lines(json_lines)[-1]["job_id"] == ""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "ENV_FILE": "", "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


LOG_ONE_LINE = (
    "import django, logging; django.setup(); "
    "logging.getLogger('jobs.somewhere').warning('stored %s outputs', 2)"
)


def test_log_format_json_makes_the_settings_write_json_lines():
    result = _python(
        LOG_ONE_LINE, LOG_FORMAT="json", DJANGO_SETTINGS_MODULE="productstudio.settings"
    )

    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "jobs.somewhere",
        "stored 2 outputs",
    )


def test_the_default_log_format_stays_plain_text():
    result = _python(LOG_ONE_LINE, DJANGO_SETTINGS_MODULE="productstudio.settings")

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "stored 2 outputs"


def test_an_unknown_log_format_stops_start_up_naming_it():
    result = _python(
        LOG_ONE_LINE, LOG_FORMAT="xml", DJANGO_SETTINGS_MODULE="productstudio.settings"
    )

    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json, not 'xml'" in result.stderr


def test_a_lone_surrogate_in_a_message_does_not_lose_the_line():
    # What a path with an undecodable byte becomes through `surrogateescape`.
    message = "Not Found: /caf\udce9/"
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.surrogates")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    [line] = raw.getvalue().decode("ascii").splitlines()
    assert json.loads(line)["message"] == message


def test_a_gunicorn_access_line_carries_the_request_id_and_the_requests_fields():
    # The atoms gunicorn passes with its access format (quotes escaped for its text).
    atoms = {
        "h": "10.0.0.5",
        "m": "GET",
        "U": '/api/v1/jobs/"7"',
        "q": "page=2",
        "s": "200",
        "B": 512,
        "M": 37,
        "f": "-",
        "a": 'curl/8 \\"x\\"',
        "{x-request-id}o": "edge-42",
    }
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(m)s %(U)s"', (atoms,), None
    )

    line = json.loads(JsonFormatter().format(record))

    assert line["request_id"] == "edge-42"
    assert line["message"] == '10.0.0.5 "GET /api/v1/jobs/"7""'
    assert {k: line[k] for k in ("method", "path", "query", "status", "bytes")} == {
        "method": "GET",
        "path": '/api/v1/jobs/"7"',
        "query": "page=2",
        "status": 200,
        "bytes": 512,
    }
    assert line["duration_ms"] == 37
    assert line["referer"] == ""
    assert line["user_agent"] == 'curl/8 "x"'


def test_an_access_line_without_a_request_id_header_has_an_empty_one():
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(m)s", ({"m": "GET", "s": "404"},), None
    )

    line = json.loads(JsonFormatter().format(record))

    assert line["request_id"] == ""
    assert line["status"] == 404
