"""Invitations to join a workspace."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models.users import User
from accounts.models.workspaces import Role, Tenant


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def for_tenant(self, tenant: Tenant) -> InvitationQuerySet:
        return self.filter(tenant=tenant)

    def unaccepted(self) -> InvitationQuerySet:
        """Not used yet: pending or expired (an owner may still resend or withdraw them)."""
        return self.filter(accepted_at__isnull=True)

    def pending(self) -> InvitationQuerySet:
        cutoff = timezone.now() - timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
        return self.unaccepted().filter(sent_at__gte=cutoff)

    def by_token(self, token: str) -> InvitationQuerySet:
        return self.filter(token_digest=_token_digest(token))


class Invitation(models.Model):
    """An invitation to join a workspace; the link carries a token stored only as a hash."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # When the current link was emailed (at creation, then at each resend, which issues a
    # new token): the link's expiry and the resend rate limit count from here.
    sent_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant}"

    @staticmethod
    def digest(token: str) -> str:
        return _token_digest(token)

    @property
    def expires_at(self) -> datetime:
        return self.sent_at + timedelta(days=settings.INVITATION_MAX_AGE_DAYS)

    @property
    def is_expired(self) -> bool:
        return timezone.now() > self.expires_at

    @property
    def was_resent(self) -> bool:
        return self.sent_at - self.created_at > timedelta(seconds=1)

    def is_for(self, user: User) -> bool:
        """Whether `user` is the invitee: the invitation names their email (in any case)."""
        return bool(user.email) and user.email.strip().lower() == self.email.strip().lower()

    @property
    def masked_email(self) -> str:
        """The invited address with its name hidden (`c***@c.test`): enough for the invitee
        to tell which of their accounts to use, not enough to learn the address."""
        local, _, domain = self.email.partition("@")
        return f"{local[:1]}***@{domain}"
