"""How log-in failures are throttled with django-axes, and the client's address.

django-axes counts failed log-ins in its AccessAttempt table; the settings (AXES_*) point
here for the parts this studio decides: the account is the email lower-cased, the client
is REMOTE_ADDR unless TRUSTED_PROXY_COUNT proxies stand in front, the account and the
address each have their own limit, and a lockout answers with the log-in page itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind N trusted proxies the N-th address from
    the right of X-Forwarded-For (each proxy appends the address it was reached from, so
    anything further left was written by the client and cannot be trusted)."""
    remote = str(request.META.get("REMOTE_ADDR") or "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")
        if part.strip()
    ]
    if len(forwarded) < proxies:
        return remote  # it did not come through every proxy: the nearest peer is the client
    return forwarded[-proxies]


def login_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account a log-in is for: the email as typed, lower-cased (as stored)."""
    username = (credentials or {}).get("username")
    if username is None and request is not None:
        username = request.POST.get("username")
    return str(username).strip().lower() if username else None


def failure_limit(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    """AXES_FAILURE_LIMIT, read at each request (so a test may override the setting)."""
    return int(settings.LOGIN_FAILURE_LIMIT)


def cool_off(request: HttpRequest | None = None) -> timedelta:
    """AXES_COOLOFF_TIME: failures older than this no longer count."""
    return timedelta(minutes=settings.LOGIN_COOL_OFF_MINUTES)


def lockout_message() -> str:
    minutes = settings.LOGIN_COOL_OFF_MINUTES
    return (
        f"Too many failed log-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''} "
        "or reset your password."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The log-in page, empty, with the lockout message (429). Nothing in it depends on the
    account: a locked existing account and an unknown email read the same."""
    from accounts.forms import EmailAuthenticationForm

    form = EmailAuthenticationForm(request)
    return render(
        request,
        "registration/login.html",
        {"form": form, "lockout": lockout_message(), "next": ""},
        status=429,
    )


class LoginLockBackend(AxesStandaloneBackend):
    """django-axes' check before the password is: a locked account or address is refused,
    whatever the password. Without a request (code calling authenticate(), such as the test
    client's login()) there is no address to count, so the check stands aside."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class LoginAttemptHandler(AxesDatabaseHandler):
    """django-axes' database handler with a limit of its own for each lockout parameter
    (AXES_LOCKOUT_PARAMETERS: the account, then the address). Axes compares one number with
    AXES_FAILURE_LIMIT; this returns each count scaled to that limit, so the address is
    locked at LOGIN_ADDRESS_FAILURE_LIMIT failures and the account at LOGIN_FAILURE_LIMIT."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        limit = settings.LOGIN_FAILURE_LIMIT
        limits = [settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_ADDRESS_FAILURE_LIMIT]
        scaled = [0]
        for attempts, own_limit in zip(
            self.get_user_attempts(request, credentials), limits, strict=False
        ):
            failures = sum(attempt.failures_since_start for attempt in attempts)
            # floor(f * limit / own) >= limit exactly when f >= own.
            scaled.append(failures * limit // own_limit)
        return max(scaled)
