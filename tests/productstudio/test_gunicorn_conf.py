"""`productstudio/gunicorn.conf.py`: where it listens, how many processes and threads, and
timeouts long enough for the studio's longest request, all from the environment."""

from __future__ import annotations

import math
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from jobs.services.batches import BATCH_FETCH_THREADS
from tests.support.cluster import ROOT

CONFIG = ROOT / "productstudio" / "gunicorn.conf.py"
GUNICORN = Path(sys.executable).parent / "gunicorn"
VARIABLES = (
    "GUNICORN_BIND",
    "ADDR",
    "PORT",
    "WEB_CONCURRENCY",
    "WEB_THREADS",
    "WEB_TIMEOUT",
    "WEB_MAX_REQUESTS",
    "FETCH_TIMEOUT",
    "BATCH_MAX_ITEMS",
)


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch):
    """The config as gunicorn's master reads it, with only the given variables set."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def read(**env: str) -> dict[str, Any]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(CONFIG))

    return read


def test_by_default_it_listens_on_loopback_port_8000_for_a_proxy_in_front(config):
    assert config()["bind"] == ["127.0.0.1:8000"]


def test_addr_and_port_choose_where_it_listens(config):
    assert config(ADDR="0.0.0.0", PORT="8080")["bind"] == ["0.0.0.0:8080"]
    assert config(ADDR="::", PORT="8081")["bind"] == ["[::]:8081"]


def test_gunicorn_bind_wins_and_may_name_several_addresses(config):
    read = config(GUNICORN_BIND="unix:/run/productstudio.sock, 127.0.0.1:9001", PORT="8080")

    assert read["bind"] == ["unix:/run/productstudio.sock", "127.0.0.1:9001"]


def test_a_small_shop_gets_two_processes_of_eight_threads_and_the_environment_changes_them(
    config,
):
    default = config()
    assert (default["worker_class"], default["workers"], default["threads"]) == ("gthread", 2, 8)

    read = config(WEB_CONCURRENCY="4", WEB_THREADS="16")
    assert (read["workers"], read["threads"]) == (4, 16)


@pytest.mark.parametrize(
    ("name", "value"),
    [("WEB_THREADS", "many"), ("WEB_CONCURRENCY", "0"), ("FETCH_TIMEOUT", "soon")],
)
def test_a_bad_number_stops_start_up_naming_the_variable(config, name, value):
    with pytest.raises(SystemExit, match=rf"^{name} must be"):
        config(**{name: value})


def test_workers_are_not_recycled_by_default_so_metric_files_do_not_pile_up(config):
    # A replaced worker's counter and histogram files stay in PROMETHEUS_MULTIPROC_DIR
    # and every scrape reads them: recycling is the operator's choice, not the default.
    default = config()
    assert (default["max_requests"], default["max_requests_jitter"]) == (0, 0)

    read = config(WEB_MAX_REQUESTS="2000")
    assert (read["max_requests"], read["max_requests_jitter"]) == (2000, 200)
    assert config(WEB_MAX_REQUESTS="0")["max_requests"] == 0
    with pytest.raises(SystemExit, match=r"^WEB_MAX_REQUESTS must be at least 0"):
        config(WEB_MAX_REQUESTS="-1")


def test_a_request_may_last_as_long_as_a_full_batch_whose_every_host_is_slow(config):
    read = config()
    # The settings' own values (pytest reads no .env), and the batch service's own fetchers.
    worst_batch = math.ceil(settings.BATCH_MAX_ITEMS / BATCH_FETCH_THREADS) * settings.FETCH_TIMEOUT

    assert read["BATCH_FETCH_THREADS"] == BATCH_FETCH_THREADS
    assert read["timeout"] > worst_batch
    # A restart lets such a request finish instead of cutting it.
    assert read["graceful_timeout"] == read["timeout"]


def test_the_timeout_follows_the_batch_settings_and_web_timeout_overrides_it(config):
    longer = config(FETCH_TIMEOUT="60", BATCH_MAX_ITEMS="200")["timeout"]
    assert longer >= math.ceil(200 / BATCH_FETCH_THREADS) * 60

    assert config(WEB_TIMEOUT="90")["timeout"] == 90


def test_gunicorn_reads_every_setting_of_the_file(tmp_path):
    # --print-config: the settings as gunicorn itself resolved them from the file.
    result = subprocess.run(
        [str(GUNICORN), "-c", str(CONFIG), "--print-config"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PORT": "8123", "ENV_FILE": "", "SECRET_KEY": "x" * 50},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if found := re.match(r"^(\w+)\s+= (.*)$", line):
            resolved[found[1]] = found[2]

    assert resolved["bind"] == "['127.0.0.1:8123']"
    assert resolved["worker_class"] == "gthread"
    assert resolved["accesslog"] == "-"  # to stdout
    assert resolved["wsgi_app"] == "productstudio.wsgi:application"
    # Two web processes of one user on one machine must not share a control socket.
    assert resolved["control_socket_disable"] == "True"
    assert resolved["max_requests"] == "0"  # workers are not recycled (metric files)
    if Path("/dev/shm").is_dir():
        assert resolved["worker_tmp_dir"] == "/dev/shm"


def test_every_variable_the_config_reads_is_in_the_readmes_settings_table():
    names = set(re.findall(r'(?:_positive_int|os\.environ\.get)\("([A-Z_]+)"', CONFIG.read_text()))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Settings") :]

    assert {"GUNICORN_BIND", "WEB_CONCURRENCY", "WEB_THREADS", "WEB_TIMEOUT"} <= names
    assert sorted(n for n in names if not re.search(rf"^\| [^|]*`{n}`", table, re.M)) == []
