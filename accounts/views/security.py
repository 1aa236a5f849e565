"""Log-in's second step and the account's security page (two-factor on and off, recovery
codes).

The half-logged-in state: after the right password, a person with two-factor is NOT
logged in. The session only holds who passed the password (their id and password hash)
for five minutes; Django's `login()` runs once the code passes. Until then every page,
the API and the admin see an anonymous visitor, so no view can forget to check.
"""

from __future__ import annotations

import time
from typing import Any

import segno
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from accounts import services
from accounts.forms import EmailAuthenticationForm, TwoFactorCodeForm, TwoFactorOffForm
from accounts.models import User

PENDING_KEY = "two_factor_pending"
PENDING_SECONDS = 5 * 60
# Wrong codes one password step allows; then the password is asked again. The device's
# own throttling (a doubling wait) holds across sessions.
PENDING_MAX_ATTEMPTS = 5


def _me(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # behind login_required
    return user


def _is_verified(request: HttpRequest) -> bool:
    is_verified = getattr(request.user, "is_verified", None)  # set by OTPMiddleware
    return bool(is_verified and is_verified())


def _message(e: services.TwoFactorError) -> str:
    # Shown next to its field: without the service's "field: " prefix.
    text = e.message
    for field in ("code", "password_or_code"):
        text = text.removeprefix(f"{field}: ")
    return text[:1].upper() + text[1:]


def _safe_next(request: HttpRequest, target: str | None) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


class PasswordLoginView(auth_views.LoginView):
    """The password step: a person without two-factor is logged in; one with it goes on
    to the code step."""

    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user: User = form.get_user()
        if not user.has_two_factor():
            return super().form_valid(form)
        session = self.request.session
        session.cycle_key()
        session[PENDING_KEY] = {
            "user": user.pk,
            "backend": getattr(user, "backend", None) or session.get(BACKEND_SESSION_KEY),
            "hash": user.get_session_auth_hash(),
            "until": time.time() + PENDING_SECONDS,
            "next": self.get_success_url(),
            "attempts": 0,
        }
        return redirect("login_code")


def _pending_user(request: HttpRequest) -> tuple[User, dict[str, Any]] | None:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("until", 0) < time.time():
        request.session.pop(PENDING_KEY, None)
        return None
    user = User.objects.filter(pk=int(pending.get("user") or 0), is_active=True).first()
    # A password changed since the first step ends it, as it ends sessions.
    if user is None or not constant_time_compare(user.get_session_auth_hash(), pending["hash"]):
        request.session.pop(PENDING_KEY, None)
        return None
    return user, pending


@sensitive_post_parameters("code")
@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the app, or a recovery code (used up)."""
    pending: dict[str, Any] | None = None
    if request.user.is_authenticated:
        # Logged in before two-factor was turned on elsewhere, or staff on their way to
        # the admin: verify this session.
        user = _me(request)
        target = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
        if _is_verified(request) or not user.has_two_factor():
            return redirect(target or "home")
    else:
        found = _pending_user(request)
        if found is None:
            messages.info(request, "Log in again: the code step lasts five minutes.")
            return redirect("login")
        user, pending = found
        target = pending["next"]
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = services.two_factor_verify(user=user, code=form.cleaned_data["code"])
        except services.TwoFactorError as e:
            if pending is not None:
                pending["attempts"] += 1
                if pending["attempts"] >= PENDING_MAX_ATTEMPTS:
                    request.session.pop(PENDING_KEY, None)
                    messages.error(request, "Too many wrong codes. Log in again.")
                    return redirect("login")
                request.session[PENDING_KEY] = pending
            form.add_error("code", _message(e))
        else:
            if pending is not None:
                request.session.pop(PENDING_KEY, None)
                auth_login(request, user, backend=pending["backend"])
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = services.recovery_codes_left(user=user)
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. Make new ones now, "
                    "and keep them somewhere safe.",
                )
                query = urlencode({"next": target}) if target else ""
                return redirect(f"{reverse('account_security')}?{query}#recovery-codes")
            return redirect(target or "home")
    return render(request, "registration/login_code.html", {"form": form, "next": target})


def _qr_svg(url: str) -> str:
    # Drawn here as inline SVG: no script, no image request, nothing from elsewhere.
    return str(segno.make(url, error="m").svg_inline(scale=5, border=2, title="QR code"))


def _security_page(request: HttpRequest, **context: Any) -> HttpResponse:
    user = _me(request)
    setup = None if user.has_two_factor() else services.two_factor_setup_device(user=user)
    target = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    context.setdefault("confirm_form", TwoFactorCodeForm())
    context.setdefault("regenerate_form", TwoFactorCodeForm(auto_id="id_regenerate_%s"))
    context.setdefault("off_form", TwoFactorOffForm())
    if setup is not None:
        context["qr_svg"] = _qr_svg(setup.config_url)
        # Grouped in fours, as apps that take a typed key show it.
        secret = services.totp_secret_base32(device=setup)
        context["secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(
        request,
        "accounts/security.html",
        {
            "two_factor_on": user.has_two_factor(),
            "setup": setup,
            "recovery_left": services.recovery_codes_left(user=user),
            "next": target,
            **context,
        },
    )


@login_required
@never_cache
def account_security(request: HttpRequest) -> HttpResponse:
    return _security_page(request)


def _back(request: HttpRequest) -> HttpResponse:
    target = _safe_next(request, request.POST.get("next"))
    query = f"?{urlencode({'next': target})}" if target else ""
    return redirect(reverse("account_security") + query)


@login_required
@require_POST
def security_setup(request: HttpRequest) -> HttpResponse:
    try:
        services.two_factor_setup_start(user=_me(request))
    except services.TwoFactorError as e:
        messages.error(request, e.message)
    return _back(request)


def _codes_page(request: HttpRequest, codes: list[str], title: str) -> HttpResponse:
    target = _safe_next(request, request.POST.get("next"))
    return render(
        request,
        "accounts/recovery_codes.html",
        {"codes": codes, "title": title, "next": target},
    )


@sensitive_post_parameters("code")
@login_required
@require_POST
@never_cache
def security_confirm(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    form = TwoFactorCodeForm(request.POST)
    if form.is_valid():
        try:
            on = services.two_factor_confirm(user=user, code=form.cleaned_data["code"])
        except services.TwoFactorError as e:
            form.add_error("code", _message(e))
        else:
            # This session just showed a code: it counts as verified.
            otp_login(request, on.device)
            return _codes_page(request, on.recovery_codes, "Two-factor is on")
    return _security_page(request, confirm_form=form)


@sensitive_post_parameters("code")
@login_required
@require_POST
@never_cache
def recovery_codes_regenerate(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    form = TwoFactorCodeForm(request.POST, auto_id="id_regenerate_%s")
    if form.is_valid():
        try:
            codes = services.recovery_codes_regenerate(user=user, code=form.cleaned_data["code"])
        except services.TwoFactorError as e:
            form.add_error("code", _message(e))
        else:
            return _codes_page(request, codes, "New recovery codes")
    return _security_page(request, regenerate_form=form)


@sensitive_post_parameters("password_or_code")
@login_required
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    form = TwoFactorOffForm(request.POST)
    if form.is_valid():
        try:
            services.two_factor_disable(
                user=user, password_or_code=form.cleaned_data["password_or_code"]
            )
        except services.TwoFactorError as e:
            form.add_error("password_or_code", _message(e))
        else:
            messages.success(request, "Two-factor is off: log-in asks for your password only.")
            return redirect("account_security")
    return _security_page(request, off_form=form)
