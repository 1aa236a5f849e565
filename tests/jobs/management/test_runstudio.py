"""`manage.py runstudio` serves where SITE_URL says, and its processes' links point there."""

from __future__ import annotations

import io
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from jobs.management.commands import runstudio


class _Exited:
    """A process that has already stopped: runstudio's loop ends at once."""

    launched: list[tuple[list[str], dict[str, str]]] = []

    def __init__(self, args: list[str], env: dict[str, str], **kwargs: Any) -> None:
        self.launched.append((args, env))

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[list[str], dict[str, str]]]]:
    monkeypatch.setattr(runstudio.subprocess, "Popen", _Exited)
    # Nothing listens before the fake server "starts", and it listens at once after.
    listening = iter([False])
    monkeypatch.setattr(runstudio, "_listening", lambda addrport: next(listening, True))
    _Exited.launched = []
    # runstudio takes SIGTERM and SIGHUP for itself; the test run gets them back.
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    yield _Exited.launched
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("runstudio", *args, stdout=out)
    return out.getvalue()


def _web_server(
    launched: list[tuple[list[str], dict[str, str]]],
) -> tuple[list[str], dict[str, str]]:
    return next((args, env) for args, env in launched if "qcluster" not in args)


def test_without_an_address_it_serves_on_site_urls(launched, settings, monkeypatch):
    settings.SITE_URL = "http://127.0.0.1:8123"
    monkeypatch.setenv("SITE_URL", "http://127.0.0.1:8123")

    output = _run()

    args, _ = _web_server(launched)
    assert args[-2:] == ["--bind", "127.0.0.1:8123"]
    assert "running on http://127.0.0.1:8123/" in output


def test_given_an_address_and_no_site_url_its_processes_link_to_that_address(launched, monkeypatch):
    monkeypatch.delenv("SITE_URL", raising=False)

    output = _run("127.0.0.1:8124")

    assert {env["SITE_URL"] for _, env in launched} == {"http://127.0.0.1:8124"}
    assert len(launched) == 3  # the jobs cluster, the webhooks cluster, the web server
    assert "links in emails point to http://127.0.0.1:8124/" in output


def test_a_site_url_set_in_the_environment_is_kept_for_a_tunnel_or_a_proxy(launched, monkeypatch):
    monkeypatch.setenv("SITE_URL", "https://studio.example.com")

    output = _run("127.0.0.1:8125")

    assert {env["SITE_URL"] for _, env in launched} == {"https://studio.example.com"}
    assert "links in emails point to https://studio.example.com/" in output


@pytest.mark.parametrize(
    ("site_url", "addrport"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://localhost:8001/", "localhost:8001"),
        ("http://127.0.0.1", "127.0.0.1:80"),
        ("http://[::1]:8002", "[::1]:8002"),
    ],
)
def test_site_urls_address_and_port(site_url, addrport):
    assert runstudio._site_addrport(site_url) == addrport


def test_an_https_site_url_is_no_address_to_serve_on_and_it_says_what_to_give(launched, settings):
    settings.SITE_URL = "https://studio.example.com"

    with pytest.raises(CommandError, match=r"addrport: SITE_URL is 'https://studio.example.com'"):
        _run()
    assert launched == []


def test_it_serves_through_gunicorn_with_the_projects_config(launched, monkeypatch):
    monkeypatch.delenv("SITE_URL", raising=False)

    output = _run("127.0.0.1:8126")

    args, _ = _web_server(launched)
    assert args[1:3] == ["-m", "gunicorn"]
    assert args[args.index("-c") + 1].endswith("productstudio/gunicorn.conf.py")
    assert "runserver" not in args
    assert output.splitlines()[0].endswith("with gunicorn")


def test_dev_runs_djangos_development_server_with_its_reloader(launched, monkeypatch):
    monkeypatch.delenv("SITE_URL", raising=False)

    output = _run("127.0.0.1:8127", "--dev")

    args, _ = _web_server(launched)
    assert args[1:] == ["manage.py", "runserver", "127.0.0.1:8127"]  # no --noreload
    assert "development server (reloads on changes)" in output


def test_it_refuses_a_port_something_already_answers_on_and_starts_nothing(launched, monkeypatch):
    monkeypatch.setattr(runstudio, "_listening", lambda addrport: True)

    with pytest.raises(CommandError, match=r"something already answers on 127.0.0.1:8128"):
        _run("127.0.0.1:8128")
    assert launched == []


def test_a_web_server_that_stops_before_serving_is_an_error_not_a_running_studio(
    launched, monkeypatch
):
    monkeypatch.setattr(runstudio, "_listening", lambda addrport: False)
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"could not serve on 127.0.0.1:8129"):
        call_command("runstudio", "127.0.0.1:8129", stdout=out)
    assert "running on" not in out.getvalue()


class _Running:
    """A process that runs until it gets a signal; the stop it got is recorded."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)
        self.returncode = 0

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode or 0


@pytest.mark.parametrize("dev", [False, True])
def test_on_stop_the_development_servers_whole_session_gets_sigterm_and_gunicorn_alone(
    monkeypatch, dev
):
    processes = [_Running(pid) for pid in (101, 102, 103)]
    groups: list[tuple[int, int]] = []

    def killpg(pgid: int, signum: int) -> None:
        groups.append((pgid, signum))
        next(p for p in processes if p.pid == pgid).returncode = 0

    monkeypatch.setattr(runstudio.os, "killpg", killpg)
    web = processes[-1]

    runstudio.Command()._stop(processes, web_group=web if dev else None)  # type: ignore[arg-type]

    # The reloader does not pass SIGTERM on to the server it runs: its session gets it.
    assert groups == ([(103, signal.SIGTERM)] if dev else [])
    assert web.signals == ([] if dev else [signal.SIGTERM])
    assert [p.signals for p in processes[:2]] == [[signal.SIGTERM], [signal.SIGTERM]]
