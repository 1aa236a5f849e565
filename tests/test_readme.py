"""The README is executable truth: its commands run as written, against `make run`.

A copy of the checkout in a temporary directory (the same `.venv`, linked; no `.env`, no
database) runs `make run PORT=<free port>` exactly as a newcomer does, in a clean
environment (`env -i` with only PATH and HOME). Then each README block is taken from the
README text as it stands, its `127.0.0.1:8000` changed to that port and nothing else, and run
with `bash -e` from the copy's root in the same clean environment: the curl session under
"A session with curl", and the operator's and the scripts' commands under "Running it".
A step that fails fails the test, with the block's output.

The make target is run with `-o .venv/.stamp-run`: the install step is the one thing left
out, since the copy shares this checkout's virtualenv. On SQLite only: `make run` never
reads DATABASE_URL, so the PostgreSQL run of the suite would run the very same thing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.cluster import tree_pids, wait_for
from tests.support.web_server import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="make run is SQLite only: the SQLite run of the suite runs this once",
)

# What a fresh clone does not have: the virtualenv (linked instead), local state, caches.
_NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".env",
    "productstudio.sqlite3*",
    "media",
    "staticfiles",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "screenshots-tmp",
    "job.json",
    "packshot.jpg",
)


def readme_blocks(heading: str, *, lang: str = "sh") -> list[str]:
    """The ```lang blocks of the README's section `heading` (up to the next heading of
    the same level or above), as written."""
    level = len(heading) - len(heading.lstrip("#"))
    blocks: list[str] = []
    inside = False  # in the section
    fence: str | None = None  # the open block's language, "" for another one
    for line in README.read_text().splitlines(keepends=True):
        if fence is not None:
            if line.rstrip() == "```":
                fence = None
            elif inside and fence == lang:
                blocks[-1] += line
            continue
        if line.startswith("```"):
            fence = line[3:].strip()
            if inside and fence == lang:
                blocks.append("")
            continue
        hashes = len(line) - len(line.lstrip("#"))
        if hashes and line[hashes : hashes + 1] == " ":
            if line.rstrip() == heading:
                inside = True
            elif inside and hashes <= level:
                break
    assert inside, f"the README has no section {heading!r}"
    return blocks


def readme_block(heading: str, containing: str) -> str:
    blocks = [b for b in readme_blocks(heading) if containing in b]
    assert len(blocks) == 1, f"one block under {heading!r} with {containing!r}: {blocks}"
    return blocks[0]


def _require_tools() -> None:
    for tool in ("jq", "curl", "make"):
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{tool} is missing: .ci/run installs it from Debian's packages")
            pytest.skip(f"{tool} is not installed (apt-get install {tool})")


@dataclass
class Studio:
    """`make run` in a copy of the checkout, and a clean environment to run commands in."""

    root: Path
    port: int
    home: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": SYSTEM_PATH, "HOME": str(self.home), **extra}

    def bash(
        self, script: str, *, errexit: bool = True, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """`script` with the README's port replaced by this studio's, run by `bash -e` (or
        plain `bash`) in the copy's root with nothing in the environment but PATH and HOME
        (and `env`)."""
        script = script.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        return subprocess.run(
            ["bash", "-e"] if errexit else ["bash"],
            input=script,
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python(self, code: str) -> str:
        """Django shell code run on the studio's database; its output."""
        result = subprocess.run(
            [".venv/bin/python", "manage.py", "shell", "--no-imports", "-c", code],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _sessions() -> dict[int, int]:
    """Every process's session id, by pid (from /proc), zombies left out."""
    sessions: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            sessions[int(entry)] = int(fields[3])
    return sessions


def _stop(make: subprocess.Popen[bytes]) -> None:
    """Stop `make run` as Ctrl-C would: runstudio stops its processes in order. Whatever
    is still there after 40 s, in make's session or in those of runstudio's processes
    (each started one of its own, with workers spawned later), gets SIGKILL."""
    sessions = {make.pid} | {_sessions().get(pid, make.pid) for pid in tree_pids(make.pid)}
    with contextlib.suppress(ProcessLookupError):
        os.killpg(make.pid, signal.SIGTERM)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if not any(sid in sessions for sid in _sessions().values()):
            return
        time.sleep(0.2)
    for pid, sid in _sessions().items():
        if sid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def studio() -> Iterator[Studio]:
    _require_tools()
    tmp = Path(tempfile.mkdtemp(prefix="ps-readme-"))
    root = tmp / "productstudio"
    shutil.copytree(ROOT, root, ignore=_NOT_IN_A_CLONE, symlinks=True)
    (root / ".venv").symlink_to(ROOT / ".venv")
    home = tmp / "home"
    home.mkdir()
    studio = Studio(root=root, port=free_port(), home=home, log=tmp / "make-run.log")
    with studio.log.open("wb") as log:
        make = subprocess.Popen(
            ["make", "-o", ".venv/.stamp-run", "run", f"PORT={studio.port}"],
            cwd=root,
            env=studio.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            if make.poll() is not None:
                pytest.fail(f"make run exited ({make.returncode}):\n{studio.output()[-4000:]}")
            try:
                httpx.get(studio.base + "/login/", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"make run did not answer:\n{studio.output()[-4000:]}")
                time.sleep(0.5)
        yield studio
    finally:
        _stop(make)
        make.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def test_make_run_writes_a_private_env_with_debug_and_a_secret_of_its_own(studio):
    env_file = studio.root / ".env"
    lines = env_file.read_text().splitlines()

    assert "DEBUG=1" in lines
    secret = next(line.split("=", 1)[1] for line in lines if line.startswith("SECRET_KEY="))
    assert len(secret) >= 50
    assert secret not in (ROOT / "productstudio/settings.py").read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # It is kept as it is: a second `make .env` does not write another secret.
    subprocess.run(["make", "-o", ".venv/.stamp-run", ".env"], cwd=studio.root, check=True)
    assert env_file.read_text().splitlines() == lines


def test_make_run_serves_on_the_port_it_is_given_and_says_so(studio):
    output = studio.output()

    # The demo login names the address it serves on, and so do the emails' links.
    assert f"Log in at {studio.base}/ with" in output
    assert f"running on {studio.base}/ (links in emails point to {studio.base}/)" in output
    assert "127.0.0.1:8000" not in output


def test_make_run_answers_200_connections_opened_at_once_and_loses_no_request(studio):
    key = studio.bash(
        ".venv/bin/python manage.py api_key_create demo-shop --name burst", timeout=120
    ).stdout.strip()
    assert key.startswith("ps_"), key
    headers = {"Authorization": f"Bearer {key}"}
    names = [f"Burst {n:03d}" for n in range(200)]

    async def burst() -> list[httpx.Response | BaseException]:
        # One connection per request (no pool to queue them in), all opened together: what
        # 200 shoppers' browsers at once, or a burst of a shop's script, bring.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=studio.base, headers=headers, limits=limits, timeout=180
        ) as client:
            start = asyncio.Event()

            async def one(name: str) -> httpx.Response:
                await start.wait()
                return await client.post(
                    "/api/v1/presets", json={"model": "bria-product-packshot", "name": name}
                )

            tasks = [asyncio.ensure_future(one(name)) for name in names]
            await asyncio.sleep(0)  # every task waiting at the start line
            start.set()
            return await asyncio.gather(*tasks, return_exceptions=True)

    answers = asyncio.run(burst())

    outcomes = [a.status_code if isinstance(a, httpx.Response) else repr(a) for a in answers]
    failed = [o for o in outcomes if o != 201]
    assert failed == [], f"{len(failed)} of 200 not created: {sorted(set(map(str, failed)))}"
    # Nothing lost: each request made its preset, once.
    saved = studio.python(
        "from jobs.models import Preset; "
        "print(Preset.objects.filter(name__startswith='Burst ').count())"
    )
    assert saved == "200"


def test_the_emails_of_make_runs_studio_link_to_the_port_it_serves_on(studio):
    with httpx.Client(base_url=studio.base, timeout=30) as client:
        form = client.get("/signup/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text[:2000]
        answer = client.post(
            "/signup/",
            data={
                "csrfmiddlewaretoken": token[1],
                "email": "newcomer@shop.test",
                "name": "New",
                "workspace_name": "New Shop",
                "password": "a-long-enough-passphrase-42",
            },
        )
    assert answer.status_code in (200, 302), answer.text[:2000]

    # The console email backend prints the email where make run prints.
    wait_for("the sign-up email", lambda: "/signup/confirm/" in studio.output(), timeout=30)
    assert f"{studio.base}/signup/confirm/" in studio.output()


def test_the_curl_session_runs_as_written_and_downloads_a_2000_px_packshot(studio):
    session = readme_block("### A session with curl", "api_key_create demo-shop")

    result = studio.bash(session)

    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    job = (studio.root / "job.json").read_text()
    assert '"status":"succeeded"' in job.replace(" ", "")
    with Image.open(studio.root / "packshot.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (2000, 2000))
    # What it printed is what the README shows under it (ids, hashes and times aside).
    shown = readme_blocks("### A session with curl", lang="text")[0]
    assert _shape(result.stdout) == _shape(shown)


def test_the_curl_session_stops_at_its_first_step_without_the_env_file(studio):
    session = readme_block("### A session with curl", "api_key_create demo-shop")

    # ENV_FILE empty: the settings read no .env, as in a checkout where make run never ran.
    # Plain bash, as `bash session.sh` runs it: the block itself must stop.
    result = studio.bash(session, errexit=False, ENV_FILE="")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert "make run" in result.stderr
    assert result.stdout == ""  # no request went out with an empty key
    assert "Traceback" not in result.stderr


def test_the_scripts_and_ci_commands_run_as_written(studio):
    tenant = readme_block("## Running it", "create_tenant")
    another_key = readme_block("## Running it", "api_key_create")

    first = studio.bash(tenant, timeout=120)
    second = studio.bash(another_key, timeout=120)

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    for result in (first, second):
        assert '"results":[]' in result.stdout.replace(" ", "")  # the jobs list, with the key
    assert "Created workspace Acme Mugs (acme-mugs)" in first.stderr


def test_the_operator_command_runs_as_written_and_makes_a_staff_superuser(studio):
    command = readme_block("## Running it", "createsuperuser")
    password = re.search(r"DJANGO_SUPERUSER_PASSWORD='([^']+)'", command)
    email = re.search(r"--email (\S+)", command)
    assert password and email

    result = studio.bash(command, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    found = studio.python(
        "from accounts.models import User; "
        f"u = User.objects.get(email={email[1]!r}); "
        f"print(u.is_staff, u.is_superuser, u.check_password({password[1]!r}))"
    )
    assert found == "True True True"


def _shape(printed: str) -> str:
    """Printed JSON with what differs between runs (ids, hashes, times, URLs, the README's
    `…` shortenings) blanked, and spacing and line breaks ignored."""
    printed = re.sub(r"\s+", "", printed)
    return re.sub(r'"(id|sha256|expires_at|self|cancel|rerun)":"[^"]*"', r'"\1":"…"', printed)
