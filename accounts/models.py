"""Users, shops' workspaces (tenants), their members, invitations, API keys, credits and
webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import RowNumber
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        # Emails are stored lower-cased; people type them however they like.
        return self.get(email__iexact=username or "")


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="Operators: may log in to the admin site."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email.split("@")[0]

    def has_two_factor(self) -> bool:
        """Whether log-in asks this person for a second factor: an authenticator app they
        confirmed with a code (one still being set up does not count)."""
        from django_otp.plugins.otp_totp.models import TOTPDevice

        return TOTPDevice.objects.filter(user_id=self.pk, confirmed=True).exists()


class TenantQuerySet(models.QuerySet["Tenant"]):
    def for_user(self, user: User) -> TenantQuerySet:
        return self.filter(memberships__user=user)


def default_low_balance_threshold() -> int:
    return int(settings.LOW_BALANCE_THRESHOLD)


class SegmindPlan(models.TextChoices):
    """Segmind's plans and their requests a minute per key. Segmind's docs page and its
    pricing page disagree, so both are offered, each named after its page."""

    FREE = "free", "Free: 5 a minute (Segmind's docs)"
    PRO_DOCS = "pro-docs", "Pro: 50 a minute (Segmind's docs)"
    FLEXIBLE = "flexible", "Flexible: 60 a minute (Segmind's pricing page)"
    PRO = "pro", "Pro: 120 a minute (Segmind's pricing page)"
    BUSINESS = "business", "Business: 500 a minute (Segmind's pricing page)"
    SCALE = "scale", "Scale: 1000 a minute (Segmind's pricing page)"
    CUSTOM = "custom", "Another limit (requests a minute)"


SEGMIND_PLAN_PER_MINUTE = {
    SegmindPlan.FREE: 5,
    SegmindPlan.PRO_DOCS: 50,
    SegmindPlan.FLEXIBLE: 60,
    SegmindPlan.PRO: 120,
    SegmindPlan.BUSINESS: 500,
    SegmindPlan.SCALE: 1000,
}
# An own key whose plan the shop has not chosen is paced as the docs' Pro plan: a key
# allowed less converges there after a few 429s, which never fail a job.
SEGMIND_DEFAULT_PLAN = SegmindPlan.PRO_DOCS
SEGMIND_CUSTOM_MAX_PER_MINUTE = 100_000


class Tenant(models.Model):
    """A shop's workspace: every job, asset and credit belongs to one."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The ledger's running totals, kept in the same transaction as each entry (see
    # `CreditEntry`): credits the shop can spend, and credits held by running jobs.
    credit_balance = models.IntegerField(default=0)
    credit_held = models.IntegerField(default=0)
    # Below this balance the portal warns and the owners get one email (sent again only
    # after the balance has been back above it): see `credits_low_check`.
    low_balance_threshold = models.PositiveIntegerField(default=default_low_balance_threshold)
    low_balance_notified_at = models.DateTimeField(null=True, blank=True)
    # The workspace's own Segmind key ("bring your own key"), encrypted at rest; only its
    # last four characters are ever shown back.
    segmind_key_encrypted = models.TextField(blank=True)
    segmind_key_last4 = models.CharField(max_length=4, blank=True)
    segmind_key_set_at = models.DateTimeField(null=True, blank=True)
    # The plan of that key, which sets how many requests a minute the dispatcher sends
    # with it; `segmind_rate_limit` is the number for a custom limit.
    segmind_plan = models.CharField(
        max_length=20, choices=SegmindPlan.choices, default=SEGMIND_DEFAULT_PLAN
    )
    segmind_rate_limit = models.PositiveIntegerField(default=0)
    # Signs the webhooks sent to jobs' own `webhook_url`s (endpoints have their own
    # secrets), encrypted at rest; made the first time it is needed.
    webhook_secret_encrypted = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credit_balance__gte=0), name="tenant_credit_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(credit_held__gte=0), name="tenant_credit_held_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_own_segmind_key(self) -> bool:
        return bool(self.segmind_key_encrypted)

    @property
    def segmind_per_minute(self) -> int:
        """Requests a minute the workspace's own key may send (its plan's, or its own)."""
        if self.segmind_plan == SegmindPlan.CUSTOM and self.segmind_rate_limit > 0:
            return int(self.segmind_rate_limit)
        return SEGMIND_PLAN_PER_MINUTE.get(
            SegmindPlan(self.segmind_plan)
            if self.segmind_plan in SegmindPlan.values
            else SEGMIND_DEFAULT_PLAN,
            SEGMIND_PLAN_PER_MINUTE[SEGMIND_DEFAULT_PLAN],
        )

    @property
    def is_low_on_credits(self) -> bool:
        return self.credit_balance < self.low_balance_threshold


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class MembershipQuerySet(models.QuerySet["Membership"]):
    def for_tenant(self, tenant: Tenant) -> MembershipQuerySet:
        return self.filter(tenant=tenant)

    def owners(self) -> MembershipQuerySet:
        return self.filter(role=Role.OWNER)


class Membership(models.Model):
    user = models.ForeignKey(User, models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"

    @property
    def can_manage_team(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def is_last_owner(self) -> bool:
        """An owner and its workspace's only one: a workspace keeps an owner, so this
        membership can be neither demoted nor removed."""
        if not self.is_owner:
            return False
        others = Membership.objects.filter(tenant_id=self.tenant_id).owners().exclude(pk=self.pk)
        return not others.exists()


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


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def for_tenant(self, tenant: Tenant) -> ApiKeyQuerySet:
        return self.filter(tenant=tenant)

    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


API_KEY_PREFIX = "ps_"


class ApiKey(models.Model):
    """A workspace's key for the REST API: `ps_<prefix>_<secret>`, kept as prefix + HMAC."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        """How the key is shown once created: enough to recognise it, nothing to use."""
        return f"{API_KEY_PREFIX}{self.prefix}_…"

    @staticmethod
    def digest_secret(secret: str) -> str:
        # Keyed with SECRET_KEY so a leaked database alone cannot be used to test guesses.
        key = f"productstudio.api-key:{settings.SECRET_KEY}".encode()
        return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.digest, self.digest_secret(secret))

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


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


class CreditKind(models.TextChoices):
    GRANT = "grant", "Grant"
    PURCHASE = "purchase", "Purchase"
    HOLD = "hold", "Hold"
    CAPTURE = "capture", "Capture"
    RELEASE = "release", "Release"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


# The kinds a job may have at most one of (a refund gives back what a capture spent).
JOB_CREDIT_KINDS = (CreditKind.HOLD, CreditKind.CAPTURE, CreditKind.RELEASE, CreditKind.REFUND)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class CreditEntryQuerySet(models.QuerySet["CreditEntry"]):
    def for_tenant(self, tenant: Tenant) -> CreditEntryQuerySet:
        return self.filter(tenant=tenant)

    def of_kind(self, kind: str) -> CreditEntryQuerySet:
        return self.filter(kind=kind) if kind else self

    def created_between(self, first: date | None, last: date | None) -> CreditEntryQuerySet:
        """Entries made from day `first` to day `last`, both included, in the site's time
        zone; bounds as datetimes so the index on created_at serves them."""
        qs = self
        if first is not None:
            qs = qs.filter(created_at__gte=_day_start(first))
        if last is not None:
            qs = qs.filter(created_at__lt=_day_start(last + timedelta(days=1)))
        return qs

    def for_job_id(self, text: str) -> CreditEntryQuerySet:
        """Entries of the job whose id is `text`, or starts with it (as pasted from a job
        page, or its first characters as shown in lists)."""
        text = text.strip().lower()
        if not text:
            return self
        try:
            return self.filter(job_id=uuid.UUID(text))
        except ValueError:
            return self.filter(job__id__startswith=text)


class CreditEntry(models.Model):
    """One line of a tenant's credit ledger. Append-only: corrections are new entries.

    ``amount`` is the change to the credits the shop can spend: a hold takes the job's
    price out (negative), a release gives it back, a capture moves it from held to spent
    (zero). ``balance_after`` and ``held_after`` are the tenant's totals after it.
    """

    # A workspace deleted for good takes its books with it; nothing else deletes them.
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="credit_entries")
    kind = models.CharField(max_length=20, choices=CreditKind.choices)
    amount = models.IntegerField()
    balance_after = models.IntegerField()
    held_after = models.IntegerField()
    job = models.ForeignKey(
        "jobs.Job", models.PROTECT, null=True, blank=True, related_name="credit_entries"
    )
    payment_ref = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    memo = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = CreditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "credit entries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(balance_after__gte=0), name="credit_entry_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(held_after__gte=0), name="credit_entry_held_not_negative"
            ),
            models.UniqueConstraint(
                fields=["job", "kind"],
                condition=models.Q(kind__in=[k.value for k in JOB_CREDIT_KINDS]),
                name="one_job_entry_of_each_kind",
            ),
            # A payment (a Stripe Checkout session) is credited once, however often its
            # event is delivered.
            models.UniqueConstraint(
                fields=["payment_ref"],
                condition=models.Q(kind="purchase"),
                name="one_purchase_per_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} for {self.tenant}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Credit entries are never edited: add a correcting entry.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("Credit entries are never deleted: add a correcting entry.")


# Stripe's currencies without a minor unit: their "cents" are whole units.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_money(cents: int, currency: str) -> str:
    """A price for people: ``$12.00``, ``€9.50``, ``¥1,200``, ``12.00 CHF``."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL_CURRENCIES:
        amount = f"{cents:,}"
    else:
        amount = f"{cents // 100:,}.{cents % 100:02d}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


class CreditPackQuerySet(models.QuerySet["CreditPack"]):
    def on_sale(self) -> CreditPackQuerySet:
        return self.filter(active=True)


class CreditPack(models.Model):
    """Credits sold together at one price; operators define them in the admin."""

    name = models.CharField(max_length=100)
    credits = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField(help_text="Price in the currency's cents.")
    currency = models.CharField(max_length=3, default="usd")
    active = models.BooleanField(default=True, help_text="Offered on the billing page.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CreditPackQuerySet.as_manager()

    class Meta:
        ordering = ["price_cents", "credits"]
        constraints = [
            models.CheckConstraint(condition=models.Q(credits__gt=0), name="credit_pack_credits"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.credits} credits"

    def clean(self) -> None:
        self.currency = self.currency.strip().lower()
        errors = {}
        if len(self.currency) != 3 or not self.currency.isalpha():
            errors["currency"] = "currency: a three-letter ISO code such as usd or eur."
        # Stripe Checkout refuses a payment of nothing.
        if self.price_cents is not None and self.price_cents <= 0:
            errors["price_cents"] = "price_cents: a pack needs a price above zero."
        if errors:
            raise ValidationError(errors)

    @property
    def price_display(self) -> str:
        return format_money(self.price_cents, self.currency)


class CheckoutStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"


class CheckoutSessionQuerySet(models.QuerySet["CheckoutSession"]):
    def for_tenant(self, tenant: Tenant) -> CheckoutSessionQuerySet:
        return self.filter(tenant=tenant)


class CheckoutSession(models.Model):
    """A Stripe Checkout session we created for a pack: what its payment buys, recorded
    before the shop is sent to Stripe, so the webhook credits what was sold, not what
    the event says."""

    session_id = models.CharField(max_length=255, unique=True)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="checkout_sessions")
    pack = models.ForeignKey(CreditPack, models.PROTECT, related_name="+")
    credits = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=CheckoutStatus.choices, default=CheckoutStatus.OPEN
    )
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = CheckoutSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.status})"

    @property
    def price_display(self) -> str:
        return format_money(self.price_cents, self.currency)


class StripeEvent(models.Model):
    """A Stripe event id we acted on: a replayed id does nothing the second time."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


# -- webhooks --------------------------------------------------------------------------


class WebhookEventType(models.TextChoices):
    JOB_SUCCEEDED = "job.succeeded", "A job succeeded"
    JOB_FAILED = "job.failed", "A job failed"
    BATCH_COMPLETED = "batch.completed", "A batch completed"
    CREDITS_LOW = "credits.low", "Credits are running low"
    WEBHOOK_TEST = "webhook.test", "A test event"


# What an endpoint may subscribe to; a test event goes only to the endpoint it tests.
SUBSCRIBABLE_EVENT_TYPES = (
    WebhookEventType.JOB_SUCCEEDED,
    WebhookEventType.JOB_FAILED,
    WebhookEventType.BATCH_COMPLETED,
    WebhookEventType.CREDITS_LOW,
)
# The events a job's own `webhook_url` receives.
JOB_EVENT_TYPES = (WebhookEventType.JOB_SUCCEEDED, WebhookEventType.JOB_FAILED)


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    def for_tenant(self, tenant: Tenant) -> WebhookEndpointQuerySet:
        return self.filter(tenant=tenant)

    def enabled(self) -> WebhookEndpointQuerySet:
        return self.filter(enabled=True)


class WebhookEndpoint(models.Model):
    """A URL of the shop's that receives the workspace's events, signed with its own
    secret (Standard Webhooks)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Empty: every event type, today's and those added later.
    event_types = models.JSONField(default=list, blank=True)
    # `whsec_` + base64 of 32 random bytes, encrypted (Fernet); shown once, at creation.
    secret_encrypted = models.TextField()
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDeliveryQuerySet(models.QuerySet["WebhookDelivery"]):
    def for_tenant(self, tenant: Tenant) -> WebhookDeliveryQuerySet:
        return self.filter(tenant=tenant)

    def pending(self) -> WebhookDeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PENDING)

    def due(self, now: datetime) -> WebhookDeliveryQuerySet:
        """Pending deliveries whose next attempt is due (a claimed one is not due until
        its claim runs out)."""
        return self.pending().filter(next_attempt_at__lte=now)

    def in_turn(self, *, per_workspace: int) -> WebhookDeliveryQuerySet:
        """The first `per_workspace` deliveries of each workspace, annotated with
        `tenant_rank`, their place in their workspace's line (the longest due first), and
        ordered so each workspace's first comes before anyone's second: workspaces take
        turns."""
        return (
            self.annotate(
                tenant_rank=models.Window(
                    RowNumber(),
                    partition_by=[models.F("tenant_id")],
                    order_by=[models.F("next_attempt_at").asc(), models.F("created_at").asc()],
                )
            )
            .filter(tenant_rank__lte=per_workspace)
            .order_by("tenant_rank", "next_attempt_at", "created_at")
        )


class WebhookDelivery(models.Model):
    """One message to one URL (an endpoint, or a job's own `webhook_url`), with its
    attempts so far. The body is kept as sent: every attempt signs the same bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="webhook_deliveries")
    # None: the job's own `webhook_url`, signed with the workspace's secret.
    endpoint = models.ForeignKey(
        WebhookEndpoint, models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    job = models.ForeignKey("jobs.Job", models.SET_NULL, null=True, blank=True, related_name="+")
    url = models.CharField(max_length=2000)
    # `webhook-id`: the same for every endpoint of one event and every retry.
    message_id = models.CharField(max_length=40, db_index=True)
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    # Counted when an attempt is claimed, so an attempt whose worker died counts too.
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; while an attempt runs, when its claim runs out.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    response_excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "message_id"],
                condition=models.Q(endpoint__isnull=False),
                name="one_delivery_per_endpoint_and_message",
            ),
            models.UniqueConstraint(
                fields=["message_id"],
                condition=models.Q(endpoint__isnull=True),
                name="one_job_url_delivery_per_message",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} to {self.url}"

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


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


class OperatorActionCode(models.TextChoices):
    """What an operator did in the admin that changed money or a workspace's standing."""

    CREDITS_GRANT = "credits_grant", "Credits granted"
    CREDITS_ADJUST = "credits_adjust", "Balance adjusted"
    CREDITS_REFUND = "credits_refund", "Job refunded"
    PAUSE_CLEAR = "pause_clear", "Segmind pause cleared"
    LOCK_LIFT = "lock_lift", "Log-in lock lifted"
    ROLE_CHANGE = "role_change", "Role changed"
    MEMBER_ADD = "member_add", "Member added"
    MEMBER_REMOVE = "member_remove", "Member removed"
    TWO_FACTOR_RESET = "two_factor_reset", "Two-factor reset"
    API_KEY_REVOKE = "api_key_revoke", "API key revoked"
    SEGMIND_PLAN_CHANGE = "segmind_plan_change", "Segmind plan changed"
    USER_STANDING_CHANGE = "user_standing_change", "User's standing changed"
    PRICE_CHANGE = "price_change", "Price changed"


class OperatorActionImmutable(Exception):
    """The audit trail is append-only: a row is never changed or deleted."""


class OperatorActionQuerySet(models.QuerySet["OperatorAction"]):
    def for_tenant(self, tenant: Tenant) -> OperatorActionQuerySet:
        return self.filter(tenant=tenant)

    def update(self, **kwargs: Any) -> int:
        # The one update allowed is the one Django makes when the actor or the workspace
        # is deleted (SET_NULL): the copied email, name and slug keep the row readable.
        if (
            kwargs
            and set(kwargs) <= {"actor", "tenant"}
            and all(v is None for v in kwargs.values())
        ):
            return super().update(**kwargs)
        raise OperatorActionImmutable("Operator actions are append-only: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise OperatorActionImmutable("Operator actions are append-only: they cannot be deleted.")


class OperatorAction(models.Model):
    """One row of the operators' audit trail: who did what to which workspace, when and
    why. Written by `operator_action_record` in the same transaction as the change;
    never changed or deleted (`save` and `delete` refuse, and so does the QuerySet)."""

    actor = models.ForeignKey(
        User, models.SET_NULL, null=True, blank=True, related_name="operator_actions"
    )
    # Copied so the trail still says who after the user or the workspace is deleted.
    actor_email = models.EmailField()
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40, choices=OperatorActionCode.choices)
    tenant = models.ForeignKey(
        Tenant, models.SET_NULL, null=True, blank=True, related_name="operator_actions"
    )
    tenant_name = models.CharField(max_length=100, blank=True)
    tenant_slug = models.CharField(max_length=60, blank=True)
    target = models.CharField(max_length=300, blank=True)
    # Amounts are whole credits (ints), stored as JSON numbers: exact.
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    reason = models.TextField()

    objects = OperatorActionQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["tenant", "at"]), models.Index(fields=["action", "at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="operator_action_has_a_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor_email} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise OperatorActionImmutable(
                "Operator actions are append-only: a row is never changed."
            )
        # Always an INSERT: a new object given an existing row's id fails instead of
        # overwriting that row.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise OperatorActionImmutable("Operator actions are append-only: a row is never deleted.")


class Lease(models.Model):
    """A named lease: at most one holder at a time (the Segmind dispatcher, the webhook
    sender). General, so it lives here, below jobs; its table keeps the name it was
    created with in jobs."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    # What a holder learnt and its successor starts from (the dispatcher: each model's
    # recent inference time).
    state = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "jobs_lease"

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"
