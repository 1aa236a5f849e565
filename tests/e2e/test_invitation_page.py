"""An invitation link in a real browser: someone else's account is turned away and logs
out; the invitee then signs up with the invited email, fixed, and joins."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Invitation, Membership, Role, User
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_another_account_is_turned_away_and_the_invitee_then_joins(
    page: Any, live_server: Any, owner, tenant
):
    _, token = services.invitation_create(
        tenant=tenant, invited_by=owner, email="carol@c.test", role=Role.ADMIN
    )
    bob = User.objects.create_user(email="bob@b.test", password=PASSWORD)
    services.tenant_create(name="Bob's Bikes", owner=bob)
    link = live_server.url + reverse("invitation_accept", args=[token])

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(bob.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/w/[\w-]+/$"))

    page.goto(link)
    page.get_by_role("heading", name="This invitation is for another email address").wait_for()
    assert "c***@c.test" in page.content()
    page.get_by_role("button", name="Log out and continue as the invitee").click()

    # Back on the link, signed out: the sign-up form with Carol's address, fixed.
    page.get_by_role("button", name="Create account and join").wait_for()
    assert page.url == link
    email = page.get_by_label("Email")
    assert email.input_value() == "carol@c.test"
    assert email.get_attribute("readonly") is not None
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account and join").click()
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))

    carol = User.objects.get(email="carol@c.test")
    assert Membership.objects.get(user=carol, tenant=tenant).role == Role.ADMIN
    assert not Membership.objects.filter(user=bob, tenant=tenant).exists()
    assert Invitation.objects.get().accepted_at is not None
