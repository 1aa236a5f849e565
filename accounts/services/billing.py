"""Buying credits: Stripe Checkout and its webhook, or whom to ask without them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    CheckoutSession,
    CheckoutStatus,
    CreditKind,
    CreditPack,
    StripeEvent,
    Tenant,
    User,
)
from accounts.services.credits import _credit_append
from accounts.services.members import _actor
from productstudio.lib.errors import CodedError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import stripe
    from stripe.params.checkout import SessionCreateParams


# -- buying credits: Stripe Checkout and its webhook -----------------------------------


class BillingError(CodedError):
    """A refused purchase or webhook delivery (``stripe_not_configured``, ``forbidden``,
    ``unknown_pack``, ``stripe_error``, ``invalid_event``)."""


# Seconds to wait for Stripe's API before telling the shop to try again.
STRIPE_TIMEOUT_SECONDS = 20


def billing_stripe_enabled() -> bool:
    """Shops buy packs themselves only when both Stripe keys are set; without them
    purchases go through the operators, who grant credits in the admin."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


@dataclass(frozen=True)
class BillingContact:
    """Someone a shop asks for credits when it cannot buy them itself; `name` may be
    empty (a bare address)."""

    name: str
    email: str


def billing_contacts() -> list[BillingContact]:
    """Whom the credits page names for buying credits without Stripe: the ADMINS, with
    their names, else SUPPORT_EMAIL, else nobody (the page then says whom to ask in
    words)."""
    contacts = [BillingContact(name=name, email=email) for name, email in settings.ADMINS]
    if not contacts and settings.SUPPORT_EMAIL:
        contacts = [BillingContact(name="", email=settings.SUPPORT_EMAIL)]
    return contacts


def _stripe_client() -> stripe.StripeClient:
    # Imported where used: the library takes ~20 MB in each process that loads it, and
    # the job workers never do.
    import stripe

    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS),
    )


def _credits_page_url(tenant: Tenant) -> str:
    return settings.SITE_URL + reverse("credits", args=[tenant.slug])


@dataclass(frozen=True)
class StartedCheckout:
    session: CheckoutSession
    url: str  # Stripe's payment page, where the shop is sent next


def checkout_start(*, tenant: Tenant, user: User, pack_id: int) -> StartedCheckout:
    """Create a Stripe Checkout session for a pack, and record what it sells before the
    shop is sent to pay: the webhook credits our record, never the event's figures."""
    if not billing_stripe_enabled():
        raise BillingError(
            "stripe_not_configured", "Buying credits online is not set up: ask the operators."
        )
    if not _actor(tenant, user).can_manage_team:
        raise BillingError("forbidden", "Only owners and admins can buy credits.")
    pack = CreditPack.objects.on_sale().filter(pk=pack_id).first()
    if pack is None:
        raise BillingError("unknown_pack", "pack: this pack is not on sale any more.")
    import stripe

    back = _credits_page_url(tenant)
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": pack.currency,
                    "unit_amount": pack.price_cents,
                    "product_data": {"name": f"{pack.name}: {pack.credits} ProductStudio credits"},
                },
            }
        ],
        "client_reference_id": str(tenant.pk),
        "metadata": {"tenant_id": str(tenant.pk), "tenant": tenant.slug, "pack_id": str(pack.pk)},
        "customer_email": user.email,
        # Stripe fills in {CHECKOUT_SESSION_ID} itself.
        "success_url": back + "?checkout=success&session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": back + "?checkout=canceled",
    }
    try:
        session = _stripe_client().v1.checkout.sessions.create(params=params)
    except stripe.StripeError as e:
        logger.warning("Stripe refused a checkout session for tenant %s: %s", tenant.pk, e)
        raise BillingError(
            "stripe_error", "Stripe could not start the payment; nothing was charged. Try again."
        ) from e
    if not session.url:
        raise BillingError("stripe_error", "Stripe gave no payment page; nothing was charged.")
    record = CheckoutSession.objects.create(
        session_id=session.id,
        tenant=tenant,
        pack=pack,
        credits=pack.credits,
        price_cents=pack.price_cents,
        currency=pack.currency,
        created_by=user,
    )
    return StartedCheckout(session=record, url=session.url)


# What the webhook acts on; Stripe's other events are acknowledged and ignored.
CHECKOUT_PAID_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)
CHECKOUT_EXPIRED_EVENT = "checkout.session.expired"


def stripe_event_handle(*, payload: bytes, signature: str) -> str:
    """Verify and act on one webhook delivery; returns what was done, for the log.

    A bad signature or a timestamp older than the tolerance raises ``invalid_event``
    (Stripe is answered 400). Everything else is acknowledged: a paid session is
    credited exactly once (the event id is recorded; the session's row is locked and
    checked; the ledger's unique payment_ref backs both), an event seen before does
    nothing, a session we never created is logged and left alone.
    """
    import stripe

    try:
        event = stripe.Webhook.construct_event(
            payload,
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        ).to_dict()
    except (stripe.SignatureVerificationError, ValueError) as e:
        logger.warning("Stripe webhook refused: %s", e)
        raise BillingError(
            "invalid_event", "The event's signature or timestamp is not valid."
        ) from e
    event_type = str(event.get("type", ""))
    if event_type not in CHECKOUT_PAID_EVENTS and event_type != CHECKOUT_EXPIRED_EVENT:
        return "ignored"
    obj = (event.get("data") or {}).get("object") or {}
    session_id = str(obj.get("id") or "")
    if not event.get("id") or not session_id:
        logger.warning("Stripe event %r of type %s names no session", event.get("id"), event_type)
        return "malformed"
    with transaction.atomic():
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event["id"], type=event_type)
        except IntegrityError:
            return "replayed"
        checkout = (
            CheckoutSession.objects.select_for_update()
            .select_related("pack")
            .filter(session_id=session_id)
            .first()
        )
        if checkout is None:
            logger.warning("Stripe event %s names unknown session %r", event["id"], session_id)
            return "unknown_session"
        if event_type == CHECKOUT_EXPIRED_EVENT:
            if checkout.status != CheckoutStatus.OPEN:
                return "already_closed"
            checkout.status = CheckoutStatus.EXPIRED
            checkout.save(update_fields=["status"])
            return "expired"
        if obj.get("payment_status") != "paid":
            # Paid later by a delayed method: async_payment_succeeded credits it then.
            return "not_paid"
        if checkout.status == CheckoutStatus.COMPLETED:
            return "already_credited"
        if obj.get("amount_total") not in (None, checkout.price_cents):
            logger.warning(
                "Stripe session %s charged %s, we sold it for %s; crediting our record",
                session_id,
                obj.get("amount_total"),
                checkout.price_cents,
            )
        try:
            with transaction.atomic():
                _credit_append(
                    tenant_id=checkout.tenant_id,
                    kind=CreditKind.PURCHASE,
                    amount=checkout.credits,
                    memo=f"Purchase: {checkout.pack.name} ({checkout.credits} credits)",
                    payment_ref=session_id,
                )
        except IntegrityError:
            return "already_credited"
        checkout.status = CheckoutStatus.COMPLETED
        checkout.completed_at = timezone.now()
        checkout.save(update_fields=["status", "completed_at"])
    return "credited"
