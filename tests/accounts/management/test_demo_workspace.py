"""`manage.py demo_workspace`: the demo login of `make run`, created once."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from accounts.management.commands.demo_workspace import DEMO_EMAIL
from accounts.models import Tenant, User


def _run() -> str:
    out = StringIO()
    call_command("demo_workspace", stdout=out)
    return out.getvalue()


def test_it_names_the_address_the_studio_runs_on_from_site_url(db, settings):
    settings.SITE_URL = "http://127.0.0.1:8123"

    output = _run()

    assert "Log in at http://127.0.0.1:8123/ with" in output
    assert "8000" not in output
    assert "http://127.0.0.1:8123/admin/" in output


def test_it_says_how_to_make_an_operator_with_an_email(db):
    assert "manage.py createsuperuser --email you@example.com" in _run()


def test_it_creates_the_workspace_once(db):
    first, second = _run(), _run()

    assert "Created the demo workspace." in first
    assert "exists already" in second
    assert User.objects.filter(email=DEMO_EMAIL).count() == 1
    assert Tenant.objects.count() == 1
