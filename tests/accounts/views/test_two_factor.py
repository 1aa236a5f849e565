"""Two factors: setting up an authenticator app (QR code, confirmed by a code), log-in's
code step, recovery codes, turning it off, and the admin behind a verified session."""

from __future__ import annotations

import base64
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import OperatorAction, User
from accounts.views.security import PENDING_KEY
from jobs import services as job_services
from jobs.models import Job
from tests.conftest import PASSWORD, login_client
from tests.support.two_factor import staff_login, totp_code, two_factor_enable, wrong_code


@pytest.fixture
def no_throttle(settings) -> None:
    """Wrong codes without the doubling wait: for tests of what comes after them."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


@pytest.fixture
def a_job(tenant, owner, product_jpeg, django_capture_on_commit_callbacks) -> Job:
    """A job with an asset (the local engine), for the operators' asset view."""
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
    assert job.assets.exists()
    return job


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_superuser(email="ops@studio.test", password=PASSWORD)


def _password_step(client: Client, email: str, next_url: str = "") -> str:
    data = {"username": email, "password": PASSWORD}
    url = reverse("login") + (f"?next={next_url}" if next_url else "")
    if next_url:
        data["next"] = next_url
    response = client.post(url, data)
    assert response.status_code == 302
    return response["Location"]


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- setting it up ---------------------------------------------------------------------


def test_the_security_page_shows_a_qr_code_and_the_key_to_type(owner):
    client = login_client(owner)
    assert "Set up two-factor" in client.get(reverse("account_security")).content.decode()

    client.post(reverse("security_setup"))

    device = TOTPDevice.objects.get(user=owner)
    assert not device.confirmed
    assert not owner.has_two_factor()
    page = client.get(reverse("account_security")).content.decode()
    assert "<svg" in page and "<path" in page
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    typed = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert typed is not None and typed.group(1).replace(" ", "") == secret


def test_the_security_page_is_linked_from_the_account_menu(owner, tenant):
    page = login_client(owner).get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert reverse("account_security") in page


def test_a_wrong_code_leaves_two_factor_off(owner, no_throttle):
    client = login_client(owner)
    client.post(reverse("security_setup"))
    device = TOTPDevice.objects.get(user=owner)

    response = client.post(reverse("security_confirm"), {"code": wrong_code(device)})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert not owner.has_two_factor()
    assert not StaticDevice.objects.filter(user=owner).exists()


def test_the_right_code_turns_it_on_and_shows_ten_recovery_codes_once(owner):
    client = login_client(owner)
    client.post(reverse("security_setup"))
    device = TOTPDevice.objects.get(user=owner)

    response = client.post(reverse("security_confirm"), {"code": totp_code(device)})

    page = response.content.decode()
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page)
    assert len(codes) == 10
    assert set(codes) == set(
        StaticToken.objects.filter(device__user=owner).values_list("token", flat=True)
    )
    assert owner.has_two_factor()
    # The session that showed the code counts as verified.
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    later = client.get(reverse("account_security")).content.decode()
    assert not any(code in later for code in codes)
    assert "10</strong> left" in later


def test_an_unconfirmed_app_does_not_count_at_log_in(owner):
    services.two_factor_setup_start(user=owner)

    client = Client()
    _password_step(client, owner.email)

    assert _logged_in(client)


# --- logging in --------------------------------------------------------------------------


def test_log_in_without_two_factor_is_the_password_alone(owner, tenant):
    client = Client()
    _password_step(client, owner.email)
    assert _logged_in(client)


def test_after_the_password_the_session_is_not_logged_in_until_the_code(owner, tenant):
    device, _ = two_factor_enable(owner)
    client = Client()

    location = _password_step(client, owner.email)

    assert location == reverse("login_code")
    assert not _logged_in(client)
    dashboard = reverse("dashboard", args=[tenant.slug])
    assert client.get(dashboard)["Location"].startswith(reverse("login"))
    assert client.get(reverse("api_jobs")).status_code in (401, 403)
    page = client.get(location).content.decode()
    assert "Enter the 6-digit code from your app (or a recovery code)" in page

    response = client.post(location, {"code": totp_code(device)})

    assert response.status_code == 302
    assert _logged_in(client)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get(dashboard).status_code == 200


def test_next_is_kept_through_the_code_step(owner, tenant):
    device, _ = two_factor_enable(owner)
    client = Client()
    target = reverse("gallery", args=[tenant.slug])

    _password_step(client, owner.email, next_url=target)
    response = client.post(reverse("login_code"), {"code": totp_code(device)})

    assert response["Location"] == target


def test_a_next_to_another_site_is_not_followed(owner):
    device, _ = two_factor_enable(owner)
    client = Client()

    _password_step(client, owner.email, next_url="https://evil.test/")
    response = client.post(reverse("login_code"), {"code": totp_code(device)})

    assert "evil.test" not in response["Location"]


def test_a_wrong_code_is_refused_clearly_and_the_device_then_waits(owner, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 600  # the wait outlasts any slow machine
    device, _ = two_factor_enable(owner)
    client = Client()
    _password_step(client, owner.email)

    refused = client.post(reverse("login_code"), {"code": wrong_code(device)})

    assert refused.status_code == 200
    assert "That code is not right" in refused.content.decode()
    assert not _logged_in(client)
    throttled = client.post(reverse("login_code"), {"code": totp_code(device)})
    assert "Too many wrong codes. Wait" in throttled.content.decode()
    assert not _logged_in(client)


def test_five_wrong_codes_send_the_person_back_to_the_password(owner, no_throttle):
    device, _ = two_factor_enable(owner)
    client = Client()
    _password_step(client, owner.email)

    for _ in range(4):
        assert client.post(reverse("login_code"), {"code": wrong_code(device)}).status_code == 200
    fifth = client.post(reverse("login_code"), {"code": wrong_code(device)})

    assert fifth["Location"] == reverse("login")
    assert PENDING_KEY not in client.session
    assert client.post(reverse("login_code"), {"code": totp_code(device)})["Location"] == reverse(
        "login"
    )
    assert not _logged_in(client)


def test_the_code_step_lasts_five_minutes(owner):
    device, _ = two_factor_enable(owner)
    client = Client()
    _password_step(client, owner.email)
    session = client.session
    session[PENDING_KEY] = {**session[PENDING_KEY], "until": 0}
    session.save()

    response = client.post(reverse("login_code"), {"code": totp_code(device)})

    assert response["Location"] == reverse("login")
    assert not _logged_in(client)


def test_the_code_page_without_the_password_step_sends_to_log_in(owner):
    device, _ = two_factor_enable(owner)
    client = Client()
    response = client.post(reverse("login_code"), {"code": totp_code(device)})
    assert response["Location"] == reverse("login")
    assert not _logged_in(client)


def test_a_password_changed_during_the_code_step_ends_it(owner):
    device, _ = two_factor_enable(owner)
    client = Client()
    _password_step(client, owner.email)
    owner.set_password("another-long-passphrase")
    owner.save()

    response = client.post(reverse("login_code"), {"code": totp_code(device)})

    assert response["Location"] == reverse("login")
    assert not _logged_in(client)


# --- recovery codes ----------------------------------------------------------------------


def test_a_recovery_code_logs_in_once_then_asks_for_new_codes(owner, tenant):
    _, codes = two_factor_enable(owner)
    client = Client()
    _password_step(client, owner.email)

    response = client.post(reverse("login_code"), {"code": codes[0].upper()})

    assert _logged_in(client)
    assert response["Location"].startswith(reverse("account_security"))
    page = client.get(response["Location"]).content.decode()
    assert "You used a recovery code; 9 left. Make new ones now" in page

    again = Client()
    _password_step(again, owner.email)
    refused = again.post(reverse("login_code"), {"code": codes[0]})
    assert "That code is not right" in refused.content.decode()
    assert not _logged_in(again)


def test_new_recovery_codes_need_a_current_code_and_replace_the_old(owner, no_throttle):
    device, old = two_factor_enable(owner)
    client = staff_login(Client(), owner)

    refused = client.post(reverse("recovery_codes_regenerate"), {"code": wrong_code(device)})
    assert "That code is not right" in refused.content.decode()
    assert services.recovery_codes_left(user=owner) == 10

    response = client.post(reverse("recovery_codes_regenerate"), {"code": totp_code(device)})

    new = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    with pytest.raises(services.TwoFactorError):
        services.two_factor_verify(user=owner, code=old[1])
    assert isinstance(services.two_factor_verify(user=owner, code=new[0]), StaticDevice)


# --- turning it off ----------------------------------------------------------------------


def test_turning_it_off_needs_the_password_or_a_code(owner, no_throttle):
    two_factor_enable(owner)
    client = staff_login(Client(), owner)

    refused = client.post(reverse("two_factor_disable"), {"password_or_code": "guess"})
    assert "neither your password nor a current code" in refused.content.decode()
    assert owner.has_two_factor()

    client.post(reverse("two_factor_disable"), {"password_or_code": PASSWORD})

    assert not owner.has_two_factor()
    assert not StaticDevice.objects.filter(user=owner).exists()
    fresh = Client()
    _password_step(fresh, owner.email)
    assert _logged_in(fresh)


def test_turning_it_off_with_a_code_from_the_app(owner):
    device, _ = two_factor_enable(owner)
    client = staff_login(Client(), owner)
    client.post(reverse("two_factor_disable"), {"password_or_code": totp_code(device)})
    assert not owner.has_two_factor()


# --- the admin ---------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_portals_log_in_not_the_admins(db):
    client = Client()
    for url in ("/admin/", "/admin/login/?next=/admin/accounts/user/"):
        response = client.get(url, follow=True)
        assert response.request["PATH_INFO"] == reverse("login")
        assert 'name="otp_token"' not in response.content.decode()


def test_staff_without_two_factor_see_no_admin_page_and_are_sent_to_set_it_up(operator, a_job):
    client = login_client(operator)

    for url in (
        reverse("admin:index"),
        reverse("admin:accounts_tenant_changelist"),
        reverse("staff_asset_file", args=[a_job.assets.first().pk]),
    ):
        response = client.get(url, follow=True)
        assert response.request["PATH_INFO"] == reverse("account_security"), url
        assert "Operators need two-factor" in response.content.decode()
    grant = client.post(reverse("admin:accounts_tenant_credits_grant", args=[a_job.tenant_id]))
    assert grant.status_code == 302


def test_staff_with_an_app_who_did_not_pass_the_code_are_asked_for_it(operator, a_job):
    two_factor_enable(operator)
    client = login_client(operator)  # logged in before two-factor, say

    for url in (
        reverse("admin:index"),
        reverse("staff_asset_file", args=[a_job.assets.first().pk]),
    ):
        response = client.get(url, follow=True)
        assert response.request["PATH_INFO"] == reverse("login_code"), url


def test_an_operator_sets_up_two_factor_at_the_first_admin_visit_and_gets_in(operator):
    client = Client()
    _password_step(client, operator.email, next_url="/admin/")
    page = client.get("/admin/", follow=True)
    assert page.request["PATH_INFO"] == reverse("account_security")
    client.post(reverse("security_setup"), {"next": "/admin/"})
    device = TOTPDevice.objects.get(user=operator)

    codes = client.post(reverse("security_confirm"), {"code": totp_code(device), "next": "/admin/"})

    assert 'href="/admin/"' in codes.content.decode()
    assert client.get("/admin/").status_code == 200


def test_an_operator_with_an_app_logs_in_with_the_code_and_opens_the_admin(operator, a_job):
    device, _ = two_factor_enable(operator)
    client = Client()
    _password_step(client, operator.email, next_url="/admin/")
    assert client.get("/admin/").status_code == 302

    response = client.post(reverse("login_code"), {"code": totp_code(device)})

    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    asset = a_job.assets.first()
    assert client.get(reverse("staff_asset_file", args=[asset.pk])).status_code == 200


def test_a_shop_user_at_the_admin_is_refused_without_a_password_form(owner):
    response = login_client(owner).get("/admin/", follow=True)
    assert response.status_code == 403
    assert 'name="password"' not in response.content.decode()


def test_an_operator_resets_a_users_two_factor_with_a_reason(operator, owner):
    two_factor_enable(owner)
    client = staff_login(Client(), operator)
    changelist = reverse("admin:accounts_user_changelist")
    chosen = {"action": "reset_two_factor", "_selected_action": [owner.pk]}

    asked = client.post(changelist, chosen)
    assert "Reset two-factor" in asked.content.decode() and owner.has_two_factor()
    no_reason = client.post(changelist, {**chosen, "post": "yes", "reason": " "})
    assert "reason: say why" in no_reason.content.decode()
    assert owner.has_two_factor() and not OperatorAction.objects.exists()

    client.post(changelist, {**chosen, "post": "yes", "reason": "lost phone, called from +1…"})

    assert not owner.has_two_factor()
    assert not StaticDevice.objects.filter(user=owner).exists()
    reset = OperatorAction.objects.get()
    assert (reset.action, reset.target, reset.reason) == (
        "two_factor_reset",
        f"user {owner.email}",
        "lost phone, called from +1…",
    )
    fresh = Client()
    _password_step(fresh, owner.email)
    assert _logged_in(fresh)


def test_the_reset_service_refuses_without_a_reason(operator, owner):
    two_factor_enable(owner)
    with pytest.raises(services.TwoFactorError) as e:
        services.user_two_factor_reset(actor=operator, user=owner, reason="  ")
    assert e.value.code == "reason_required"
    assert owner.has_two_factor()


def test_the_admin_never_shows_anyones_authenticator_secret(operator, owner):
    device, _ = two_factor_enable(owner)
    client = staff_login(Client(), operator)
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").status_code == 404
    page = client.get(reverse("admin:accounts_user_change", args=[owner.pk])).content.decode()
    assert device.key not in page
