"""The low-balance warning: the owners are emailed once when the balance falls below the
workspace's threshold, again only after it has been back; every workspace page shows a
banner meanwhile, at no extra query."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import Membership, Role, Tenant, User
from jobs.models import Job
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _credits(settings) -> None:
    settings.TRIAL_CREDITS = 12
    settings.LOW_BALANCE_THRESHOLD = 10


@pytest.fixture
def co_owner(tenant: Tenant) -> User:
    user = User.objects.create_user(email="co-owner@shop.test", password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=Role.OWNER)
    return user


def _hold(tenant: Tenant, amount: int) -> Job:
    job = Job.objects.create(tenant=tenant, model="bria-product-packshot", price=amount)
    services.credits_hold(tenant=tenant, job=job, amount=amount)
    return job


def _warnings() -> list:
    return [m for m in mail.outbox if "running low" in m.subject]


def test_falling_below_the_threshold_emails_the_owners_once(
    tenant, member, co_owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 2)  # 10 left: at the threshold, not below
    assert not _warnings()
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 1)  # 9 left
    [email] = _warnings()
    assert sorted(email.to) == ["co-owner@shop.test", "owner@shop.test"]
    assert "9 credits left" in email.body
    assert "3 more are reserved for jobs still in progress" in email.body
    assert "http://127.0.0.1:8000" + reverse("credits", args=[tenant.slug]) in email.body
    tenant.refresh_from_db()
    assert tenant.low_balance_notified_at is not None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _hold(tenant, 1)
        _hold(tenant, 1)
    assert len(_warnings()) == 1
    # Once told, the holds do not even schedule a check.
    assert callbacks == []


def test_the_owners_are_emailed_again_after_the_balance_recovered(
    tenant, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = _hold(tenant, 5)
    assert len(_warnings()) == 1
    services.credits_release(job=job)  # back to 12
    tenant.refresh_from_db()
    assert tenant.low_balance_notified_at is None
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 4)
    assert len(_warnings()) == 2


def test_a_grant_that_stays_below_the_threshold_keeps_the_warning_quiet(
    tenant, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 8)  # 4 left
    services.credits_grant(tenant=tenant, amount=1, user=owner, memo="")  # 5: still below
    tenant.refresh_from_db()
    assert tenant.low_balance_notified_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 1)
    assert len(_warnings()) == 1


def test_an_operators_adjustment_down_warns_and_up_clears(
    tenant, owner, django_capture_on_commit_callbacks
):
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    with django_capture_on_commit_callbacks(execute=True):
        services.credits_adjust(tenant=tenant, amount=-5, user=operator, memo="double grant")
    assert len(_warnings()) == 1
    services.credits_adjust(tenant=tenant, amount=5, user=operator, memo="undo")
    tenant.refresh_from_db()
    assert tenant.low_balance_notified_at is None


def test_a_threshold_of_zero_never_warns(tenant, owner, django_capture_on_commit_callbacks):
    services.credits_threshold_set(tenant=tenant, by=owner, threshold=0)
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 12)
    assert not _warnings()


def test_raising_the_threshold_warns_on_the_page_and_emails_at_the_next_drop(
    owner_client, tenant, owner, django_capture_on_commit_callbacks
):
    owner_client.post(
        reverse("credits_threshold", args=[tenant.slug]), {"low_balance_threshold": 50}
    )
    assert not _warnings()
    page = owner_client.get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert "Low balance:" in page
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 1)
    assert len(_warnings()) == 1
    # Lowering it under the balance clears the mark: a later drop warns again.
    services.credits_threshold_set(tenant=tenant, by=owner, threshold=5)
    tenant.refresh_from_db()
    assert tenant.low_balance_notified_at is None


def test_an_email_that_fails_is_tried_again_at_the_next_drop(
    tenant, low_balance_smtp_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = _hold(tenant, 3)  # the job is held all the same
    assert Job.objects.get(pk=job.pk).credit_entries.count() == 1
    tenant.refresh_from_db()
    assert tenant.low_balance_notified_at is None
    low_balance_smtp_down.up()
    with django_capture_on_commit_callbacks(execute=True):
        _hold(tenant, 1)
    assert len(_warnings()) == 1


@pytest.mark.parametrize("name", ["dashboard", "gallery", "team", "preset_list", "credits"])
def test_every_workspace_page_shows_the_banner_while_below(member_client, tenant, name):
    _hold(tenant, 3)
    page = member_client.get(reverse(name, args=[tenant.slug])).content.decode()
    assert "Low balance:" in page
    assert "9 credits left, below the warning at 10" in page
    assert f'<a href="{reverse("credits", args=[tenant.slug])}">Add credits</a>' in page


def test_no_banner_at_or_above_the_threshold(member_client, tenant):
    _hold(tenant, 2)  # 10 left: at the threshold
    page = member_client.get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert "Low balance:" not in page


def test_the_banner_costs_no_query(member_client, tenant):
    url = reverse("dashboard", args=[tenant.slug])
    member_client.get(url)  # the session's first use
    with CaptureQueriesContext(connection) as above:
        member_client.get(url)
    _hold(tenant, 3)
    with CaptureQueriesContext(connection) as below:
        page = member_client.get(url).content.decode()
    assert "Low balance:" in page
    assert len(below) == len(above)


def test_another_workspaces_low_balance_shows_no_banner_here(
    outsider, outsider_client, tenant, owner
):
    _hold(tenant, 5)
    own = Tenant.objects.get(memberships__user=outsider)
    page = outsider_client.get(reverse("dashboard", args=[own.slug])).content.decode()
    assert "Low balance:" not in page


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_send_one_email(tenant, owner):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises every writer")
    Tenant.objects.filter(pk=tenant.pk).update(credit_balance=1)
    sent: list[bool] = []
    start = threading.Barrier(8)

    def check() -> None:
        try:
            start.wait()
            sent.append(services.credits_low_check(tenant_id=tenant.pk))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sent.count(True) == 1
    assert len(_warnings()) == 1
