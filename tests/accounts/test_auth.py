"""Sign-up, log in, log out and password reset by email."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role, Tenant, User
from tests.conftest import PASSWORD


def test_signing_up_creates_a_workspace_owned_by_the_new_user(db):
    client = Client()
    response = client.post(
        reverse("signup"),
        {
            "email": "Ada@Shop.test",
            "name": "Ada",
            "workspace_name": "Ada's Candles",
            "password": PASSWORD,
        },
    )
    user = User.objects.get()
    tenant = Tenant.objects.get()
    assert user.email == "ada@shop.test"
    assert tenant.name == "Ada's Candles"
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.OWNER
    assert response.status_code == 302
    dashboard = client.get(response["Location"], follow=True)
    assert dashboard.request["PATH_INFO"] == reverse("dashboard", args=[tenant.slug])
    assert "Ada&#x27;s Candles" in dashboard.content.decode()


def test_signing_up_with_a_taken_email_names_the_field(owner):
    response = Client().post(
        reverse("signup"),
        {"email": "OWNER@shop.test", "workspace_name": "Another", "password": PASSWORD},
    )
    assert response.status_code == 200
    assert "email: an account with this email already exists" in response.content.decode()
    assert Tenant.objects.count() == 1


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
