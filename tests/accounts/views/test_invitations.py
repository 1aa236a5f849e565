"""Invitations: they belong to their invitee. Sending, accepting (only the invited address),
signing up through the link (the invited address, fixed), and the team page's pending
invitations (resend with a new link, withdraw)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Invitation, Membership, Role, Tenant, User
from tests.conftest import PASSWORD, login_client

CAROL = "carol@c.test"


def _invite(client, tenant, email: str, role: str = Role.MEMBER):
    return client.post(reverse("team_invite", args=[tenant.slug]), {"email": email, "role": role})


def _invitation_path() -> str:
    match = re.search(r"/invite/[\w-]+/", str(mail.outbox[-1].body))
    assert match is not None
    return match.group(0)


def _messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


@pytest.fixture
def bob(db: None) -> User:
    """Signed in with an account of his own; he has seen Carol's link."""
    user = User.objects.create_user(email="bob@b.test", password=PASSWORD)
    services.tenant_create(name="Bob's Bikes", owner=user)
    return user


@pytest.fixture
def carol_invited(owner, tenant) -> tuple[Invitation, str]:
    """Alice (the owner) invited carol@c.test as admin: the invitation and its link."""
    invitation, token = services.invitation_create(
        tenant=tenant, invited_by=owner, email=CAROL, role=Role.ADMIN
    )
    return invitation, reverse("invitation_accept", args=[token])


def _unchanged(invitation: Invitation, tenant: Tenant, *users: User) -> None:
    """Nothing happened: the invitation is pending with its link, nobody joined."""
    fresh = Invitation.objects.get(pk=invitation.pk)
    assert fresh.accepted_at is None
    assert fresh.token_digest == invitation.token_digest
    for user in users:
        assert not Membership.objects.filter(user=user, tenant=tenant).exists()


# Sending and accepting


def test_an_owner_invites_a_new_person_who_signs_up_through_the_link(owner_client, tenant):
    _invite(owner_client, tenant, "new@shop.test")
    assert mail.outbox[-1].to == ["new@shop.test"]
    client = Client()
    page = client.get(_invitation_path())
    assert "new@shop.test" in page.content.decode()
    response = client.post(_invitation_path(), {"name": "Nia", "password": PASSWORD})
    assert response.status_code == 302
    user = User.objects.get(email="new@shop.test")
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.MEMBER
    assert client.get(reverse("dashboard", args=[tenant.slug])).status_code == 200


def test_an_invitation_adds_an_existing_user_who_logs_in(owner_client, tenant, outsider):
    _invite(owner_client, tenant, outsider.email, Role.ADMIN)
    path = _invitation_path()
    anonymous = Client().get(path).content.decode()
    assert "Log in to accept" in anonymous
    assert f"{reverse('login')}?next={path}" in anonymous
    client = login_client(outsider)
    client.post(path)
    assert Membership.objects.get(user=outsider, tenant=tenant).role == Role.ADMIN


def test_an_invitation_link_works_once(owner_client, tenant, outsider):
    _invite(owner_client, tenant, outsider.email)
    path = _invitation_path()
    client = login_client(outsider)
    client.post(path)
    again = client.post(path)
    assert again.status_code == 404
    assert "Invitation no longer valid" in again.content.decode()
    assert Membership.objects.filter(user=outsider, tenant=tenant).count() == 1


def test_a_member_cannot_invite(member_client, tenant):
    _invite(member_client, tenant, "someone@shop.test")
    assert mail.outbox == []
    assert not Invitation.objects.exists()


def test_an_invalid_email_is_refused_naming_the_field(owner_client, tenant):
    response = _invite(owner_client, tenant, "not-an-email")
    assert any(m.startswith("email:") for m in _messages(response))
    assert not Invitation.objects.exists()


# Someone else's link


def test_another_account_opening_the_link_is_told_it_is_for_another_address(bob, carol_invited):
    _, path = carol_invited
    response = login_client(bob).get(path)
    page = response.content.decode()
    assert response.status_code == 403
    assert "This invitation is for another email address" in page
    assert "c***@c.test" in page
    # Neither the address, nor the workspace, nor the role is shown to someone else.
    assert CAROL not in page
    assert "Mugs" not in page
    assert "admin" not in page.lower().replace("/admin/", "")
    # A way to log out and come back to the link as the invitee.
    assert f'action="{reverse("logout")}"' in page
    assert f'name="next" value="{path}"' in page


def test_another_account_posting_the_link_gets_no_role_and_leaves_it_usable(
    bob, carol_invited, tenant
):
    invitation, path = carol_invited
    response = login_client(bob).post(path)
    assert response.status_code == 403
    assert "This invitation is for another email address" in response.content.decode()
    _unchanged(invitation, tenant, bob)
    assert Membership.objects.filter(user=bob).count() == 1  # his own workspace only

    carol = Client()
    carol.post(path, {"name": "Carol", "password": PASSWORD})
    user = User.objects.get(email=CAROL)
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.ADMIN
    assert not Membership.objects.filter(user=bob, tenant=tenant).exists()


def test_the_service_refuses_another_account_for_every_caller(bob, carol_invited, tenant):
    invitation, path = carol_invited
    token = path.rstrip("/").rsplit("/", 1)[-1]
    with pytest.raises(services.AccountError) as refused:
        services.invitation_accept(token=token, user=bob)
    assert refused.value.code == "wrong_invitee"
    assert "another email address" in refused.value.message
    _unchanged(invitation, tenant, bob)


def test_an_existing_invitee_accepts_after_someone_else_tried(bob, carol_invited, tenant):
    invitation, path = carol_invited
    carol = User.objects.create_user(email=CAROL, password=PASSWORD)
    login_client(bob).post(path)
    _unchanged(invitation, tenant, bob, carol)
    response = login_client(carol).post(path)
    assert response.status_code == 302
    assert Membership.objects.get(user=carol, tenant=tenant).role == Role.ADMIN


def test_logging_out_from_the_refusal_page_leads_back_to_the_link(bob, carol_invited):
    _, path = carol_invited
    client = login_client(bob)
    response = client.post(reverse("logout"), {"next": path})
    assert response.status_code == 302
    assert response["Location"] == path
    page = client.get(path).content.decode()
    assert "Create account and join" in page
    assert CAROL in page


@pytest.mark.parametrize(
    ("invited", "account"),
    [("Carol@C.Test", CAROL), (CAROL, "CAROL@c.TEST")],
    ids=["invitation-in-capitals", "account-in-capitals"],
)
def test_the_invited_email_matches_whatever_its_case(invited, account, owner, tenant):
    # Both spellings are stored as given (the services lower-case, older rows may not be).
    token = "case-token"
    Invitation.objects.create(
        tenant=tenant,
        email=invited,
        role=Role.MEMBER,
        token_digest=Invitation.digest(token),
        invited_by=owner,
    )
    user = User.objects.create_user(email=CAROL, password=PASSWORD)
    User.objects.filter(pk=user.pk).update(email=account)
    user.refresh_from_db()
    response = login_client(user).post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 302
    assert Membership.objects.filter(user=user, tenant=tenant).exists()


# Signing up through the link


def test_the_signup_form_shows_the_invited_email_fixed(carol_invited):
    _, path = carol_invited
    page = Client().get(path).content.decode()
    field = re.search(r"<input[^>]*name=\"email\"[^>]*>", page)
    assert field is not None
    assert f'value="{CAROL}"' in field.group(0)
    assert "readonly" in field.group(0)


def test_a_signup_posting_another_email_creates_no_account(carol_invited, tenant):
    invitation, path = carol_invited
    response = Client().post(path, {"email": "mallory@m.test", "name": "M", "password": PASSWORD})
    assert response.status_code == 200
    assert "email: this invitation is for another address" in response.content.decode()
    assert not User.objects.filter(email__iexact="mallory@m.test").exists()
    assert not User.objects.filter(email__iexact=CAROL).exists()
    _unchanged(invitation, tenant)


def test_a_signup_posting_the_invited_email_in_another_case_is_accepted(carol_invited, tenant):
    _, path = carol_invited
    response = Client().post(path, {"email": "CAROL@c.test", "password": PASSWORD})
    assert response.status_code == 302
    assert Membership.objects.filter(user__email=CAROL, tenant=tenant).exists()


def test_the_signup_service_refuses_another_email(carol_invited, tenant):
    invitation, path = carol_invited
    token = path.rstrip("/").rsplit("/", 1)[-1]
    with pytest.raises(services.AccountError) as refused:
        services.invitation_signup(token=token, password=PASSWORD, email="mallory@m.test")
    assert refused.value.code == "email_mismatch"
    assert refused.value.message.startswith("email:")
    assert not User.objects.filter(email__in=["mallory@m.test", CAROL]).exists()
    _unchanged(invitation, tenant)


# Used, withdrawn, expired


def test_a_withdrawn_link_says_it_is_no_longer_valid(owner_client, carol_invited, tenant):
    invitation, path = carol_invited
    owner_client.post(reverse("team_revoke_invitation", args=[tenant.slug, invitation.pk]))
    assert not Invitation.objects.filter(pk=invitation.pk).exists()
    for client in (Client(), login_client(User.objects.create_user(email=CAROL))):
        for response in (client.get(path), client.post(path, {"password": PASSWORD})):
            assert response.status_code == 404
            assert "Invitation no longer valid" in response.content.decode()
    assert not Membership.objects.filter(user__email=CAROL, tenant=tenant).exists()


def test_an_expired_link_says_so(carol_invited, tenant):
    invitation, path = carol_invited
    Invitation.objects.filter(pk=invitation.pk).update(
        sent_at=timezone.now() - timedelta(days=settings.INVITATION_MAX_AGE_DAYS, minutes=1)
    )
    response = Client().get(path)
    assert response.status_code == 404
    assert "This invitation has expired" in response.content.decode()


# The team page: pending invitations, resend, withdraw


def test_owners_see_pending_and_expired_invitations_with_inviter_and_expiry(
    owner, owner_client, tenant, carol_invited
):
    old, _ = services.invitation_create(tenant=tenant, invited_by=owner, email="old@shop.test")
    Invitation.objects.filter(pk=old.pk).update(
        sent_at=timezone.now() - timedelta(days=settings.INVITATION_MAX_AGE_DAYS + 1)
    )
    page = owner_client.get(reverse("team", args=[tenant.slug])).content.decode()
    assert CAROL in page and "old@shop.test" in page
    assert "invited by Olive" in page
    carol_row = page[page.index(CAROL) : page.index("</li>", page.index(CAROL))]
    old_row = page[page.index("old@shop.test") : page.index("</li>", page.index("old@shop.test"))]
    assert "expires" in carol_row and "expired" not in carol_row
    assert "expired" in old_row
    assert reverse("team_resend_invitation", args=[tenant.slug, old.pk]) in old_row


def test_members_do_not_see_invitations(member_client, tenant, carol_invited):
    page = member_client.get(reverse("team", args=[tenant.slug])).content.decode()
    assert CAROL not in page


def test_an_owner_resends_with_a_new_link_and_the_old_one_stops_working(
    owner_client, tenant, carol_invited
):
    invitation, old_path = carol_invited
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now() - timedelta(days=3))
    sent = len(mail.outbox)
    response = owner_client.post(
        reverse("team_resend_invitation", args=[tenant.slug, invitation.pk])
    )
    assert response.status_code == 302
    assert len(mail.outbox) == sent + 1
    assert mail.outbox[-1].to == [CAROL]
    new_path = _invitation_path()
    assert new_path != old_path
    fresh = Invitation.objects.get(pk=invitation.pk)
    assert fresh.expires_at > timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS - 1)
    assert Client().get(old_path).status_code == 404
    Client().post(new_path, {"password": PASSWORD})
    assert Membership.objects.get(user__email=CAROL, tenant=tenant).role == Role.ADMIN


def test_an_expired_invitation_can_be_resent(owner_client, tenant, carol_invited):
    invitation, _ = carol_invited
    Invitation.objects.filter(pk=invitation.pk).update(
        sent_at=timezone.now() - timedelta(days=settings.INVITATION_MAX_AGE_DAYS + 2)
    )
    owner_client.post(reverse("team_resend_invitation", args=[tenant.slug, invitation.pk]))
    assert Invitation.objects.pending().filter(pk=invitation.pk).exists()
    assert Client().get(_invitation_path()).status_code == 200


def test_a_second_resend_within_a_minute_is_refused(owner_client, tenant, carol_invited):
    invitation, _ = carol_invited
    url = reverse("team_resend_invitation", args=[tenant.slug, invitation.pk])
    Invitation.objects.filter(pk=invitation.pk).update(
        sent_at=timezone.now() - timedelta(minutes=5)
    )
    owner_client.post(url)
    sent = len(mail.outbox)
    digest = Invitation.objects.get(pk=invitation.pk).token_digest
    again = owner_client.post(url)
    assert any("less than a minute ago" in m for m in _messages(again))
    assert len(mail.outbox) == sent
    assert Invitation.objects.get(pk=invitation.pk).token_digest == digest


def test_a_resend_right_after_the_invitation_is_refused(owner, tenant, carol_invited):
    invitation, path = carol_invited
    with pytest.raises(services.AccountError) as refused:
        services.invitation_resend(tenant=tenant, by=owner, invitation_id=invitation.pk)
    assert refused.value.code == "resend_too_soon"
    assert Client().get(path).status_code == 200


@pytest.mark.parametrize("action", ["team_resend_invitation", "team_revoke_invitation"])
def test_an_outsider_gets_404_and_nothing_changes(action, outsider_client, tenant, carol_invited):
    invitation, _ = carol_invited
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    invitation.refresh_from_db()
    sent = len(mail.outbox)
    response = outsider_client.post(reverse(action, args=[tenant.slug, invitation.pk]))
    assert response.status_code == 404
    # Nor through the outsider's own workspace.
    own = Tenant.objects.get(memberships__user__email="outsider@other.test")
    response = outsider_client.post(reverse(action, args=[own.slug, invitation.pk]))
    assert response.status_code == 404
    assert len(mail.outbox) == sent
    _unchanged(invitation, tenant)


@pytest.mark.parametrize("action", ["team_resend_invitation", "team_revoke_invitation"])
def test_a_member_is_refused_and_nothing_changes(action, member_client, tenant, carol_invited):
    invitation, _ = carol_invited
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    invitation.refresh_from_db()
    sent = len(mail.outbox)
    response = member_client.post(reverse(action, args=[tenant.slug, invitation.pk]))
    assert response.status_code == 302
    assert any("Only owners and admins" in m for m in _messages(response))
    assert len(mail.outbox) == sent
    _unchanged(invitation, tenant)


def test_an_admin_resends_a_members_invitation_but_not_an_owners(owner, member, tenant):
    Membership.objects.filter(user=member).update(role=Role.ADMIN)
    for_member, _ = services.invitation_create(tenant=tenant, invited_by=owner, email="m@s.test")
    for_owner, _ = services.invitation_create(
        tenant=tenant, invited_by=owner, email="o@s.test", role=Role.OWNER
    )
    Invitation.objects.update(sent_at=timezone.now() - timedelta(hours=1))
    services.invitation_resend(tenant=tenant, by=member, invitation_id=for_member.pk)
    with pytest.raises(services.AccountError) as refused:
        services.invitation_resend(tenant=tenant, by=member, invitation_id=for_owner.pk)
    assert refused.value.code == "forbidden"
    with pytest.raises(services.AccountError):
        services.invitation_revoke(tenant=tenant, by=member, invitation_id=for_owner.pk)
    assert Invitation.objects.filter(pk=for_owner.pk).exists()


def test_an_owner_withdraws_an_expired_invitation(owner_client, tenant, carol_invited):
    invitation, _ = carol_invited
    Invitation.objects.filter(pk=invitation.pk).update(
        sent_at=timezone.now() - timedelta(days=settings.INVITATION_MAX_AGE_DAYS + 1)
    )
    response = owner_client.post(
        reverse("team_revoke_invitation", args=[tenant.slug, invitation.pk])
    )
    assert any("withdrawn" in m for m in _messages(response))
    assert not Invitation.objects.filter(pk=invitation.pk).exists()


def test_an_accepted_invitation_cannot_be_resent_or_withdrawn(owner_client, tenant, carol_invited):
    invitation, path = carol_invited
    Client().post(path, {"password": PASSWORD})
    for action in ("team_resend_invitation", "team_revoke_invitation"):
        response = owner_client.post(reverse(action, args=[tenant.slug, invitation.pk]))
        assert response.status_code == 404
    assert Invitation.objects.get(pk=invitation.pk).accepted_at is not None


@pytest.mark.django_db(transaction=True)
def test_eight_simultaneous_resends_send_one_email(owner, tenant):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are a PostgreSQL matter; SQLite serialises them")
    invitation, _ = services.invitation_create(tenant=tenant, invited_by=owner, email=CAROL)
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    sent = len(mail.outbox)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def resend() -> None:
        start.wait()
        try:
            services.invitation_resend(tenant=tenant, by=owner, invitation_id=invitation.pk)
            outcomes.append("sent")
        except services.AccountError as e:
            outcomes.append(e.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=resend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["resend_too_soon"] * 7 + ["sent"]
    assert len(mail.outbox) == sent + 1
    assert Client().get(_invitation_path()).status_code == 200
