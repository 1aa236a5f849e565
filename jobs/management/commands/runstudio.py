"""`manage.py runstudio`: the web server and the two django-q2 clusters together, for
`make run`: the jobs cluster, and the webhooks cluster (`Q_CLUSTER_NAME=webhooks`), whose
sender posts webhook deliveries where a hanging receiver cannot hold a job's worker.

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
import subprocess
import sys
import time
from argparse import ArgumentParser
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


class Command(BaseCommand):
    help = "Run the web server and the django-q2 clusters (jobs, webhooks) until Ctrl-C."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "addrport",
            nargs="?",
            help="ADDRESS:PORT to serve on (default: SITE_URL's, http://127.0.0.1:8000).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        addrport = options["addrport"] or _site_addrport(settings.SITE_URL)
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
                [*manage, "runserver", "--noreload", addrport],
                env=env,
                start_new_session=True,
            ),
        ]
        self.stdout.write(
            f"ProductStudio is running on http://{addrport}/ "
            f"(links in emails point to {env['SITE_URL']}/)"
        )
        self.stdout.flush()  # now, when stdout is a pipe or a file, not when it stops
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.3)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(processes)
        self.stdout.write("Stopped the web server and the task clusters.")

    def _stop(self, processes: list[subprocess.Popen[bytes]]) -> None:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
