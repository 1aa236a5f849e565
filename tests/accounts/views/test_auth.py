"""Sign-up, log in, log out and password reset by email."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role, Tenant, User
from tests.conftest import PASSWORD

SIGNUP = {
    "email": "Ada@Shop.test",
    "name": "Ada",
    "workspace_name": "Ada's Candles",
    "password": PASSWORD,
}


def _signup_link(message) -> str:
    link = re.search(r"http://\S+/signup/confirm/\S+/", str(message.body))
    assert link is not None
    return urlsplit(link.group(0)).path


def test_signing_up_emails_a_link_that_creates_the_workspace_and_signs_in(db):
    client = Client()
    response = client.post(reverse("signup"), SIGNUP)
    assert response.status_code == 302
    assert response["Location"] == reverse("signup_sent")
    assert not User.objects.exists()  # nothing until the link is opened
    sent = client.get(response["Location"])
    assert "We sent a link to <strong>ada@shop.test</strong>" in sent.content.decode()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@shop.test"]

    link = _signup_link(mail.outbox[0])
    page = client.get(link)
    assert page.status_code == 200
    assert not User.objects.exists()  # a mail scanner opening the link creates nothing
    response = client.post(link)
    user = User.objects.get()
    tenant = Tenant.objects.get()
    assert user.email == "ada@shop.test"
    assert user.name == "Ada"
    assert user.check_password(PASSWORD)
    assert tenant.name == "Ada's Candles"
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.OWNER
    dashboard = client.get(response["Location"], follow=True)
    assert dashboard.request["PATH_INFO"] == reverse("dashboard", args=[tenant.slug])
    assert "Ada&#x27;s Candles" in dashboard.content.decode()


def test_a_sign_up_link_works_once(db):
    client = Client()
    client.post(reverse("signup"), SIGNUP)
    link = _signup_link(mail.outbox[0])
    client.post(link)
    again = Client().post(link)
    assert again.status_code == 404
    assert "not valid any more" in again.content.decode()
    assert User.objects.count() == 1
    assert Tenant.objects.count() == 1


def test_signing_up_with_a_taken_email_answers_as_for_a_new_one_and_tells_the_owner(owner):
    taken = Client().post(reverse("signup"), {**SIGNUP, "email": "OWNER@shop.test"})
    free = Client().post(reverse("signup"), {**SIGNUP, "email": "someone@shop.test"})
    assert taken.status_code == free.status_code == 302
    assert taken["Location"] == free["Location"] == reverse("signup_sent")
    assert Tenant.objects.count() == 1
    assert User.objects.count() == 1
    to_owner = next(m for m in mail.outbox if m.to == [owner.email])
    assert "Someone tried to sign up" in to_owner.subject
    assert "/password-reset/" in str(to_owner.body)
    assert "/signup/confirm/" not in str(to_owner.body)
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_a_sign_up_link_refuses_an_email_taken_since(db):
    client = Client()
    client.post(reverse("signup"), SIGNUP)
    link = _signup_link(mail.outbox[0])
    User.objects.create_user(email="ada@shop.test", password=PASSWORD)
    response = client.post(link)
    assert response.status_code == 409
    assert "already has an account" in response.content.decode()
    assert not Tenant.objects.exists()


def test_signing_up_with_a_weak_password_is_refused(db):
    response = Client().post(
        reverse("signup"), {"email": "a@b.test", "workspace_name": "Shop", "password": "123"}
    )
    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not User.objects.exists()


def test_a_user_logs_in_with_email_and_lands_on_their_dashboard(owner, tenant):
    client = Client()
    response = client.post(reverse("login"), {"username": "Owner@Shop.test", "password": PASSWORD})
    assert response.status_code == 302
    final = client.get(response["Location"], follow=True)
    assert final.request["PATH_INFO"] == reverse("dashboard", args=[tenant.slug])


def test_a_wrong_password_does_not_log_in(owner):
    client = Client()
    response = client.post(reverse("login"), {"username": owner.email, "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_logging_out_ends_the_session(owner_client, tenant):
    owner_client.post(reverse("logout"))
    response = owner_client.get(reverse("dashboard", args=[tenant.slug]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_password_is_reset_through_the_emailed_link(owner):
    client = Client()
    client.post(reverse("password_reset"), {"email": owner.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/password-reset/\S+/\S+/", str(mail.outbox[0].body))
    assert link is not None
    path = link.group(0).split("testserver", 1)[1]
    form = client.get(path, follow=True)
    assert form.status_code == 200
    new_password = "a-brand-new-secret-42"
    client.post(
        form.request["PATH_INFO"], {"new_password1": new_password, "new_password2": new_password}
    )
    owner.refresh_from_db()
    assert owner.check_password(new_password)


def test_a_password_reset_for_an_unknown_email_sends_nothing_and_reveals_nothing(db):
    response = Client().post(reverse("password_reset"), {"email": "nobody@shop.test"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_pages_of_a_workspace_need_a_login(tenant):
    response = Client().get(reverse("dashboard", args=[tenant.slug]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
