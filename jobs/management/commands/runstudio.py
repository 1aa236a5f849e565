"""`manage.py runstudio`: the web server and the two django-q2 clusters together, for
`make run`: the jobs cluster, and the webhooks cluster (`Q_CLUSTER_NAME=webhooks`), whose
sender posts webhook deliveries where a hanging receiver cannot hold a job's worker.

The web server is gunicorn with `productstudio/gunicorn.conf.py`, as in production (the
Procfile's `web` line), bound to the address given. `--dev` (`make dev`) runs Django's
development server instead, which reloads on every code change: for coding, not for load
(it drops connections a burst brings; the README has the figures).

Both run in sessions of their own, so Ctrl-C reaches only this command, which then stops
each of them with one SIGTERM: django-q2 shuts its workers down in order (about a second)
instead of every worker being interrupted at once by the terminal. SIGTERM rather than
SIGINT, because a process started in the background of a script ignores SIGINT.

It serves where SITE_URL says when no address is given (`http://127.0.0.1:8000` by
default), and with an address but no SITE_URL in the environment it sets SITE_URL to that
address for its processes: the links in emails and webhooks point where it answers.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from argparse import ArgumentParser
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _site_addrport(site_url: str) -> str:
    """The address and port of an http SITE_URL (`http://127.0.0.1:8001` → `127.0.0.1:8001`)."""
    parts = urlsplit(site_url)
    if parts.scheme != "http" or not parts.hostname:
        raise CommandError(
            f"addrport: SITE_URL is {site_url!r}, not a local http address to serve on; "
            "give one (manage.py runstudio 127.0.0.1:8000)."
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or 80}"


def _listening(addrport: str) -> bool:
    """Whether something accepts connections at `addrport` (`host:port`, `[v6]:port`)."""
    host, _, port = addrport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def web_server_command(addrport: str, *, dev: bool) -> list[str]:
    """The web server's command: gunicorn as in production, or the reloading dev server."""
    if dev:
        return [sys.executable, "manage.py", "runserver", addrport]
    config = Path(settings.BASE_DIR) / "productstudio" / "gunicorn.conf.py"
    return [sys.executable, "-m", "gunicorn", "-c", str(config), "--bind", addrport]


class Command(BaseCommand):
    help = "Run the web server and the django-q2 clusters (jobs, webhooks) until Ctrl-C."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "addrport",
            nargs="?",
            help="ADDRESS:PORT to serve on (default: SITE_URL's, http://127.0.0.1:8000).",
        )
        parser.add_argument(
            "--dev",
            action="store_true",
            help="Django's development server, reloading on code changes, instead of gunicorn.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        addrport = options["addrport"] or _site_addrport(settings.SITE_URL)
        dev = bool(options["dev"])
        if _listening(addrport):
            raise CommandError(
                f"addrport: something already answers on {addrport}; stop it, or give "
                "another port (make run PORT=8001)."
            )
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)
        manage = [sys.executable, "manage.py"]
        # django-q2 picks the cluster a process serves from Q_CLUSTER_NAME.
        env = {k: v for k, v in os.environ.items() if k != "Q_CLUSTER_NAME"}
        if not env.get("SITE_URL"):
            env["SITE_URL"] = f"http://{addrport}"
        processes = [
            subprocess.Popen([*manage, "qcluster"], env=env, start_new_session=True),
            subprocess.Popen(
                [*manage, "qcluster"],
                env={**env, "Q_CLUSTER_NAME": "webhooks"},
                start_new_session=True,
            ),
            subprocess.Popen(
                web_server_command(addrport, dev=dev), env=env, start_new_session=True
            ),
        ]
        web = processes[-1]
        server = "Django's development server (reloads on changes)" if dev else "gunicorn"
        try:
            # Said once the server answers there, so the address printed is one that works
            # (a port already taken stops everything below, with the server's own error).
            while not _listening(addrport):
                if any(p.poll() is not None for p in processes):
                    raise CommandError(f"the web server could not serve on {addrport}.")
                time.sleep(0.2)
            self.stdout.write(
                f"ProductStudio is running on http://{addrport}/ "
                f"(links in emails point to {env['SITE_URL']}/) with {server}"
            )
            self.stdout.flush()  # now, when stdout is a pipe or a file, not when it stops
            while all(p.poll() is None for p in processes):
                time.sleep(0.3)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(processes, web_group=web if dev else None)
        self.stdout.write("Stopped the web server and the task clusters.")

    def _stop(
        self,
        processes: list[subprocess.Popen[bytes]],
        web_group: subprocess.Popen[bytes] | None = None,
    ) -> None:
        """SIGTERM to each process, which stops its own children in order (gunicorn its
        workers, django-q2 its workers); the development server's reloader does not pass
        it on to the server it runs, so `web_group`'s whole session gets it."""
        for p in processes:
            if p.poll() is None:
                if p is web_group:
                    os.killpg(p.pid, signal.SIGTERM)
                else:
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
