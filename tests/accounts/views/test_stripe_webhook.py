"""Stripe's webhook: a paid Checkout session is credited exactly once, whatever Stripe
delivers (replays, two events for one session, concurrent deliveries), and nothing that
is not signed by Stripe, recently, is believed. Every event is built and signed here."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import close_old_connections, connection
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import (
    CheckoutSession,
    CheckoutStatus,
    CreditEntry,
    CreditKind,
    CreditPack,
    StripeEvent,
    Tenant,
)
from tests.support.fake_stripe import checkout_event, sign

SECRET = "whsec_test_productstudio"
URL = "/stripe/webhook/"


@pytest.fixture(autouse=True)
def _stripe_settings(settings) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_productstudio"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
    settings.TRIAL_CREDITS = 0


@pytest.fixture
def session(tenant: Tenant, owner) -> CheckoutSession:
    pack = CreditPack.objects.create(name="Starter", credits=100, price_cents=1200)
    return CheckoutSession.objects.create(
        session_id="cs_test_a1b2c3",
        tenant=tenant,
        pack=pack,
        credits=100,
        price_cents=1200,
        currency="usd",
        created_by=owner,
    )


def _deliver(event: dict, *, secret: str = SECRET, timestamp: int | None = None, payload=None):
    body = payload if payload is not None else json.dumps(event).encode()
    return Client().post(
        URL,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret, timestamp=timestamp),
    )


def _purchases(tenant: Tenant):
    return CreditEntry.objects.for_tenant(tenant).filter(kind=CreditKind.PURCHASE)


def _balance(tenant: Tenant) -> int:
    tenant.refresh_from_db()
    return tenant.credit_balance


def test_the_webhook_lives_at_its_documented_url():
    assert reverse("stripe_webhook") == URL


def test_a_paid_session_is_credited_with_what_we_sold(tenant, session):
    event = checkout_event(session.session_id, amount_total=1200)
    response = _deliver(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "credited"}
    entry = _purchases(tenant).get()
    assert (entry.amount, entry.balance_after, entry.payment_ref) == (100, 100, "cs_test_a1b2c3")
    assert "Starter" in entry.memo
    session.refresh_from_db()
    assert session.status == CheckoutStatus.COMPLETED and session.completed_at is not None
    assert StripeEvent.objects.get().event_id == event["id"]
    assert _balance(tenant) == 100


def test_the_credits_come_from_our_record_not_from_the_event_or_the_pack_today(
    tenant, session, caplog
):
    CreditPack.objects.update(credits=5)
    event = checkout_event(session.session_id, amount_total=1)
    assert _deliver(event).status_code == 200
    assert _purchases(tenant).get().amount == 100
    assert "charged 1, we sold it for 1200" in caplog.text


def test_a_replayed_event_credits_nothing(tenant, session):
    event = checkout_event(session.session_id)
    assert _deliver(event).json()["outcome"] == "credited"
    again = _deliver(event)
    assert again.status_code == 200
    assert again.json()["outcome"] == "replayed"
    assert _purchases(tenant).count() == 1
    assert _balance(tenant) == 100


def test_the_same_session_under_two_event_ids_is_credited_once(tenant, session):
    completed = checkout_event(session.session_id)
    succeeded = checkout_event(session.session_id, type="checkout.session.async_payment_succeeded")
    assert _deliver(completed).json()["outcome"] == "credited"
    second = _deliver(succeeded)
    assert second.status_code == 200
    assert second.json()["outcome"] == "already_credited"
    assert _purchases(tenant).count() == 1
    assert StripeEvent.objects.count() == 2
    assert _balance(tenant) == 100


def test_a_delayed_payment_is_credited_when_it_succeeds(tenant, session):
    pending = checkout_event(session.session_id, payment_status="unpaid")
    assert _deliver(pending).json()["outcome"] == "not_paid"
    assert not _purchases(tenant).exists()
    session.refresh_from_db()
    assert session.status == CheckoutStatus.OPEN
    paid = checkout_event(session.session_id, type="checkout.session.async_payment_succeeded")
    assert _deliver(paid).json()["outcome"] == "credited"
    assert _balance(tenant) == 100


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "changed body", "no header", "garbage header"],
)
def test_an_event_not_signed_by_stripe_is_refused_and_credits_nothing(tenant, session, tamper):
    event = checkout_event(session.session_id)
    body = json.dumps(event).encode()
    header = sign(body, SECRET)
    if tamper == "wrong secret":
        header = sign(body, "whsec_someone_else")
    elif tamper == "changed body":
        body = body.replace(b'"paid"', b'"paid" ')
    elif tamper == "no header":
        header = ""
    else:
        header = "t=abc,v1=zz"
    response = Client().post(
        URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert response.status_code == 400
    assert not _purchases(tenant).exists()
    assert not StripeEvent.objects.exists()
    session.refresh_from_db()
    assert session.status == CheckoutStatus.OPEN


def test_an_event_signed_too_long_ago_is_refused(tenant, session, settings):
    settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
    old = int(time.time()) - 301
    response = _deliver(checkout_event(session.session_id), timestamp=old)
    assert response.status_code == 400
    assert not _purchases(tenant).exists()
    # Within the tolerance the same event is believed.
    recent = int(time.time()) - 200
    assert _deliver(checkout_event(session.session_id), timestamp=recent).status_code == 200
    assert _purchases(tenant).count() == 1


def test_a_signed_body_that_is_not_json_is_refused(tenant, session):
    assert _deliver({}, payload=b"not json").status_code == 400
    assert not StripeEvent.objects.exists()


def test_an_unknown_session_is_acknowledged_and_credits_nothing(tenant, session, caplog):
    response = _deliver(checkout_event("cs_test_not_ours"))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_session"
    assert not CreditEntry.objects.filter(kind=CreditKind.PURCHASE).exists()
    assert "unknown session 'cs_test_not_ours'" in caplog.text


def test_an_expired_session_is_marked_expired_and_credits_nothing(tenant, session):
    response = _deliver(checkout_event(session.session_id, type="checkout.session.expired"))
    assert response.json()["outcome"] == "expired"
    session.refresh_from_db()
    assert session.status == CheckoutStatus.EXPIRED
    assert not _purchases(tenant).exists()


def test_a_late_expiry_does_not_undo_a_completed_session(tenant, session):
    _deliver(checkout_event(session.session_id))
    late = _deliver(checkout_event(session.session_id, type="checkout.session.expired"))
    assert late.json()["outcome"] == "already_closed"
    session.refresh_from_db()
    assert session.status == CheckoutStatus.COMPLETED
    assert _balance(tenant) == 100


def test_other_event_types_are_acknowledged_and_ignored(tenant, session):
    event = checkout_event(session.session_id, type="payment_intent.succeeded")
    response = _deliver(event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert not _purchases(tenant).exists()
    assert not StripeEvent.objects.exists()


def test_the_webhook_answers_only_post():
    assert Client().get(URL).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_session_credit_it_once(tenant, session):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises every writer")
    # Two events for the session, each delivered four times at once: Stripe's retries
    # racing its own async_payment_succeeded.
    events = [
        checkout_event(session.session_id),
        checkout_event(session.session_id, type="checkout.session.async_payment_succeeded"),
    ]
    deliveries = [json.dumps(e).encode() for e in events for _ in range(4)]
    outcomes: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(deliveries))

    def deliver(payload: bytes) -> None:
        try:
            start.wait()
            outcomes.append(
                services.stripe_event_handle(payload=payload, signature=sign(payload, SECRET))
            )
        except BaseException as e:  # reported below: a thread's exception is otherwise lost
            errors.append(e)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=deliver, args=(p,)) for p in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert outcomes.count("credited") == 1
    assert outcomes.count("replayed") == 6
    assert outcomes.count("already_credited") == 1
    assert _purchases(tenant).count() == 1
    assert _balance(tenant) == 100
    assert StripeEvent.objects.count() == 2
