"""Fixtures for tests of accounts.services: where a test needs a seam (an enqueue not sent, a call
that fails), a fixture here patches the one module that owns it, so tests never reach
into service internals themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts import services
from accounts.api import credits as credits_api
from accounts.services import credits, webhook_delivery
from accounts.views import auth as auth_views

# A wrapper around the webhook sender's POST: called with the real POST and the attempt.
PostAround = Callable[[Callable[[Any], Any], Any], Any]


@pytest.fixture
def webhook_post_wrapped(monkeypatch: pytest.MonkeyPatch) -> Callable[[PostAround], None]:
    """Wrap every POST the webhook sender makes (to watch attempts as they happen);
    ``wrap(around)`` makes ``around(real_post, attempt)`` run instead of ``real_post(attempt)``."""

    def wrap(around: PostAround) -> None:
        real = webhook_delivery._delivery_post
        monkeypatch.setattr(
            webhook_delivery, "_delivery_post", lambda attempt: around(real, attempt)
        )

    return wrap


class SmtpSwitch:
    """The low-balance email's SMTP server, down until ``up()``."""

    def __init__(self) -> None:
        self.down = True

    def up(self) -> None:
        self.down = False


@pytest.fixture
def low_balance_smtp_down(monkeypatch: pytest.MonkeyPatch) -> SmtpSwitch:
    """The low-balance warning's email fails (connection refused) until ``.up()``."""
    switch = SmtpSwitch()
    real_send_mail = credits.send_mail

    def flaky(**kwargs: Any) -> Any:
        if switch.down:
            raise ConnectionRefusedError("no SMTP server")
        return real_send_mail(**kwargs)

    monkeypatch.setattr(credits, "send_mail", flaky)
    return switch


@pytest.fixture
def idempotency_begin_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beginning an idempotent request raises an unexpected error ("secret internals")."""

    def fail(**kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    # productstudio.idempotency calls it through the package.
    monkeypatch.setattr(services, "idempotency_begin", fail)


@pytest.fixture
def home_page_fails_with(monkeypatch: pytest.MonkeyPatch) -> Callable[[Exception], None]:
    """``fail(error)``: the home page (``/``) raises `error` where it would redirect."""

    def fail(error: Exception) -> None:
        def raising(*args: Any, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(auth_views, "redirect", raising)

    return fail


@pytest.fixture
def credits_api_fails_with(monkeypatch: pytest.MonkeyPatch) -> Callable[[Exception], None]:
    """``fail(error)``: ``GET /api/v1/credits`` raises `error` where it finds the workspace."""

    def fail(error: Exception) -> None:
        def raising(request: Any) -> Any:
            raise error

        monkeypatch.setattr(credits_api, "request_workspace_required", raising)

    return fail
