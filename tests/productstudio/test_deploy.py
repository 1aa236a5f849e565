"""The one-machine deployment: `docs/deploy/Procfile` and the systemd units beside it run the
same commands, the units are valid for systemd, and the Procfile's lines really migrate,
collect the static files and serve the studio (through gunicorn, as production does)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import ROOT, Setup, wait_for
from tests.support.procfile import (
    SYSTEMD,
    Command,
    parse_shell_line,
    procfile_commands,
    procfile_lines,
    read_unit,
)
from tests.support.web_server import free_port

UNITS = {
    "release": "productstudio-release.service",
    "web": "productstudio-web.service",
    "worker": "productstudio-worker.service",
    "webhooks": "productstudio-webhooks.service",
}
ENV_EXAMPLE = SYSTEMD / "productstudio.env.example"
VENV_BIN = str(Path(sys.executable).parent)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def test_the_procfile_names_the_release_web_worker_and_webhooks_processes():
    assert set(procfile_lines()) == set(UNITS)


def test_the_procfile_runs_gunicorn_with_the_projects_config_and_both_clusters():
    commands = procfile_commands()

    assert commands["web"] == [Command(("gunicorn", "-c", "productstudio/gunicorn.conf.py"))]
    assert commands["worker"] == [Command(("python", "manage.py", "qcluster"))]
    assert commands["webhooks"] == [
        Command(("python", "manage.py", "qcluster"), (("Q_CLUSTER_NAME", "webhooks"),))
    ]
    assert [c.argv[2] for c in commands["release"]] == ["migrate", "collectstatic"]
    assert all("--no-input" in c.argv for c in commands["release"])


@pytest.mark.parametrize("process", sorted(UNITS))
def test_each_systemd_unit_runs_exactly_its_procfile_lines_commands(process):
    unit = read_unit(SYSTEMD / UNITS[process])

    assert unit.commands == procfile_commands()[process]
    # Every program from the deployment's virtualenv, in the checkout the units run in.
    assert unit.program_dirs == {"/srv/productstudio/.venv/bin"}
    assert unit.settings["WorkingDirectory"] == ["/srv/productstudio"]
    assert unit.settings["EnvironmentFile"] == ["/etc/productstudio/productstudio.env"]


def test_the_services_start_after_the_release_and_restart_with_it():
    for process in ("web", "worker", "webhooks"):
        settings = read_unit(SYSTEMD / UNITS[process]).settings
        assert "productstudio-release.service" in settings["Requires"][0].split()
        assert "productstudio-release.service" in settings["After"][0].split()
    release = read_unit(SYSTEMD / UNITS["release"]).settings
    assert release["Type"] == ["oneshot"]
    assert release["RemainAfterExit"] == ["yes"]


def test_the_web_unit_waits_longer_to_stop_than_gunicorn_lets_a_request_finish():
    config = _gunicorn_config()
    web = read_unit(SYSTEMD / UNITS["web"]).settings

    assert int(web["TimeoutStopSec"][0]) > config["graceful_timeout"]
    assert web["Type"] == ["notify"]  # gunicorn says when it listens


def test_the_units_are_valid_for_systemd(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: .ci/run installs Debian's systemd package")
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    # The units name /srv/productstudio; here the checkout stands in for it, so systemd
    # finds the programs they run.
    for name in UNITS.values():
        text = (SYSTEMD / name).read_text().replace("/srv/productstudio", str(ROOT))
        (tmp_path / name).write_text(text)

    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / n) for n in UNITS.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    # A setting systemd cannot read is only a warning: none is allowed.
    assert result.stderr.strip() == ""


def test_the_environment_example_sets_only_variables_the_studio_reads():
    read = (ROOT / "productstudio" / "settings.py").read_text() + (
        ROOT / "productstudio" / "gunicorn.conf.py"
    ).read_text()
    names = [
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    ]

    assert "SECRET_KEY" in names and "DATABASE_URL" in names
    assert [n for n in names if f'"{n}"' not in read] == []


def test_a_procfile_line_with_other_shell_syntax_is_refused():
    with pytest.raises(AssertionError, match="only `&&`"):
        parse_shell_line("python manage.py migrate; python manage.py collectstatic")


def _gunicorn_config() -> dict[str, Any]:
    import runpy

    return runpy.run_path(str(ROOT / "productstudio" / "gunicorn.conf.py"))


@pytest.fixture
def deployment() -> Iterator[tuple[Setup, dict[str, str]]]:
    database_url = os.environ.get("DATABASE_URL", "")
    setup = Setup.create(database_url if database_url.startswith("postgres") else None, {})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "Q_CLUSTER_NAME")}
    env.update(setup.env)
    env.update(
        {
            "PATH": f"{VENV_BIN}:{SYSTEM_PATH}",
            "ENV_FILE": "",
            "STATIC_ROOT": str(setup.tmp / "static"),
            "PORT": str(free_port()),
            "WEB_CONCURRENCY": "1",
            "WEB_THREADS": "2",
        }
    )
    try:
        yield setup, env
    finally:
        setup.drop()


def _run_line(name: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
    """The Procfile's line `name`, run by a shell from the checkout's root as Procfile
    runners (honcho, foreman) do."""
    return subprocess.Popen(
        ["bash", "-c", procfile_lines()[name]],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        **kwargs,  # type: ignore[call-overload]
    )


def test_the_procfiles_release_and_web_lines_serve_the_studio_with_its_static_files(deployment):
    setup, env = deployment
    release = _run_line("release", env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = release.communicate(timeout=300)
    assert release.returncode == 0, out.decode()
    assert (Path(env["STATIC_ROOT"]) / "staticfiles.json").exists()  # the manifest

    log = setup.tmp / "web.log"
    with log.open("wb") as sink:
        web = _run_line("web", env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{env['PORT']}"
    try:

        def login_page() -> httpx.Response | None:
            if web.poll() is not None:
                raise AssertionError("the web line stopped:\n" + log.read_text()[-3000:])
            try:
                return httpx.get(base + "/login/", headers={"X-Request-ID": "edge-7"}, timeout=10)
            except httpx.TransportError:
                return None

        page = wait_for("the web line to serve", login_page, timeout=120)
        assert page.status_code == 200
        stylesheet = re.search(r'<link[^>]+href="(/static/[^"]+\.css)"', page.text)
        assert stylesheet, page.text[:2000]
        css = httpx.get(base + stylesheet[1], timeout=10)
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert len(css.content) > 1000
        # The access log goes to the process's output (the journal, the Procfile runner).
        wait_for("the access log line", lambda: '"GET /login/ HTTP/1.1" 200' in log.read_text())
        # With the request's id, as the studio's answer and its own log lines carry it.
        assert re.search(r'"GET /login/ HTTP/1\.1" 200 .*ms edge-7$', log.read_text(), re.M)
        assert "Using worker: gthread" in log.read_text()
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
        code = web.wait(timeout=60)
    # SIGTERM (systemd's stop, a Procfile runner's Ctrl-C) is a clean stop.
    assert code == 0, log.read_text()[-3000:]


def test_the_web_lines_metrics_add_up_every_worker_process(deployment):
    """Two worker processes, each answering some of the requests: one scrape, whichever
    worker answers it, counts them all (the config's multiprocess directory), and the
    directory it made is gone once gunicorn stops."""
    setup, env = deployment
    env = {**env, "WEB_CONCURRENCY": "2", "METRICS_TOKEN": "scrape-token"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    assert _run_line("release", env, stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    log = setup.tmp / "web-metrics.log"
    with log.open("wb") as sink:
        web = _run_line("web", env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{env['PORT']}"
    requests = 40
    try:

        def alive() -> bool:
            if web.poll() is not None:
                raise AssertionError("the web line stopped:\n" + log.read_text()[-3000:])
            try:
                return httpx.get(base + "/healthz", timeout=10).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the web line to serve", alive, timeout=120)
        # Fresh connections, so the kernel spreads them over both workers' accepts.
        for _ in range(requests):
            assert httpx.get(base + "/login/", timeout=30).status_code == 200
        pids = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", log.read_text())}
        assert len(pids) >= 2, log.read_text()[-3000:]

        def counted() -> float:
            text = httpx.get(
                base + "/metrics", headers={"Authorization": "Bearer scrape-token"}, timeout=30
            ).text
            found = re.findall(
                r'^django_http_requests_total_by_view_transport_method_total\{method="GET",'
                r'transport="http",view="login"\} ([0-9.e+]+)$',
                text,
                re.M,
            )
            return float(found[0]) if found else 0.0

        for _ in range(6):  # scrapes land on either worker: each sees the sum
            assert counted() >= requests
        made = re.findall(r"Metrics of the workers in (\S+)", log.read_text())
        assert made and Path(made[0]).is_dir()
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=60)
    assert not Path(made[0]).exists(), "the metrics directory is left behind"


def test_with_json_logs_the_web_lines_output_is_json_and_its_access_lines_carry_the_request_id(
    deployment,
):
    setup, env = deployment
    env = {**env, "LOG_FORMAT": "json"}
    out_log, err_log = setup.tmp / "web.out", setup.tmp / "web.err"
    with out_log.open("wb") as out, err_log.open("wb") as err:
        web = _run_line("web", env, stdout=out, stderr=err)
    base = f"http://127.0.0.1:{env['PORT']}"

    def lines(path: Path) -> list[dict[str, Any]]:
        text = path.read_text(errors="replace")
        found = []
        for line in text.splitlines():
            if line.strip():
                try:
                    found.append(json.loads(line))
                except ValueError:
                    raise AssertionError(f"not a JSON line in {path.name}: {line!r}") from None
        return found

    try:

        def probed() -> bool:
            if web.poll() is not None:
                raise AssertionError("the web line stopped:\n" + err_log.read_text()[-3000:])
            try:
                return (
                    httpx.get(
                        base + "/healthz", headers={"X-Request-ID": "edge-42"}, timeout=10
                    ).status_code
                    == 200
                )
            except httpx.TransportError:
                return False

        wait_for("the web line to serve", probed, timeout=120)
        # A quote in the path, which gunicorn's text format escapes.
        httpx.get(base + '/healthz?q="x"', headers={"X-Request-ID": "edge-43"}, timeout=10)

        def access_lines() -> list[dict[str, Any]]:
            return [
                line
                for line in lines(out_log)
                if line["logger"] == "gunicorn.access" and line["request_id"] == "edge-43"
            ]

        wait_for("the access log line", access_lines)
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=60)

    out, err = lines(out_log), lines(err_log)
    probe = next(line for line in out if line["request_id"] == "edge-42")
    assert probe["logger"] == "gunicorn.access"
    assert probe["level"] == "INFO"
    assert (probe["method"], probe["path"], probe["status"]) == ("GET", "/healthz", 200)
    assert isinstance(probe["duration_ms"], int)
    assert "GET /healthz HTTP/1.1" in probe["message"]
    quoted = next(line for line in out if line["request_id"] == "edge-43")
    assert quoted["query"] == 'q="x"' or quoted["query"] == "q=%22x%22"
    # gunicorn's own lines (starting, booting a worker, stopping) are JSON on stderr.
    assert any(
        line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in err
    )
