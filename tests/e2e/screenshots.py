"""`make screenshots`: the README's screenshots, taken from a real studio.

Starts ProductStudio on a throw-away SQLite database in a temporary directory (migrate, the
demo workspace of `make run`), runs `manage.py runstudio` on a free port of 127.0.0.1 (the
web server and a django-q2 cluster, with the local engine), and drives Debian's Chromium with
Playwright through the pages listed in `SHOTS`, writing one 1280 x 900 PNG per page to
docs/screenshots/. Nothing leaves the machine: the photos are the project's own samples
(`/samples/<name>.jpg`).

    .venv/bin/python tests/e2e/screenshots.py [--out docs/screenshots] [--audit DIR]

`--audit DIR` also saves every workspace page at 1280 px and at 390 px (a phone), full
length, to look the portal over.

Each screenshot is one function taking a `Studio`; a page that is not on this branch yet
(the batch page) is skipped with a message. Adding one is a function and a line in `SHOTS`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
# Django only for its URL resolver and the demo login's constants; the studio itself runs
# in processes of its own, on its own database.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "productstudio.settings")
os.environ.setdefault("DEBUG", "1")
import django  # noqa: E402

django.setup()

from django.urls import NoReverseMatch, reverse  # noqa: E402

from accounts.management.commands.demo_workspace import (  # noqa: E402
    DEMO_EMAIL,
    DEMO_PASSWORD,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

VIEWPORT: Any = {"width": 1280, "height": 900}  # Playwright's ViewportSize
PHONE: Any = {"width": 390, "height": 844}
SAMPLES = ("mug", "sneaker", "perfume-on-teal")
# Photos of the batch shot in progress: the demo's sample products, in turn.
SAMPLE_NAMES = ("mug", "sneaker", "perfume-on-teal", "bottle", "lamp", "box", "plant-pot-gradient")
BATCH_SIZE = 24
WORKSPACE = "demo-shop"


class Skip(Exception):
    """This screenshot's page is not there (yet): say so and go on."""


@dataclass
class Studio:
    base: str
    page: Any
    env: dict[str, str]
    batch_id: str | None = None
    api_key: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    def sample_urls(self) -> list[str]:
        return [self.url(f"/samples/{name}.jpg") for name in SAMPLES]

    def manage(self, *args: str) -> str:
        return _manage(self.env, *args)

    def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url("/api/v1/" + path),
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
            method="POST" if body is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)


def optional_path(name: str, *args: str) -> str | None:
    """The path of URL `name`, or None if this branch has no such route."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        # OSError: refused, reset, or a timeout while gunicorn's workers still load Django
        # (it listens before they do).
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the studio did not answer at {url}") from None
            time.sleep(0.3)


@contextmanager
def studio_running(workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A migrated demo studio on SQLite in `workdir`, served on 127.0.0.1 until the end."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{workdir / 'studio.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "media"),
        "SITE_URL": base,
        "FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1,localhost",
        "SEGMIND_API_KEY": "",  # the local engine: no network, no model weights
        "STRIPE_SECRET_KEY": "",
        "Q_NAME": f"screenshots-{port}",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    _manage(env, "migrate", "--no-input")
    _manage(env, "demo_workspace")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runstudio", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(base + "/login/")
        yield base, env
    finally:
        # runstudio stops its server and cluster in order on SIGTERM.
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def log_in(studio: Studio) -> None:
    page = studio.page
    page.goto(studio.url("/login/"))
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/w/{WORKSPACE}/")


def submit_batch(studio: Studio) -> None:
    """A dozen jobs as one batch, through the API (the portal's forms are the screenshots'):
    enough that the workers are still on it when the batch page is shot."""
    studio.api_key = studio.manage("api_key_create", WORKSPACE, "--name", "Screenshots").strip()
    names = [SAMPLE_NAMES[i % len(SAMPLE_NAMES)] for i in range(BATCH_SIZE)]
    body = {
        "model": "bria-product-packshot",
        "name": "Spring catalogue",
        "items": [{"image_url": studio.url(f"/samples/{name}.jpg")} for name in names],
    }
    studio.batch_id = studio.api("batches", body)["id"]


def wait_for_jobs(studio: Studio, seconds: float = 120) -> None:
    """Until the batch's last job has finished."""
    deadline = time.monotonic() + seconds
    while studio.batch_id and time.monotonic() < deadline:
        if studio.api(f"batches/{studio.batch_id}")["completed_at"]:
            return
        time.sleep(1)
    print("  (some jobs were still running; the gallery shows them as they are)")


def shot_new_job(studio: Studio, path: Path) -> None:
    """The new-job page with three sample photos' URLs pasted."""
    page = studio.page
    page.goto(studio.url(f"/w/{WORKSPACE}/jobs/new/"))
    urls = studio.sample_urls()
    # The field that takes many URLs (a textarea), else the single URL field.
    many = page.locator("form textarea[name*=url]").first
    if many.count():
        many.fill("\n".join(urls))
    else:
        page.locator("form input[name*=url]").first.fill(urls[0])
    page.locator("h1").click()  # the field's focus ring out of the picture
    page.wait_for_timeout(600)  # the live preview and price settle
    page.screenshot(path=str(path))


def shot_batch(studio: Studio, path: Path) -> None:
    """A batch in progress: its page once the workers have finished a few of its jobs."""
    url = optional_path("batch_detail", WORKSPACE, "00000000-0000-0000-0000-000000000000")
    if url is None:
        raise Skip("this branch has no batch page (URL name `batch_detail`) yet")
    submit_batch(studio)
    assert studio.batch_id is not None
    page = studio.page
    page.goto(studio.url(url.replace("00000000-0000-0000-0000-000000000000", studio.batch_id)))
    # The page follows the batch by itself: shot once a few jobs are done, before the end.
    try:
        page.wait_for_function(
            "() => { const p = document.querySelector('#batch-progress');"
            " return p.value >= 3 || p.value >= p.max; }",
            timeout=60_000,
        )
    except Exception:
        print("  (no progress within a minute: is the worker running?)")
    page.wait_for_timeout(450)  # the progress bar's animation
    page.screenshot(path=str(path))
    if page.locator("#batch-done").is_visible():
        print("  (the batch was already done: the workers were faster than the shot)")


def shot_gallery(studio: Studio, path: Path) -> None:
    """The gallery once the batch's jobs are done."""
    wait_for_jobs(studio)
    studio.page.goto(studio.url(f"/w/{WORKSPACE}/gallery/"))
    studio.page.wait_for_load_state("networkidle")
    studio.page.screenshot(path=str(path))


def shot_job(studio: Studio, path: Path) -> None:
    """A finished packshot job's page: the result, and the notice a small photo earns."""
    wait_for_jobs(studio)
    jobs = studio.api("jobs?status=succeeded")["results"]
    if not jobs:
        raise Skip("no job of the batch succeeded")
    page = studio.page
    page.goto(studio.url(f"/w/{WORKSPACE}/jobs/{jobs[0]['id']}/"))
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=True)


# In order: the batch is shot while its jobs run, the gallery after they are done.
SHOTS: list[tuple[str, Callable[[Studio, Path], None]]] = [
    ("new-job", shot_new_job),
    ("batch", shot_batch),
    ("gallery", shot_gallery),
    ("job", shot_job),
]

# The pages `--audit` saves, at desktop and phone widths.
AUDIT_PAGES = [
    "",
    "jobs/new/",
    "gallery/",
    "presets/",
    "presets/new/",
    "presets/new/?model=bria-product-packshot",
    "credits/",
    "team/",
    "settings/",
    "api-keys/",
]


# What sticks out past the right edge of the screen: the check of test_phone_width.py,
# which runs it on every page at 390 px.
OVERFLOW_JS = (Path(__file__).parent / "overflow_check.js").read_text()


def audit(studio: Studio, browser: Any, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = studio.page.context.storage_state()
    for name, viewport in (("desktop", VIEWPORT), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport, storage_state=state)
        page = context.new_page()
        for path in AUDIT_PAGES:
            page.goto(studio.url(f"/w/{WORKSPACE}/{path}"))
            slug = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-")
            page.screenshot(path=str(out / f"{slug or 'dashboard'}-{name}.png"), full_page=True)
            for culprit in page.evaluate(OVERFLOW_JS, viewport["width"])["culprits"]:
                print(f"  {name} /{path}: wider than the screen: {culprit}")
        if name == "phone":
            page.goto(studio.url(f"/w/{WORKSPACE}/"))
            page.get_by_role("button", name="Menu").click()
            page.screenshot(path=str(out / "menu-open-phone.png"), full_page=True)
        context.close()
    for path in ("/login/", "/signup/"):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(studio.url(path))
        page.screenshot(path=str(out / f"{path.strip('/')}-desktop.png"), full_page=True)
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--audit", type=Path, help="also save every page, desktop and phone")
    options = parser.parse_args()
    if shutil.which(CHROMIUM) is None:
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    options.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="ps-screenshots-") as tmp,
        studio_running(Path(tmp)) as (base, env),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)
        studio = Studio(base=base, page=context.new_page(), env=env)
        log_in(studio)
        for name, shot in SHOTS:
            path = options.out / f"{name}.png"
            try:
                shot(studio, path)
            except Skip as reason:
                print(f"skipped {name}: {reason}")
            else:
                print(f"wrote {path}")
        if options.audit:
            audit(studio, browser, options.audit)
            print(f"audit pages in {options.audit}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
