"""Invitations: create, accept, revoke, resend."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Role, Tenant, User
from accounts.services.members import AccountError, _actor


def _invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("invitation_accept", args=[token])


# A resend emails a new link; one a minute per invitation keeps the button from being
# used to flood someone's inbox.
INVITATION_RESEND_SECONDS = 60


def _invitation_email(*, invitation: Invitation, token: str, inviter: User) -> None:
    context = {
        "tenant": invitation.tenant,
        "inviter": inviter,
        "url": _invitation_url(token),
        "days": settings.INVITATION_MAX_AGE_DAYS,
    }
    send_mail(
        subject=f"You're invited to {invitation.tenant.name} on ProductStudio",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


def invitation_create(
    *, tenant: Tenant, invited_by: User, email: str, role: str = Role.MEMBER
) -> tuple[Invitation, str]:
    """Invite `email` to `tenant` and email them the link; returns the invitation and token."""
    email = email.strip().lower()
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    inviter = Membership.objects.for_tenant(tenant).filter(user=invited_by).first()
    if inviter is None or not inviter.can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can invite people.")
    if role == Role.OWNER and not inviter.is_owner:
        raise AccountError("forbidden", "role: only an owner can invite another owner.")
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise AccountError("already_member", f"email: {email} is already in this workspace.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_digest=Invitation.digest(token),
        invited_by=invited_by,
    )
    _invitation_email(invitation=invitation, token=token, inviter=invited_by)
    return invitation, token


def invitation_lookup(*, token: str) -> Invitation:
    """The pending invitation behind a link's token, or an AccountError. Unknown, used and
    withdrawn links get the same answer, so a link tells nothing about what it was."""
    invitation = Invitation.objects.by_token(token).select_related("tenant").first()
    if invitation is None or invitation.accepted_at is not None:
        raise AccountError("invalid_invitation", "This invitation link is not valid any more.")
    if invitation.is_expired:
        raise AccountError("expired_invitation", "This invitation has expired: ask for a new one.")
    return invitation


WRONG_INVITEE_MESSAGE = (
    "This invitation is for another email address: log out and open the link again to "
    "continue as the person it was sent to."
)


def invitation_accept(*, token: str, user: User) -> Membership:
    """Add `user` to the invitation's workspace, if the invitation names their email
    (case-insensitively); once: a second use of the link is refused. Anyone else is
    refused and nothing changes: the invitation stays usable by its invitee."""
    with transaction.atomic():
        invitation = invitation_lookup(token=token)
        if not invitation.is_for(user):
            raise AccountError("wrong_invitee", WRONG_INVITEE_MESSAGE)
        # A conditional update claims the invitation, so two clicks cannot both use it.
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now()
        )
        if not claimed:
            raise AccountError("invalid_invitation", "This invitation link is not valid any more.")
        membership, _ = Membership.objects.get_or_create(
            user=user, tenant=invitation.tenant, defaults={"role": invitation.role}
        )
    return membership


def invitation_signup(
    *, token: str, password: str, name: str = "", email: str | None = None
) -> User:
    """Create the invited person's account and accept the invitation. The account's email
    is the invited one; an `email` given (what a form posted) must be that one."""
    invitation = invitation_lookup(token=token)
    if email is not None and email.strip().lower() != invitation.email.strip().lower():
        raise AccountError(
            "email_mismatch", "email: this invitation is for another address; it can't be changed."
        )
    with transaction.atomic():
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise AccountError("email_taken", "An account with this email exists: log in instead.")
        user = User.objects.create_user(
            email=invitation.email, password=password, name=name.strip()
        )
        invitation_accept(token=token, user=user)
    return user


def _invitation_manager(tenant: Tenant, by: User, invitation: Invitation, verb: str) -> None:
    """Owners and admins manage invitations; an owner's invitation only owners (as only
    they may invite an owner)."""
    actor = _actor(tenant, by)
    if not actor.can_manage_team:
        raise AccountError("forbidden", f"Only owners and admins can {verb} invitations.")
    if invitation.role == Role.OWNER and not actor.is_owner:
        raise AccountError("forbidden", f"Only an owner can {verb} an invitation to an owner.")


def _invitation_unaccepted(tenant: Tenant, invitation_id: int) -> Invitation:
    invitation = (
        Invitation.objects.for_tenant(tenant)
        .unaccepted()
        .select_related("tenant")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None:
        raise AccountError("invalid_invitation", "This invitation was accepted or withdrawn.")
    return invitation


def invitation_revoke(*, tenant: Tenant, by: User, invitation_id: int) -> None:
    """Withdraw an invitation not used yet (pending or expired): its link stops working."""
    invitation = _invitation_unaccepted(tenant, invitation_id)
    _invitation_manager(tenant, by, invitation, "withdraw")
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).delete()


def invitation_resend(*, tenant: Tenant, by: User, invitation_id: int) -> Invitation:
    """Email an invitation not used yet (pending or expired) again, with a new link valid
    for the full time. The token rotates: the old link, which may have leaked, stops
    working. At most one resend per invitation a minute (counted from the last email)."""
    invitation = _invitation_unaccepted(tenant, invitation_id)
    _invitation_manager(tenant, by, invitation, "resend")
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    # Conditional on the last email's time: of two quick clicks, one sends.
    sent = Invitation.objects.filter(
        pk=invitation.pk,
        accepted_at__isnull=True,
        sent_at__lte=now - timedelta(seconds=INVITATION_RESEND_SECONDS),
    ).update(token_digest=Invitation.digest(token), sent_at=now)
    if not sent:
        _invitation_unaccepted(tenant, invitation_id)  # accepted or withdrawn meanwhile?
        raise AccountError(
            "resend_too_soon",
            f"The invitation to {invitation.email} was sent less than a minute ago: "
            "try again in a minute.",
        )
    invitation.token_digest, invitation.sent_at = Invitation.digest(token), now
    _invitation_email(invitation=invitation, token=token, inviter=by)
    return invitation
