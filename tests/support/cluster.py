"""A real django-q2 cluster on a database of its own, for crash tests and the benchmark.

`Setup` makes a fresh database (an SQLite file in a temp dir, or a new database on a
PostgreSQL server) and migrates it in a subprocess; `start_cluster` runs
`manage.py qcluster` against it (on the ORM broker, or on Redis with `broker="redis"`),
in its own session so it can be stopped as a whole.
`manage` runs a management command (or `python -m tests.support.cluster_cli ...`) with the same
environment, which is how a test reads and changes that database: the test process
itself stays on pytest-django's database.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def _ppid_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    return parents


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (from /proc)."""
    parents = _ppid_map()
    pids = [root]
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        pids.extend(children)
        frontier.extend(children)
    return pids


def _pg_url_with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@dataclass
class Setup:
    """A fresh database, a media folder, and the environment that points at them."""

    label: str
    database_url: str
    tmp: Path
    pg_admin_url: str = ""
    pg_dbname: str = ""
    env: dict[str, str] = field(default_factory=dict)
    broker: str = "orm"

    def logs_tail(self, chars: int = 6000) -> str:
        """The end of each cluster log in the setup's folder: what a failed wait shows, so
        a test that timed out on a loaded machine says what the workers were doing."""
        parts = []
        for log in sorted(self.tmp.glob("qcluster*.log")):
            parts.append(f"--- {log.name} (last {chars} characters) ---\n")
            parts.append(log.read_text(errors="replace")[-chars:])
        return "".join(parts) or "(no cluster log)"

    @classmethod
    def create(cls, postgres_url: str | None, env: dict[str, str], broker: str = "orm") -> Setup:
        """A new database: on the PostgreSQL server of `postgres_url`, else SQLite; its
        clusters on `broker` ("orm" or "redis", see tests/support/brokers.py).

        The PostgreSQL user must be allowed to CREATE DATABASE.
        """
        from tests.support.brokers import broker_env

        # First: a Redis run without a server skips (or fails) before anything is made.
        on_broker = broker_env(broker)
        tmp = Path(tempfile.mkdtemp(prefix="ps-cluster-"))
        if postgres_url:
            import psycopg

            dbname = f"cluster_{secrets.token_hex(4)}"
            # CREATE/DROP DATABASE run from the server's maintenance database "postgres".
            admin_url = _pg_url_with_db(postgres_url, "postgres")
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            setup = cls(
                "PostgreSQL",
                _pg_url_with_db(postgres_url, dbname),
                tmp,
                pg_admin_url=admin_url,
                pg_dbname=dbname,
            )
        else:
            setup = cls("SQLite", f"sqlite:///{tmp / 'cluster.sqlite3'}", tmp)
        (tmp / "media").mkdir()
        setup.env = {
            "DJANGO_SETTINGS_MODULE": "productstudio.settings",
            "DATABASE_URL": setup.database_url,
            # DEBUG would keep every SQL query in memory and cost CPU per query.
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "MEDIA_ROOT": str(tmp / "media"),
            "LOG_LEVEL": "WARNING",
            **on_broker,
            **env,
        }
        setup.broker = broker
        setup.manage("migrate", "--noinput", "-v", "0")
        return setup

    def manage(self, *args: str, module: str = "") -> str:
        """Run `manage.py args...` (or `python -m module args...`); its stdout."""
        command = [PYTHON, "-m", module, *args] if module else [PYTHON, "manage.py", *args]
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
        result = subprocess.run(
            command,
            cwd=ROOT,
            env={**env, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def sql_value(self, sql: str) -> Any:
        """The first value `sql` reads from the setup's database, read by the test process
        itself: for a wait that must see a passing state at once (`cli` starts a Python
        process, seconds on a loaded machine)."""
        if self.pg_dbname:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True) as conn:
                row = conn.execute(sql.encode()).fetchone()
        else:
            import sqlite3
            from contextlib import closing

            path = self.database_url.removeprefix("sqlite:///")
            with closing(sqlite3.connect(path, timeout=30)) as conn:
                row = conn.execute(sql).fetchone()
        return row[0] if row else None

    def cli(self, *args: str) -> Any:
        """`python -m tests.support.cluster_cli args...`, its JSON answer."""
        return json.loads(self.manage(*args, module="tests.support.cluster_cli"))

    def drop(self) -> None:
        if self.broker == "redis":
            self._redis_clear()
        if self.pg_dbname:
            import psycopg

            try:
                with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (self.pg_dbname,),
                    )
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_dbname}"')
            except Exception as e:
                print(f"warning: could not drop {self.pg_dbname}: {e}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _redis_clear(self) -> None:
        """The setup's queues on the Redis server: what a killed cluster left in them would
        otherwise wait there for a later setup's webhook sender (whose queue has one name)."""
        import redis

        try:
            client = redis.Redis.from_url(self.env["REDIS_URL"], socket_connect_timeout=5)
            keys = list(client.scan_iter(match=f"django_q:{self.env['Q_NAME']}:*"))
            client.delete("django_q:webhooks:q", *keys)
        except redis.RedisError as e:
            print(f"warning: could not clear the setup's Redis queues: {e}", file=sys.stderr)


def start_cluster(
    setup: Setup, workers: int = 2, name: str = ""
) -> tuple[subprocess.Popen[bytes], Path]:
    """`manage.py qcluster` with `workers` workers, once all its processes are up.

    `name` "webhooks" starts the webhook sender's cluster instead (one worker, whatever
    `workers` says); "" the jobs cluster."""
    log = setup.tmp / f"qcluster{'-' + name if name else ''}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "Q_CLUSTER_NAME")}
    if name == "webhooks":
        workers = 1
    if name:
        env["Q_CLUSTER_NAME"] = name
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "qcluster"],
        cwd=ROOT,
        env={**env, **setup.env, "Q_WORKERS": str(workers)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # A cluster is workers + 4 processes (sentinel, monitor, pusher, the parent).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("qcluster exited:\n" + log.read_text()[-3000:])
        if len(tree_pids(proc.pid)) >= workers + 4:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    return proc, log


def stop_cluster(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def running_cluster(
    env: dict[str, str], *, workers: int = 2, webhooks: bool = False, broker: str = "orm"
) -> Iterator[Setup]:
    """A fresh database (on the PostgreSQL server of DATABASE_URL when it names one, else
    SQLite) with `env`, and a real jobs cluster on it (and the webhooks cluster too, with
    `webhooks`) on `broker`; stopped and dropped at the end. For tests' module-scoped
    fixtures."""
    database_url = os.environ.get("DATABASE_URL", "")
    setup = Setup.create(
        database_url if database_url.startswith("postgres") else None, env, broker=broker
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_cluster(setup, workers=workers)[0])
        if webhooks:
            procs.append(start_cluster(setup, name="webhooks")[0])
        yield setup
    finally:
        for proc in reversed(procs):
            stop_cluster(proc)
        setup.drop()


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float = 180.0,
    every: float = 0.3,
    setup: Setup | None = None,
) -> Any:
    """`check()`'s first true value, asked every `every` seconds; fails after `timeout`
    (generous: a loaded machine is slow, and the wait ends as soon as the state is there),
    with the end of `setup`'s cluster logs when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    logs = f"\n{setup.logs_tail()}" if setup is not None else ""
    raise AssertionError(f"timed out waiting for {what}{logs}")
