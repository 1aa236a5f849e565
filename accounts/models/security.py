"""What guards the doors: idempotency keys of API requests, throttle counters and
sign-ups waiting for their email link."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models.invitations import _token_digest
from accounts.models.workspaces import Tenant


class IdempotencyKeyQuerySet(models.QuerySet["IdempotencyKey"]):
    def for_tenant(self, tenant: Tenant) -> IdempotencyKeyQuerySet:
        return self.filter(tenant=tenant)

    def expired(self, now: datetime | None = None) -> IdempotencyKeyQuerySet:
        cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
        return self.filter(created_at__lt=cutoff)


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` a workspace sent with a POST, and the answer it got.

    While `response_status` is null the first request is still running (or died, then its
    work was rolled back with it and `locked_at` goes stale).
    """

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    # "POST /api/v1/jobs" and a digest of the request's body: a retry must match both.
    request_line = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64)
    locked_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(default=b"")
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = IdempotencyKeyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="one_idempotency_key_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.request_line})"

    @property
    def is_complete(self) -> bool:
        return self.response_status is not None


class ThrottleScope(models.TextChoices):
    """What a throttle counter counts, per client address or per target email."""

    RESET_ADDRESS = "reset_address", "Password-reset requests from an address"
    RESET_EMAIL = "reset_email", "Password-reset requests for an email"
    SIGNUP_ADDRESS = "signup_address", "Sign-ups from an address"
    SIGNUP_EMAIL = "signup_email", "Sign-up emails to an address"
    API_KEY_ADDRESS = "api_key_address", "Bad API keys from an address"


class ThrottleCounterQuerySet(models.QuerySet["ThrottleCounter"]):
    def locked(self) -> ThrottleCounterQuerySet:
        return self.filter(locked_until__gt=timezone.now())


class ThrottleCounter(models.Model):
    """Requests counted for one scope and key (an address or an email) in a window. In the
    database rather than a per-process cache, so every web process and machine sees the same
    count; a row past its window and lock is simply started afresh by the next request."""

    scope = models.CharField(max_length=20, choices=ThrottleScope.choices)
    key = models.CharField(max_length=254)
    count = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = ThrottleCounterQuerySet.as_manager()

    class Meta:
        ordering = ["-window_started_at"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="one_counter_per_scope_and_key")
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()}: {self.key}"

    def lock_seconds_left(self, now: datetime | None = None) -> int:
        """Whole seconds until the lock ends (0 when not locked)."""
        if self.locked_until is None:
            return 0
        left = (self.locked_until - (now or timezone.now())).total_seconds()
        return max(0, int(left) + (1 if left % 1 else 0))


class PendingSignup(models.Model):
    """A sign-up waiting for its email link to be opened: the account and its workspace are
    created only then, so the form's answer is the same whether or not the email is taken.
    The link's token is stored as a hash; the password only as Django's hash."""

    email = models.EmailField(db_index=True)
    name = models.CharField(max_length=150, blank=True)
    workspace_name = models.CharField(max_length=100)
    password_hash = models.CharField(max_length=256)
    token_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"sign-up of {self.email}"

    @staticmethod
    def digest(token: str) -> str:
        return _token_digest(token)

    @property
    def is_expired(self) -> bool:
        age = timezone.now() - self.created_at
        return age > timedelta(hours=settings.SIGNUP_LINK_MAX_AGE_HOURS)
