"""Sign-up: direct and by email confirmation."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import PendingSignup, User
from accounts.services.members import AccountError
from accounts.services.workspaces import tenant_create


def user_signup(*, email: str, password: str, workspace_name: str, name: str = "") -> User:
    """Create a user with a workspace of their own, owned by them."""
    email = email.strip().lower()
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise AccountError("email_taken", "email: an account with this email already exists.")
        user = User.objects.create_user(email=email, password=password, name=name.strip())
        tenant_create(name=workspace_name, owner=user)
    return user


def _signup_url(token: str) -> str:
    return settings.SITE_URL + reverse("signup_confirm", args=[token])


def signup_request(*, email: str, password: str, workspace_name: str, name: str = "") -> None:
    """Start a sign-up without telling the visitor whether `email` has an account: a free
    email gets a link that creates the account and its workspace; a taken one gets a note
    to its owner instead. The visitor sees the same answer either way."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        send_mail(
            subject="Someone tried to sign up with your address on ProductStudio",
            message=render_to_string(
                "accounts/email/signup_taken.txt",
                {
                    "login_url": settings.SITE_URL + reverse("login"),
                    "reset_url": settings.SITE_URL + reverse("password_reset"),
                },
            ),
            from_email=None,
            recipient_list=[email],
        )
        return
    token = secrets.token_urlsafe(32)
    PendingSignup.objects.create(
        email=email,
        name=name.strip(),
        workspace_name=workspace_name.strip(),
        password_hash=make_password(password),
        token_digest=PendingSignup.digest(token),
    )
    send_mail(
        subject="Finish creating your ProductStudio workspace",
        message=render_to_string(
            "accounts/email/signup_link.txt",
            {
                "url": _signup_url(token),
                "workspace_name": workspace_name.strip(),
                "hours": settings.SIGNUP_LINK_MAX_AGE_HOURS,
            },
        ),
        from_email=None,
        recipient_list=[email],
    )


def signup_lookup(*, token: str) -> PendingSignup:
    """The sign-up behind a link's token, or an AccountError."""
    pending = PendingSignup.objects.filter(token_digest=PendingSignup.digest(token)).first()
    if pending is None or pending.completed_at is not None:
        raise AccountError(
            "invalid_signup", "This sign-up link is not valid any more: log in, or sign up again."
        )
    if pending.is_expired:
        raise AccountError("expired_signup", "This sign-up link has expired: sign up again.")
    return pending


def signup_complete(*, token: str) -> User:
    """Create the account and workspace of a pending sign-up (its email link proves the
    address); once per link."""
    with transaction.atomic():
        pending = signup_lookup(token=token)
        # The row is taken first, so two clicks of one link create one account.
        claimed = PendingSignup.objects.filter(pk=pending.pk, completed_at__isnull=True).update(
            completed_at=timezone.now()
        )
        if not claimed:
            raise AccountError(
                "invalid_signup", "This sign-up link was already used: log in to your workspace."
            )
        if User.objects.filter(email__iexact=pending.email).exists():
            raise AccountError(
                "email_taken", "This email already has an account: log in, or reset its password."
            )
        try:
            with transaction.atomic():
                user = User.objects.create_user(email=pending.email, name=pending.name)
        except IntegrityError:
            raise AccountError(
                "email_taken", "This email already has an account: log in, or reset its password."
            ) from None
        user.password = pending.password_hash
        user.save(update_fields=["password"])
        tenant_create(name=pending.workspace_name, owner=user)
    return user
