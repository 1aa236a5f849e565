"""The credit ledger, the packs of credits on sale and their Stripe Checkout sessions."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.models.users import User
from accounts.models.workspaces import Tenant


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

# Each kind in a shop owner's words, as the credits page lists and filters the ledger (the
# kinds themselves stay the API's, the CSV's and the operators' names).
PLAIN_KINDS: dict[str, str] = {
    CreditKind.GRANT: "Credits added",
    CreditKind.PURCHASE: "Credits bought",
    CreditKind.HOLD: "Reserved for a job",
    CreditKind.CAPTURE: "Charged for a job",
    CreditKind.RELEASE: "Returned: job not made",
    CreditKind.REFUND: "Refunded",
    CreditKind.ADJUSTMENT: "Corrected by the operators",
}


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

    @property
    def plain_kind(self) -> str:
        """What happened, in a shop owner's words ("Reserved for a job")."""
        return PLAIN_KINDS[self.kind]

    @property
    def plain_amount(self) -> str:
        """The change to the credits the shop can spend, signed as people write it: "+10",
        or 3 after a true minus sign. Empty for a charge, which spends what its reservation
        already took."""
        if self.kind == CreditKind.CAPTURE or not self.amount:
            return ""
        return f"+{self.amount}" if self.amount > 0 else f"\u2212{-self.amount}"

    @property
    def note(self) -> str:
        """The memo, unless it only repeats what the entry says (the memo the ledger writes
        on a job's reservation, charge and return: "held for job …")."""
        if self.job_id is not None and self.memo in (
            f"held for job {self.job_id}",
            f"{self.kind} for job {self.job_id}",
        ):
            return ""
        return self.memo


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
