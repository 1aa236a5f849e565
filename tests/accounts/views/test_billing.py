"""Buying credits: trial credits, packs on the credits page, and Stripe Checkout
sessions created through a fake Stripe on 127.0.0.1, end to end through the views."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import (
    CheckoutSession,
    CheckoutStatus,
    CreditEntry,
    CreditKind,
    CreditPack,
    Membership,
    Role,
    Tenant,
    User,
    format_money,
)
from tests.conftest import PASSWORD, login_client
from tests.support.fake_stripe import FakeStripe


@pytest.fixture
def fake_stripe(settings) -> Iterator[FakeStripe]:
    with FakeStripe(api_key="sk_test_productstudio") as fake:
        settings.STRIPE_API_BASE = fake.base_url
        settings.STRIPE_SECRET_KEY = fake.api_key
        settings.STRIPE_WEBHOOK_SECRET = "whsec_test_productstudio"
        yield fake


@pytest.fixture
def no_stripe(settings) -> None:
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""


@pytest.fixture
def pack(db) -> CreditPack:
    return CreditPack.objects.create(name="Starter", credits=100, price_cents=1200)


@pytest.fixture
def admin_user(tenant: Tenant) -> User:
    user = User.objects.create_user(email="admin@shop.test", password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    return user


def _credits_url(tenant: Tenant) -> str:
    return reverse("credits", args=[tenant.slug])


def _buy(client, tenant: Tenant, pack: CreditPack):
    return client.post(reverse("credits_buy", args=[tenant.slug]), {"pack": pack.pk})


# -- trial credits -----------------------------------------------------------------------


def test_a_new_workspace_starts_with_the_trial_credits(settings, db):
    settings.TRIAL_CREDITS = 25
    user = User.objects.create_user(email="new@shop.test", password=PASSWORD)
    tenant = services.tenant_create(name="New Shop", owner=user)
    assert tenant.credit_balance == 25
    entry = CreditEntry.objects.for_tenant(tenant).get()
    assert (entry.kind, entry.amount, entry.memo) == (CreditKind.GRANT, 25, "Trial credits")
    tenant.refresh_from_db()
    assert tenant.credit_balance == 25


def test_a_sign_up_gets_the_trial_credits_too(settings, db):
    settings.TRIAL_CREDITS = 7
    user = services.user_signup(email="a@shop.test", password=PASSWORD, workspace_name="A")
    assert Tenant.objects.get(memberships__user=user).credit_balance == 7


def test_no_trial_entry_is_written_when_trial_credits_are_zero(settings, db):
    settings.TRIAL_CREDITS = 0
    user = User.objects.create_user(email="new@shop.test", password=PASSWORD)
    tenant = services.tenant_create(name="New Shop", owner=user)
    assert tenant.credit_balance == 0
    assert not CreditEntry.objects.exists()


# -- packs -------------------------------------------------------------------------------


def test_the_packs_on_sale_are_listed_on_the_credits_page(owner_client, tenant, pack, no_stripe):
    CreditPack.objects.create(name="Retired", credits=5, price_cents=100, active=False)
    CreditPack.objects.create(name="Studio", credits=1000, price_cents=9900, currency="eur")
    page = owner_client.get(_credits_url(tenant)).content.decode()
    assert "Starter" in page and "$12.00" in page
    assert "Studio" in page and "€99.00" in page
    assert "Retired" not in page


def test_money_is_shown_in_the_packs_currency():
    assert format_money(1200, "usd") == "$12.00"
    assert format_money(123456, "gbp") == "£1,234.56"
    assert format_money(1500, "jpy") == "¥1,500"
    assert format_money(905, "chf") == "9.05 CHF"


@pytest.mark.parametrize(
    ("field", "values"),
    [("price_cents", {"price_cents": 0}), ("currency", {"currency": "us$"})],
)
def test_a_pack_needs_a_price_and_a_currency_code(db, field, values):
    pack = CreditPack(name="Bad", credits=10, **{"price_cents": 500, **values})
    with pytest.raises(ValidationError) as raised:
        pack.full_clean()
    assert list(raised.value.message_dict) == [field]
    assert field in raised.value.message_dict[field][0]


# -- without Stripe ----------------------------------------------------------------------


def _buy_note(page: str) -> str:
    """The sentence under the packs that says how to buy them, as text."""
    match = re.search(r'<p class="notice" id="buy-contact">(.*?)</p>', page, re.S)
    assert match, "the page says nothing about how to buy credits"
    return html.unescape(" ".join(re.sub(r"<[^>]+>", "", match.group(1)).split()))


def test_without_stripe_the_page_names_the_operators_to_email_with_their_names(
    owner_client, tenant, pack, no_stripe, settings
):
    settings.ADMINS = [("Jane Doe", "jane@studio.test"), ("", "ops@studio.test")]
    settings.SUPPORT_EMAIL = "help@studio.test"

    page = owner_client.get(_credits_url(tenant)).content.decode()

    assert _buy_note(page) == (
        "Credits are not sold online here yet. To buy a pack, email Jane Doe at "
        "jane@studio.test or ops@studio.test with the pack you want and the workspace's "
        f"name, {tenant.name}. The credits are added here, and they appear in the ledger below."
    )
    assert f"mailto:jane@studio.test?subject=Credits%20for%20{tenant.slug}" in page
    assert "mailto:ops@studio.test" in page
    assert "help@studio.test" not in page  # the operators come first
    assert reverse("credits_buy", args=[tenant.slug]) not in page


def test_without_operators_the_page_names_the_support_address(
    owner_client, tenant, pack, no_stripe, settings
):
    settings.ADMINS = []
    settings.SUPPORT_EMAIL = "help@studio.test"

    page = owner_client.get(_credits_url(tenant)).content.decode()

    assert "To buy a pack, email help@studio.test with the pack you want" in _buy_note(page)
    assert "mailto:help@studio.test" in page


def test_with_nobody_to_name_the_page_says_whom_to_ask_without_a_blank(
    owner_client, tenant, pack, no_stripe, settings
):
    settings.ADMINS = []
    settings.SUPPORT_EMAIL = ""

    page = owner_client.get(_credits_url(tenant)).content.decode()

    assert _buy_note(page) == (
        "Credits are not sold online here yet. Ask the people who run this ProductStudio "
        f"for you to add credits to {tenant.name}; they appear in the ledger below."
    )
    assert "mailto:" not in page


def _settings_of(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "ADMINS")}
    return subprocess.run(
        [sys.executable, "-c", f"import productstudio.settings as s; print({code})"],
        cwd=Path(__file__).resolve().parents[3],
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_admins_are_read_with_their_names_and_a_bad_entry_stops_the_start():
    read = _settings_of(
        "s.ADMINS, s.SUPPORT_EMAIL",
        ADMINS="Jane Doe <jane@studio.test>, ops@studio.test",
        SUPPORT_EMAIL="help@studio.test",
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == (
        "[('Jane Doe', 'jane@studio.test'), ('', 'ops@studio.test')] help@studio.test"
    )

    bad = _settings_of("s.ADMINS", ADMINS="Jane Doe")
    assert bad.returncode != 0
    assert """ADMINS: 'Jane Doe' is neither an email nor "Name <email>".""" in bad.stderr


def test_with_only_one_stripe_key_nothing_can_be_bought(owner_client, tenant, pack, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = _buy(owner_client, tenant, pack)
    assert response.status_code == 302
    assert not CheckoutSession.objects.exists()
    page = owner_client.get(_credits_url(tenant)).content.decode()
    assert "Buying credits online is not set up" in page


# -- with Stripe -------------------------------------------------------------------------


def test_an_owner_buys_a_pack_through_stripe_checkout(
    owner_client, owner, tenant, pack, fake_stripe
):
    page = owner_client.get(_credits_url(tenant)).content.decode()
    assert reverse("credits_buy", args=[tenant.slug]) in page

    response = _buy(owner_client, tenant, pack)

    assert response.status_code == 303
    [created] = fake_stripe.created
    assert response["Location"] == created["url"]
    session = CheckoutSession.objects.get()
    assert session.session_id == created["id"] and session.session_id.startswith("cs_test_")
    assert (session.tenant, session.pack, session.created_by) == (tenant, pack, owner)
    assert (session.credits, session.price_cents, session.currency) == (100, 1200, "usd")
    assert session.status == CheckoutStatus.OPEN
    request = created["request"]
    assert request["mode"] == "payment"
    assert request["client_reference_id"] == str(tenant.pk)
    assert request["metadata"] == {
        "tenant_id": str(tenant.pk),
        "tenant": tenant.slug,
        "pack_id": str(pack.pk),
    }
    [line] = request["line_items"]
    assert line["quantity"] == "1"
    assert line["price_data"]["currency"] == "usd"
    assert line["price_data"]["unit_amount"] == "1200"
    assert "Starter" in line["price_data"]["product_data"]["name"]
    back = "http://127.0.0.1:8000" + _credits_url(tenant)
    assert request["success_url"].startswith(back + "?checkout=success")
    assert "{CHECKOUT_SESSION_ID}" in request["success_url"]
    assert request["cancel_url"] == back + "?checkout=canceled"
    # Nothing is credited before Stripe says the payment went through.
    tenant.refresh_from_db()
    assert not CreditEntry.objects.for_tenant(tenant).filter(kind=CreditKind.PURCHASE).exists()


def test_the_pack_price_changed_later_does_not_change_what_a_session_sold(
    owner_client, tenant, pack, fake_stripe
):
    _buy(owner_client, tenant, pack)
    CreditPack.objects.filter(pk=pack.pk).update(credits=1, price_cents=99999)
    session = CheckoutSession.objects.get()
    assert (session.credits, session.price_cents) == (100, 1200)


def test_an_admin_can_buy_too(admin_user, tenant, pack, fake_stripe):
    response = _buy(login_client(admin_user), tenant, pack)
    assert response.status_code == 303
    assert CheckoutSession.objects.get().created_by == admin_user


def test_a_member_sees_the_packs_but_cannot_buy(member_client, tenant, pack, fake_stripe):
    page = member_client.get(_credits_url(tenant)).content.decode()
    assert "Starter" in page
    assert "Only owners and admins" in page
    assert reverse("credits_buy", args=[tenant.slug]) not in page

    response = _buy(member_client, tenant, pack)

    assert response.status_code == 403
    assert "Only owners and admins can buy credits" in response.content.decode()
    assert fake_stripe.calls == 0
    assert not CheckoutSession.objects.exists()


def test_an_outsider_cannot_see_or_buy_for_the_workspace(
    outsider_client, tenant, pack, fake_stripe
):
    assert outsider_client.get(_credits_url(tenant)).status_code == 404
    assert _buy(outsider_client, tenant, pack).status_code == 404
    assert fake_stripe.calls == 0
    assert not CheckoutSession.objects.exists()


def test_a_pack_taken_off_sale_cannot_be_bought(owner_client, tenant, pack, fake_stripe):
    CreditPack.objects.filter(pk=pack.pk).update(active=False)
    response = _buy(owner_client, tenant, pack)
    assert response.status_code == 302
    assert fake_stripe.calls == 0
    assert not CheckoutSession.objects.exists()
    page = owner_client.get(response["Location"]).content.decode()
    assert "pack: this pack is not on sale any more" in page


def test_when_stripe_refuses_nothing_is_recorded_and_the_shop_is_told(
    owner_client, tenant, pack, fake_stripe
):
    fake_stripe.refuse_next(400, "Invalid currency")
    response = _buy(owner_client, tenant, pack)
    assert response.status_code == 302
    assert fake_stripe.calls == 1
    assert not CheckoutSession.objects.exists()
    page = owner_client.get(response["Location"]).content.decode()
    assert "Stripe could not start the payment; nothing was charged" in page


def test_a_wrong_secret_key_is_refused_by_stripe_and_nothing_is_recorded(
    owner_client, tenant, pack, fake_stripe, settings
):
    settings.STRIPE_SECRET_KEY = "sk_test_wrong"
    assert _buy(owner_client, tenant, pack).status_code == 302
    assert fake_stripe.calls == 1 and not fake_stripe.created
    assert not CheckoutSession.objects.exists()


def test_back_from_stripe_the_page_says_whether_the_credits_arrived(
    owner_client, tenant, pack, fake_stripe
):
    _buy(owner_client, tenant, pack)
    session = CheckoutSession.objects.get()
    url = _credits_url(tenant) + f"?checkout=success&session_id={session.session_id}"
    assert "Stripe is confirming the payment" in owner_client.get(url).content.decode()
    CheckoutSession.objects.filter(pk=session.pk).update(status=CheckoutStatus.COMPLETED)
    assert "Payment received: 100 credits" in owner_client.get(url).content.decode()
    canceled = owner_client.get(_credits_url(tenant) + "?checkout=canceled")
    assert "nothing was charged" in canceled.content.decode()
