"""No page wider than a phone: every page of the portal, and the API docs, at 390 x 844.

The pages are those of the URL resolver: each named route is either a page, with a case
saying how a browser reaches it (signed in to a busy workspace, or signed out), or is named
in `NOT_PAGES` with the reason (JSON, a file, a form's POST that redirects). A new route
with neither fails `test_every_route_is_a_page_with_a_case_or_says_why_it_is_not`.

On each page: the document is no wider than the screen (`scrollWidth <= 390`), and no
element sticks out past the right edge, unless a box of its own scrolls it (a wide table
in `.table-scroll`, a code sample in the API docs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services as account_services
from accounts.models import User
from jobs import services as job_services
from jobs.models import AssetKind, Batch, Job, JobStatus, Preset
from tests.conftest import PASSWORD
from tests.e2e.test_accessibility import _logged_in_context
from tests.e2e.test_portal_flow import _shot
from tests.e2e.test_two_factor import _app_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = 390

# Routes that are no page: what a browser gets there instead.
NOT_PAGES = {
    "home": "redirects to the workspace or the log-in page",
    "favicon": "the site's icon, an image",
    "logout": "POST, then redirects to the log-in page",
    "security_setup": "POST: its page is reached through `account_security` (a case below)",
    "security_confirm": "POST: its page is reached through `security_setup` (a case below)",
    "recovery_codes_regenerate": "POST: renders the recovery codes of `security_confirm`",
    "two_factor_disable": "POST, then redirects to the security page",
    "job_preview": "JSON for the new-job page",
    "job_status": "JSON the job page polls",
    "job_cancel": "POST, then redirects to the job",
    "job_rerun": "POST, then redirects to the new job",
    "batch_status": "JSON the batch page polls",
    "batch_retry_failed": "POST, then redirects to the batch",
    "assets_zip": "a ZIP file",
    "asset_file": "an image",
    "asset_thumbnail": "an image",
    "asset_favourite": "POST: JSON or a redirect",
    "preset_copy": "POST, then redirects to the copy",
    "preset_delete": "POST, then redirects to the presets",
    "workspace_rename": "POST, then redirects to the settings",
    "workspace_segmind_plan": "POST, then redirects to the settings",
    "api_key_revoke": "POST, then redirects to the API keys",
    "credits_export": "a CSV file",
    "credits_threshold": "POST, then redirects to the credits",
    "credits_buy": "POST, then redirects to Stripe or the credits",
    "team_invite": "POST, then redirects to the team",
    "team_change_role": "POST, then redirects to the team",
    "team_remove": "POST, then redirects to the team",
    "team_revoke_invitation": "POST, then redirects to the team",
    "team_resend_invitation": "POST, then redirects to the team",
    "api_schema": "the OpenAPI schema (YAML or JSON)",
    "stripe_webhook": "Stripe's POSTs",
    "sample_image": "an image",
    "sample_thumbnail": "an image",
    "staff_asset_file": "an image, for operators in the admin",
}

# The innermost elements past the right edge of the screen that no box of theirs scrolls,
# and the document's width (shared with `screenshots.py --audit`).
OVERFLOW_JS = (Path(__file__).parent / "overflow_check.js").read_text()


@dataclass
class Site:
    """The live server and the objects whose pages are visited."""

    base: str
    slug: str
    ids: dict[str, Any] = field(default_factory=dict)

    def url(self, name: str, **kwargs: Any) -> str:
        return self.base + reverse(name, kwargs=kwargs)

    def ws(self, name: str, **kwargs: Any) -> str:
        return self.url(name, workspace=self.slug, **kwargs)


Visit = Callable[[Any, Site], None]


def _go(name: str, query: str = "", **keys: str) -> Visit:
    """A visit to workspace page `name`, its URL's arguments the site's objects `keys`
    name."""

    def visit(page: Any, site: Site) -> None:
        page.goto(site.ws(name, **{arg: site.ids[key] for arg, key in keys.items()}) + query)

    return visit


def _security_setup(page: Any, site: Site) -> None:
    page.goto(site.url("account_security"))
    page.get_by_role("button", name="Set up two-factor").click()
    page.get_by_role("img", name="QR code for your authenticator app").wait_for()


def _security_confirm(page: Any, site: Site) -> None:
    page.goto(site.url("account_security"))
    # A set-up begun and not confirmed is offered again on the security page.
    if page.get_by_role("button", name="Set up two-factor").count():
        page.get_by_role("button", name="Set up two-factor").click()
    page.locator("#totp-secret").wait_for()
    page.get_by_role("textbox", name="Code").fill(
        _app_code(page.locator("#totp-secret").inner_text())
    )
    page.get_by_role("button", name="Turn on two-factor").click()
    page.get_by_role("heading", name="Two-factor is on").wait_for()


def _delete_confirm(page: Any, site: Site) -> None:
    # The form sent without the script's confirm(): the server's confirmation page.
    page.goto(site.ws("asset_detail", asset_id=site.ids["asset_id"]))
    page.locator("form[action$='/delete/']").evaluate("f => f.submit()")
    page.get_by_role("button", name=re.compile("Delete")).first.wait_for()


def _many_delete_confirm(page: Any, site: Site) -> None:
    page.goto(site.ws("gallery"))
    page.locator("input[name=asset]").first.check()
    page.locator("#selection").evaluate(
        "(f) => { f.action = f.querySelector('[formaction*=delete]').formAction; f.submit(); }"
    )
    page.wait_for_url(re.compile(r"/assets/delete/$"))


def _menu_open(page: Any, site: Site) -> None:
    page.goto(site.ws("dashboard"))
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("navigation", name="Workspace").wait_for()


# Pages of a signed-in owner, by URL name; some have more than one case.
SIGNED_IN: dict[str, list[Visit]] = {
    "dashboard": [_go("dashboard"), _menu_open],
    "job_new": [_go("job_new"), _go("job_new", query="?model=bria-product-packshot")],
    "job_detail": [_go("job_detail", job_id="job_id"), _go("job_detail", job_id="failed_job_id")],
    "batch_list": [_go("batch_list")],
    "batch_detail": [_go("batch_detail", batch_id="batch_id")],
    "gallery": [_go("gallery"), _go("gallery", query="?status=failed")],
    "asset_detail": [_go("asset_detail", asset_id="asset_id")],
    "asset_delete": [_delete_confirm],
    "assets_delete": [_many_delete_confirm],
    "preset_list": [_go("preset_list")],
    "preset_new": [_go("preset_new"), _go("preset_new", query="?model=bria-product-packshot")],
    "preset_edit": [_go("preset_edit", preset_id="preset_id")],
    "workspace_settings": [_go("workspace_settings")],
    "api_keys": [_go("api_keys")],
    "credits": [_go("credits")],
    "team": [_go("team")],
    "account_security": [lambda page, site: page.goto(site.url("account_security"))],
    "security_setup": [_security_setup],
    "security_confirm": [_security_confirm],
    "workspace_create": [lambda page, site: page.goto(site.url("workspace_create"))],
}


def _login_code(page: Any, site: Site) -> None:
    page.goto(site.url("login"))
    page.get_by_label("Email").fill(site.ids["two_factor_email"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Two-factor code").wait_for()


def _plain(name: str, **keys: str) -> Visit:
    """A visit to page `name`, its URL's arguments the site's objects `keys` name."""

    def visit(page: Any, site: Site) -> None:
        page.goto(site.url(name, **{arg: site.ids[key] for arg, key in keys.items()}))

    return visit


SIGNED_OUT: dict[str, list[Visit]] = {
    "login": [_plain("login")],
    "login_code": [_login_code],
    "signup": [_plain("signup")],
    "signup_sent": [_plain("signup_sent")],
    "signup_confirm": [_plain("signup_confirm", token="signup_token")],
    "password_reset": [_plain("password_reset")],
    "password_reset_done": [_plain("password_reset_done")],
    "password_reset_confirm": [
        _plain("password_reset_confirm", uidb64="uidb64", token="reset_token")
    ],
    "password_reset_complete": [_plain("password_reset_complete")],
    "invitation_accept": [_plain("invitation_accept", token="invitation_token")],
    "api_docs": [],  # its own test below
}


def _route_names(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(name, route) of every named route outside the admin's namespace."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace:
                continue  # the Django admin, which is not the portal
            yield from _route_names(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name, prefix + str(entry.pattern)


def test_every_route_is_a_page_with_a_case_or_says_why_it_is_not():
    routes = dict(_route_names(get_resolver().url_patterns))
    # The integrators' API answers JSON; its docs are a page (`api_docs`).
    portal = {name for name, route in routes.items() if not route.startswith("api/v1/")}
    covered = set(SIGNED_IN) | set(SIGNED_OUT) | set(NOT_PAGES)
    assert portal - covered == set(), "routes with no phone-width case and no reason"
    assert covered - portal == set(), "cases for routes that no longer exist"


def test_the_routes_said_to_be_no_page_give_a_browser_no_page(owner_client, tenant):
    """Those that take no object's id: a GET answers no HTML page (a redirect, 405, a file
    or JSON), as `NOT_PAGES` says."""
    routes = dict(_route_names(get_resolver().url_patterns))
    checked = 0
    for name in NOT_PAGES:
        arguments = re.findall(r"<(?:\w+:)?(\w+)>", routes[name])
        if set(arguments) - {"workspace"}:
            continue
        url = reverse(name, kwargs={"workspace": tenant.slug} if arguments else {})
        response = owner_client.get(url)
        page = response.status_code == 200 and response.get("Content-Type", "").startswith(
            "text/html"
        )
        assert not page, f"{name} ({url}) answers a page: give it a case"
        checked += 1
    assert checked >= 15


def _problems(page: Any) -> list[str]:
    result = page.evaluate(OVERFLOW_JS, PHONE)
    problems = list(result["culprits"])
    if result["width"] > PHONE:
        problems.insert(0, f"the page is {result['width']} px wide")
    return problems


def _check_all(context: Any, site: Site, cases: dict[str, list[Visit]]) -> dict[str, list[str]]:
    page = context.new_page()
    failures: dict[str, list[str]] = {}
    for name, visits in cases.items():
        for n, visit in enumerate(visits):
            visit(page, site)
            page.wait_for_load_state("load")
            _shot(page, f"phone-{name}-{n + 1}")
            problems = _problems(page)
            if problems:
                failures[f"{name} #{n + 1} ({page.url})"] = problems
    return failures


def _report(failures: dict[str, list[str]]) -> str:
    return "wider than a phone:\n" + "\n".join(
        f"{where}:\n  " + "\n  ".join(problems) for where, problems in failures.items()
    )


@pytest.fixture
def busy_site(live_server, tenant, owner, member, product_jpeg) -> Site:
    """A workspace with something on each page: jobs that succeeded and failed (with long
    names), a batch, presets, keys, a member and an invitation."""
    long_name = "spring-collection-ceramic-mug-with-a-very-long-file-name-front-view.jpg"
    job = job_services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile(long_name, product_jpeg, content_type="image/jpeg"),
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    batch = Batch.objects.create(
        tenant=tenant, name="Spring catalogue: mugs, plates and the big teapots", created_by=owner
    )
    Job.objects.filter(pk=job.pk).update(batch=batch, sku="MUG-SPRING-2027-CERAMIC-WHITE-0001")
    failed = Job.objects.create(
        tenant=tenant,
        created_by=owner,
        model="bria-product-packshot",
        batch=batch,
        input_asset=job.input_asset,
        status=JobStatus.FAILED,
        completed_at=timezone.now(),  # listed in the gallery's "not made" table
        error_code="provider_error",
        error_message="Segmind could not process https://shop.example/very/long/path/to/"
        "a/product/photo/that/goes/on/and/on.jpg",
    )
    system = Preset.objects.system().first()
    assert system is not None
    preset = job_services.preset_copy(tenant=tenant, user=owner, preset=system)
    account_services.api_key_create(tenant=tenant, name="Shop sync", created_by=owner)
    _, invitation_token = account_services.invitation_create(
        tenant=tenant, invited_by=owner, email="a-rather-long-address@photographers.example"
    )
    account_services.signup_request(
        email="newcomer@shop.test", password=PASSWORD, workspace_name="Newcomer's Lamps"
    )
    signup_token = re.search(r"/signup/confirm/([^/\s]+)/", str(mail.outbox[-1].body))
    assert signup_token is not None
    two_factor = User.objects.create_user(email="careful@shop.test", password=PASSWORD)
    account_services.tenant_create(name="Careful Candles", owner=two_factor)
    TOTPDevice.objects.create(user=two_factor, confirmed=True)
    return Site(
        base=live_server.url,
        slug=tenant.slug,
        ids={
            "job_id": job.pk,
            "failed_job_id": failed.pk,
            "batch_id": batch.pk,
            "asset_id": job.assets.get(kind=AssetKind.OUTPUT).pk,
            "preset_id": preset.pk,
            "invitation_token": invitation_token,
            "signup_token": signup_token.group(1),
            "uidb64": urlsafe_base64_encode(force_bytes(owner.pk)),
            "reset_token": default_token_generator.make_token(owner),
            "two_factor_email": two_factor.email,
        },
    )


def test_every_signed_in_page_fits_a_phone(browser, live_server, owner, busy_site):
    context = _logged_in_context(browser, live_server, owner, width=PHONE, height=844)
    try:
        failures = _check_all(context, busy_site, SIGNED_IN)
    finally:
        context.close()
    assert not failures, _report(failures)


def test_every_signed_out_page_fits_a_phone(browser, busy_site):
    context = browser.new_context(viewport={"width": PHONE, "height": 844})
    try:
        failures = _check_all(context, busy_site, SIGNED_OUT)
        # A link that is no page at all: the 404 page.
        page = context.new_page()
        page.goto(busy_site.base + "/w/no-such-workspace/nothing-here/")
        if problems := _problems(page):
            failures["404"] = problems
    finally:
        context.close()
    assert not failures, _report(failures)


def test_the_api_docs_fit_a_phone(browser, live_server):
    context = browser.new_context(viewport={"width": PHONE, "height": 844})
    try:
        page = context.new_page()
        page.goto(live_server.url + reverse("api_docs"))
        # Swagger UI draws the page from the schema: wait for its operations.
        page.locator(".opblock").first.wait_for()
        problems = _problems(page)
        _shot(page, "phone-api_docs")
        # One operation opened, with its parameters and example responses.
        page.locator(".opblock-summary").first.click()
        page.locator(".opblock-body").first.wait_for()
        problems += [f"with an operation open: {p}" for p in _problems(page)]
    finally:
        context.close()
    assert not problems, _report({"api_docs": problems})
