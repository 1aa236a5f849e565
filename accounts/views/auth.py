"""Signing up and resetting a password; the home page sends a signed-in user to their
workspace; the site's icon."""

from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from accounts import services
from accounts.forms import (
    SignupForm,
)
from accounts.models import Membership, ThrottleScope
from accounts.throttling import client_address

# Sign-up and password-reset limits count requests per hour.
THROTTLE_WINDOW_SECONDS = 60 * 60
FAVICON = "img/favicon.ico"


def home(request: HttpRequest) -> HttpResponse:
    """Send a signed-in user to the workspace they last used."""
    if not request.user.is_authenticated:
        return redirect("login")
    memberships = Membership.objects.filter(user_id=request.user.pk).select_related("tenant")
    last = request.session.get("workspace")
    membership = memberships.filter(tenant__slug=last).first() or memberships.first()
    if membership is None:
        return redirect("workspace_create")
    return redirect("dashboard", workspace=membership.tenant.slug)


@cache
def _favicon() -> bytes:
    path = finders.find(FAVICON)
    assert isinstance(path, str), f"{FAVICON} is missing from the static files"
    return Path(path).read_bytes()


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers (and the admin's pages, which have no icon link) ask
    for: the studio's camera mark, drawn from static/img/favicon.svg at 16, 32 and 48 px."""
    response = HttpResponse(_favicon(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def signup(request: HttpRequest) -> HttpResponse:
    """Sign-up answers "check your email" whether or not the email has an account: the
    emailed link creates the account, so the form never tells who is already here."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = services.throttle_admit(
            scope=ThrottleScope.SIGNUP_ADDRESS,
            key=client_address(request),
            limit=settings.SIGNUP_ADDRESS_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        )
        if wait:
            form.add_error(
                None,
                f"Too many sign-ups from your address. Try again in {_minutes(wait)}.",
            )
            return render(request, "accounts/signup.html", {"form": form}, status=429)
        # Emails to one address are limited too, silently (the answer stays the same), so
        # sign-ups cannot flood someone's inbox.
        if not services.throttle_admit(
            scope=ThrottleScope.SIGNUP_EMAIL,
            key=form.cleaned_data["email"].strip().lower(),
            limit=settings.SIGNUP_EMAIL_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        ):
            services.signup_request(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                workspace_name=form.cleaned_data["workspace_name"],
                name=form.cleaned_data["name"],
            )
        request.session["signup_email"] = form.cleaned_data["email"].strip().lower()
        return redirect("signup_sent")
    return render(request, "accounts/signup.html", {"form": form})


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/signup_sent.html",
        {
            "email": request.session.get("signup_email", "your address"),
            "hours": settings.SIGNUP_LINK_MAX_AGE_HOURS,
        },
    )


@never_cache
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The sign-up email's link: a page with one button (mail scanners that open links
    do not create accounts), whose POST creates the account and signs it in."""
    try:
        pending = services.signup_lookup(token=token)
    except services.AccountError as e:
        return render(request, "accounts/signup_confirm.html", {"error": e.message}, status=404)
    if request.method == "POST":
        try:
            user = services.signup_complete(token=token)
        except services.AccountError as e:
            return render(request, "accounts/signup_confirm.html", {"error": e.message}, status=409)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to ProductStudio! Your workspace is ready.")
        return redirect("home")
    return render(request, "accounts/signup_confirm.html", {"pending": pending})


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page behind the reset link; a new password also lifts the account's
    log-in lock (whoever holds the link controls the email)."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.login_failures_forget(email=form.user.email)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset page, limited per client address (a refusal says so) and per target
    email (silently: the page says the link is on its way, as it does for any address)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = services.throttle_admit(
            scope=ThrottleScope.RESET_ADDRESS,
            key=client_address(request),
            limit=settings.PASSWORD_RESET_ADDRESS_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        )
        if wait:
            form = self.get_form()
            form.is_valid()
            form.add_error(
                None,
                "Too many password-reset requests from your address: nothing was sent. "
                f"Try again in {_minutes(wait)}.",
            )
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        wait = services.throttle_admit(
            scope=ThrottleScope.RESET_EMAIL,
            key=form.cleaned_data["email"].strip().lower(),
            limit=settings.PASSWORD_RESET_EMAIL_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        )
        if wait:
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
