"""Throttled log-in (django-axes), password reset, sign-up and API keys, and operators
lifting the locks in the admin."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.client import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import OperatorAction, ThrottleCounter, ThrottleScope, User
from accounts.throttling import client_address
from tests.conftest import PASSWORD
from tests.support.api_helpers import assert_problem
from tests.support.two_factor import staff_login

LOCKOUT = "Too many failed log-ins. Try again in 15 minutes or reset your password."


def _log_in(email: str, password: str, address: str = "10.0.0.1") -> tuple[Client, Any]:
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": email, "password": password})
    return client, response


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _without_csrf(body: bytes) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body.decode())


def test_a_hundred_wrong_passwords_lock_the_account_long_before_the_hundredth(owner):
    answers = []
    for attempt in range(100):
        # A new address each time: the account's own limit must hold on its own.
        _, response = _log_in(owner.email, f"guess-{attempt}", address=f"10.0.{attempt}.1")
        answers.append(response.status_code)
        if response.status_code == 429:
            break
    assert answers == [200] * 4 + [429]
    client, response = _log_in(owner.email, PASSWORD, address="10.9.9.9")
    assert response.status_code == 429
    assert LOCKOUT in response.content.decode()
    assert not _logged_in(client)


def test_the_lock_is_per_account_whatever_the_case_of_the_email(owner):
    for attempt in range(5):
        _log_in(owner.email.upper() if attempt % 2 else owner.email, "wrong")
    _, response = _log_in("Owner@Shop.Test", PASSWORD, address="10.7.7.7")
    assert response.status_code == 429


def test_the_cool_off_ends_the_lock(owner):
    for _ in range(5):
        _log_in(owner.email, "wrong")
    assert _log_in(owner.email, PASSWORD)[1].status_code == 429
    # The cool-off counts from the last failure: move every failure past it.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    client, response = _log_in(owner.email, PASSWORD)
    assert response.status_code == 302
    assert _logged_in(client)


def test_a_successful_log_in_starts_the_accounts_count_afresh(owner):
    for _ in range(4):
        _log_in(owner.email, "wrong")
    assert _log_in(owner.email, PASSWORD)[1].status_code == 302
    for _ in range(4):
        _, response = _log_in(owner.email, "wrong")
        assert response.status_code == 200
    assert _log_in(owner.email, PASSWORD)[1].status_code == 302


def test_an_address_is_locked_across_accounts(owner, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    answers = [_log_in(f"guess{n}@shop.test", "wrong", "10.5.5.5")[1].status_code for n in range(8)]
    assert answers == [200] * 7 + [429]
    client, response = _log_in(owner.email, PASSWORD, "10.5.5.5")
    assert response.status_code == 429
    assert not _logged_in(client)
    client, response = _log_in(owner.email, PASSWORD, "10.6.6.6")
    assert response.status_code == 302
    assert _logged_in(client)


def test_the_lockout_answer_is_the_same_for_an_existing_and_an_unknown_email(owner):
    for _ in range(5):
        _log_in(owner.email, "wrong", "10.1.0.1")
        _log_in("nobody@shop.test", "wrong", "10.2.0.1")
    _, existing = _log_in(owner.email, "wrong", "10.1.0.1")
    _, unknown = _log_in("nobody@shop.test", "wrong", "10.2.0.1")
    assert existing.status_code == unknown.status_code == 429
    assert _without_csrf(existing.content) == _without_csrf(unknown.content)
    assert LOCKOUT in existing.content.decode()


def test_the_test_clients_login_still_works(owner):
    client = Client()
    assert client.login(email=owner.email, password=PASSWORD)
    assert _logged_in(client)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.3", "203.0.113.9"),
        (2, "", "10.0.0.2"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


# --- password reset and sign-up ------------------------------------------------------------


def test_password_reset_requests_are_limited_per_address_with_a_clear_message(owner, settings):
    settings.PASSWORD_RESET_ADDRESS_LIMIT = 3
    client = Client(REMOTE_ADDR="10.3.3.3")
    answers = [
        client.post(reverse("password_reset"), {"email": f"n{n}@shop.test"}).status_code
        for n in range(3)
    ]
    assert answers == [302] * 3
    refused = client.post(reverse("password_reset"), {"email": owner.email})
    assert refused.status_code == 429
    assert "Too many password-reset requests from your address" in refused.content.decode()
    assert mail.outbox == []
    other = Client(REMOTE_ADDR="10.4.4.4").post(reverse("password_reset"), {"email": owner.email})
    assert other.status_code == 302
    assert len(mail.outbox) == 1


def test_password_resets_for_one_email_are_limited_and_the_page_says_the_same(owner, settings):
    settings.PASSWORD_RESET_EMAIL_LIMIT = 2
    answers = []
    for n in range(5):
        response = Client(REMOTE_ADDR=f"10.8.{n}.1").post(
            reverse("password_reset"), {"email": owner.email.upper()}
        )
        answers.append((response.status_code, response["Location"]))
    assert answers == [(302, reverse("password_reset_done"))] * 5
    assert len(mail.outbox) == 2
    page = Client().get(reverse("password_reset_done"))
    assert "If an account exists for that address" in page.content.decode()


def test_sign_ups_are_limited_per_address(db, settings):
    settings.SIGNUP_ADDRESS_LIMIT = 2
    client = Client(REMOTE_ADDR="10.3.3.4")

    def sign_up(n: int):
        return client.post(
            reverse("signup"),
            {"email": f"new{n}@shop.test", "workspace_name": "Shop", "password": PASSWORD},
        )

    assert [sign_up(n).status_code for n in range(2)] == [302, 302]
    refused = sign_up(3)
    assert refused.status_code == 429
    assert "Too many sign-ups from your address" in refused.content.decode()
    assert len(mail.outbox) == 2


# --- API keys --------------------------------------------------------------------------------


def test_wrong_api_keys_from_one_address_lock_it_for_every_key(tenant, settings):
    settings.API_KEY_FAILURE_LIMIT = 3
    good = services.api_key_create(tenant=tenant, name="good").secret
    url = reverse("api_credits")

    def call(key: str, address: str):
        return Client(REMOTE_ADDR=address, HTTP_AUTHORIZATION=f"Bearer {key}").get(url)

    wrong = [call(f"ps_guess{n}_secret", "10.9.0.1") for n in range(3)]
    assert [r.status_code for r in wrong] == [401, 401, 401]
    locked = call("ps_guess9_secret", "10.9.0.1")
    body = assert_problem(locked, 429, "rate_limited")
    assert "wrong API key" in body["detail"]
    assert 0 < int(locked["Retry-After"]) <= 15 * 60
    assert_problem(call(good, "10.9.0.1"), 429, "rate_limited")
    assert call(good, "10.9.0.2").status_code == 200


def test_good_keys_do_not_count_towards_the_lock(tenant, settings):
    settings.API_KEY_FAILURE_LIMIT = 2
    good = services.api_key_create(tenant=tenant, name="good").secret
    client = Client(REMOTE_ADDR="10.9.1.1", HTTP_AUTHORIZATION=f"Bearer {good}")
    assert all(client.get(reverse("api_credits")).status_code == 200 for _ in range(5))
    assert not ThrottleCounter.objects.exists()


# --- operators -------------------------------------------------------------------------------


@pytest.fixture
def operator_client(db) -> Client:
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    # The admin lets staff in only with their second factor passed.
    return staff_login(Client(), operator)


def test_an_operator_sees_a_locked_account_and_lifts_the_lock(owner, operator_client):
    for _ in range(5):
        _log_in(owner.email, "wrong", "10.0.0.5")
    changelist = operator_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert changelist.status_code == 200
    assert owner.email in changelist.content.decode()
    assert "account" in changelist.content.decode()

    chosen = {
        "action": "lift_lock",
        "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
    }
    # First the operator is asked why; with no reason nothing is lifted.
    asked = operator_client.post(reverse("admin:axes_accessattempt_changelist"), chosen)
    assert "Lift log-in locks" in asked.content.decode()
    blank = {**chosen, "post": "yes", "reason": " "}
    refused = operator_client.post(reverse("admin:axes_accessattempt_changelist"), blank)
    assert "reason: say why" in refused.content.decode()
    assert AccessAttempt.objects.exists() and not OperatorAction.objects.exists()

    why = {**chosen, "post": "yes", "reason": "Owner called from the shop's number"}
    response = operator_client.post(reverse("admin:axes_accessattempt_changelist"), why)
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    lifted = OperatorAction.objects.get()
    assert (lifted.action, lifted.actor_email, lifted.reason) == (
        "lock_lift",
        "ops@studio.test",
        "Owner called from the shop's number",
    )
    assert lifted.details["accounts"] == [owner.email.lower()]
    client, response = _log_in(owner.email, PASSWORD, "10.0.0.5")
    assert response.status_code == 302
    assert _logged_in(client)


def test_a_shop_owner_cannot_lift_a_lock(owner, owner_client):
    for _ in range(5):
        _log_in(owner.email, "wrong", "10.0.0.6")
    response = owner_client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {
            "action": "lift_lock",
            "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert AccessAttempt.objects.count() == 1


def test_an_operator_lifts_an_api_key_lock(tenant, operator_client, settings):
    settings.API_KEY_FAILURE_LIMIT = 1
    client = Client(REMOTE_ADDR="10.9.2.1", HTTP_AUTHORIZATION="Bearer ps_bad_key")
    client.get(reverse("api_credits"))
    assert client.get(reverse("api_credits")).status_code == 429
    counter = ThrottleCounter.objects.get(scope=ThrottleScope.API_KEY_ADDRESS, key="10.9.2.1")
    listing = operator_client.get(reverse("admin:accounts_throttlecounter_changelist"))
    assert "10.9.2.1" in listing.content.decode()
    operator_client.post(
        reverse("admin:accounts_throttlecounter_changelist"),
        {
            "action": "lift_lock",
            "_selected_action": [counter.pk],
            "post": "yes",
            "reason": "Integrator rotated the key",
        },
    )
    assert not ThrottleCounter.objects.exists()
    assert OperatorAction.objects.get().target.endswith("10.9.2.1")
    assert client.get(reverse("api_credits")).status_code == 401


def test_resetting_the_password_lifts_the_accounts_lock(owner):
    for _ in range(5):
        _log_in(owner.email, "wrong", "10.0.0.7")
    assert _log_in(owner.email, PASSWORD, "10.0.0.8")[1].status_code == 429
    client = Client(REMOTE_ADDR="10.0.0.8")
    client.post(reverse("password_reset"), {"email": owner.email})
    link = re.search(r"http://\S+/password-reset/\S+/\S+/", str(mail.outbox[0].body))
    assert link is not None
    form = client.get(urlsplit(link.group(0)).path, follow=True)
    new_password = "a-brand-new-secret-42"
    client.post(
        form.request["PATH_INFO"], {"new_password1": new_password, "new_password2": new_password}
    )
    client, response = _log_in(owner.email, new_password, "10.0.0.8")
    assert response.status_code == 302
    assert _logged_in(client)


def test_sign_up_emails_to_one_address_are_limited_and_the_answer_stays_the_same(owner, settings):
    settings.SIGNUP_EMAIL_LIMIT = 2
    answers = []
    for n in range(4):
        response = Client(REMOTE_ADDR=f"10.3.{n}.5").post(
            reverse("signup"),
            {"email": owner.email, "workspace_name": "Shop", "password": PASSWORD},
        )
        answers.append((response.status_code, response["Location"]))
    assert answers == [(302, reverse("signup_sent"))] * 4
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_requests_counted_at_once_from_many_threads_are_all_counted():
    def count(_: int) -> None:
        try:
            services.throttle_count(
                scope=ThrottleScope.RESET_ADDRESS, key="10.11.0.1", limit=1000, window_seconds=3600
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(count, range(40)))
    assert ThrottleCounter.objects.get().count == 40
