"""Segmind's 406 (the account behind a key is out of credit), end to end against the fake
Segmind: the first refusal pauses the key and its job waits, like every job for the key
after it, with the same message and nothing charged, until an operator clears the pause or
a probe is accepted, or they give up after the wait limit; any of them can be canceled
with its credits back; each workspace's own key is a key of its own."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts.models import CreditKind, Tenant, User
from jobs import dispatcher as provider
from jobs import services
from jobs.models import AssetKind, Job, JobPrice, JobStatus, ProviderIncident, ProviderPause
from tests.support.fake_segmind import FakeSegmind

# Every credit below is the test's own: the ledgers start empty.
pytestmark = pytest.mark.usefixtures("no_trial_credits")

PLATFORM_KEY = "platform-key-0001"
OWN_KEY = "sg_own_key_of_the_shop_9876"
NEW_OWN_KEY = "sg_new_own_key_of_the_shop_5555"
PACKSHOT = "bria-product-packshot"
PRICE = 3


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeSegmind]:
    with FakeSegmind(
        port=0, latency=0.2, api_key=PLATFORM_KEY, api_keys=[OWN_KEY, NEW_OWN_KEY]
    ) as server:
        settings.SEGMIND_API_KEY = PLATFORM_KEY
        # Delivery, not price, is tested here: a model no operator priced is free.
        settings.SEGMIND_DEFAULT_PRICE = 0
        settings.SEGMIND_API_BASE = server.base_url
        settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SEGMIND_FIRST_POLL_SECONDS = 0.1
        settings.SEGMIND_POLL_INTERVAL_SECONDS = 0.1
        settings.SEGMIND_DISPATCHER_SECONDS = 20
        settings.ADMINS = [("Operators", "ops@studio.test")]
        yield server


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user(email="oncall@studio.test", password="x", is_staff=True)


@pytest.fixture
def priced(tenant: Tenant, owner: User) -> JobPrice:
    account_services.credits_grant(tenant=tenant, amount=30, user=owner, memo="to spend")
    return JobPrice.objects.update_or_create(
        model=PACKSHOT, engine="segmind", defaults={"credits": PRICE}
    )[0]


@pytest.fixture
def own_key_tenant(fake: FakeSegmind, outsider: User) -> Tenant:
    """A workspace with its own Segmind key (checked against the fake, which knows it)."""
    tenant = Tenant.objects.get(memberships__user=outsider)
    account_services.segmind_key_set(tenant=tenant, by=outsider, key=OWN_KEY)
    return tenant


def _submit(
    tenant: Tenant, user: User, product_jpeg: bytes, capture, n: int = 1, sku: str = ""
) -> list[Job]:
    """Submit `n` packshot jobs; the dispatcher runs inline once they are committed."""
    with capture(execute=True):
        jobs = [
            services.job_submit(
                tenant=tenant,
                user=user,
                model=PACKSHOT,
                upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
                params={"sku": sku or f"sku-{uuid.uuid4().hex[:8]}"},
            )
            for _ in range(n)
        ]
    for job in jobs:
        job.refresh_from_db()
    return jobs


def _totals(tenant: Tenant) -> tuple[int, int]:
    tenant.refresh_from_db()
    return tenant.credit_balance, tenant.credit_held


def _pause_opened_by_a_406(fake, tenant, owner, product_jpeg, capture) -> tuple[Job, Job, Job]:
    """The platform key refused once (the first job waits); two jobs wait behind it."""
    fake.faults.insufficient_credits(1, key=PLATFORM_KEY)
    first = _submit(tenant, owner, product_jpeg, capture)[0]
    assert first.status == JobStatus.WAITING_FOR_PROVIDER
    second, third = _submit(tenant, owner, product_jpeg, capture, n=2)
    return first, second, third


# --- the first refusal ----------------------------------------------------------------------


def test_the_first_406_makes_its_job_wait_holding_its_credits_records_it_and_emails_staff(
    fake, tenant, owner, staff, priced, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.out_of_credit(PLATFORM_KEY)

    job = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)[0]

    assert job.status == JobStatus.WAITING_FOR_PROVIDER
    assert (job.error_code, job.error_message) == ("", "")
    assert job.waiting_since is not None
    assert "Nothing has been charged" in job.waiting_message
    assert "on ProductStudio's side" in job.waiting_message
    assert _totals(tenant) == (30 - PRICE, PRICE)
    assert list(job.credit_entries.values_list("kind", flat=True)) == [CreditKind.HOLD]
    pause = ProviderPause.objects.get()
    assert pause.is_open and pause.tenant is None
    assert pause.key_id == services.segmind_key_id(PLATFORM_KEY)
    assert pause.paused_until > timezone.now()
    incident = ProviderIncident.objects.get()
    assert (incident.tenant, incident.job, incident.pause) == (tenant, job, pause)
    assert (incident.code, incident.own_key) == ("provider_insufficient_credits", False)
    assert ProviderIncident.objects.for_tenant(tenant).count() == 1
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert sorted(email.to) == ["oncall@studio.test", "ops@studio.test"]
    assert "platform key" in email.subject
    assert PLATFORM_KEY not in f"{email.subject} {email.body}"
    assert f"/admin/jobs/providerpause/{pause.pk}/" in email.body
    assert "The job it refused waits" in email.body


def test_jobs_submitted_while_the_key_is_paused_wait_and_keep_their_hold(
    fake, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    _, second, third = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )

    for job in (second, third):
        assert job.status == JobStatus.WAITING_FOR_PROVIDER
        assert job.waiting_since is not None
        assert job.error_code == ""
        assert "Nothing has been charged" in job.waiting_message
    assert _totals(tenant) == (30 - 3 * PRICE, 3 * PRICE)
    assert fake.stats()["submit_attempts"] == 1  # only the first job was sent
    assert len(mail.outbox) == 1


def test_two_identical_jobs_meeting_an_empty_account_both_wait_with_the_same_message(
    fake, api, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    # One meets Segmind's 406 itself, the other the pause it opened: one cause, one story.
    fake.faults.out_of_credit(PLATFORM_KEY)
    first = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks, sku="m-1")[0]
    second = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks, sku="m-1")[0]

    assert fake.stats()["refused_by_api_key"][PLATFORM_KEY] == 1  # the first was sent
    assert first.status == second.status == JobStatus.WAITING_FOR_PROVIDER
    assert first.waiting_message == second.waiting_message
    assert "Nothing has been charged" in first.waiting_message
    assert "you can cancel it to get its credits back now" in first.waiting_message
    shown = [api.get(f"/api/v1/jobs/{job.pk}").json() for job in (first, second)]
    assert [job["status"] for job in shown] == ["waiting_for_provider"] * 2
    assert [job["error"] for job in shown] == [None, None]
    assert shown[0]["waiting"]["code"] == shown[1]["waiting"]["code"]
    assert shown[0]["waiting"]["message"] == shown[1]["waiting"]["message"]

    for job in (first, second):
        assert services.job_cancel(job=job) is True
        assert list(job.credit_entries.values_list("kind", flat=True).order_by("id")) == [
            CreditKind.HOLD,
            CreditKind.RELEASE,
        ]
    assert _totals(tenant) == (30, 0)


def test_ten_jobs_refused_together_all_wait_with_one_pause_and_one_email(
    fake, tenant, owner, staff, priced, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.out_of_credit(PLATFORM_KEY)

    # Committed together: one dispatcher claims them and submits them at once.
    jobs = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks, n=10)

    assert [job.status for job in jobs] == [JobStatus.WAITING_FOR_PROVIDER] * 10
    # (The owners also get the low-balance email: all 30 credits are held.)
    assert len([m for m in mail.outbox if "Segmind is out of credit" in m.subject]) == 1
    pause = ProviderPause.objects.get()
    refused = fake.stats()["refused_by_api_key"][PLATFORM_KEY]
    assert refused > 1  # several submits were under way when the first 406 came back
    assert pause.occurrences == refused == ProviderIncident.objects.count()
    assert _totals(tenant) == (0, 10 * PRICE)


# --- resuming ---------------------------------------------------------------------------------


def test_an_operator_clearing_the_pause_sends_the_waiting_jobs_and_they_succeed(
    fake, tenant, owner, staff, priced, product_jpeg, django_capture_on_commit_callbacks
):
    first, second, third = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )
    pause = ProviderPause.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        resumed = services.provider_pause_clear(pause_id=pause.pk, by=staff, reason="topped up")

    assert resumed == 3
    for job in (first, second, third):
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
        assert job.assets.filter(kind=AssetKind.OUTPUT).count() == 1
    pause.refresh_from_db()
    assert not pause.is_open
    assert (pause.cleared_by, pause.cleared_reason) == (staff, "topped up")
    assert _totals(tenant) == (30 - 3 * PRICE, 0)
    assert services.provider_pause_clear(pause_id=pause.pk, by=staff, reason="again") is None


def test_a_probe_that_segmind_takes_clears_the_pause_and_the_other_jobs_resume(
    fake, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    first, second, third = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )
    ProviderPause.objects.update(paused_until=timezone.now() - timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        swept = services.jobs_sweep()

    assert swept["probes"] == 1
    pause = ProviderPause.objects.get()
    assert not pause.is_open
    assert pause.cleared_reason == "probe accepted"
    assert pause.probe_job == first  # the one that waited longest: it met the 406
    for job in (first, second, third):
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert fake.stats()["submissions"] == 3
    assert _totals(tenant) == (30 - 3 * PRICE, 0)


def test_a_refused_probe_waits_again_and_puts_the_next_probe_off_without_a_second_email(
    fake, tenant, owner, staff, priced, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.out_of_credit(PLATFORM_KEY)
    first = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)[0]
    second, third = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks, n=2)
    ProviderPause.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    first_wait = Job.objects.get(pk=first.pk).waiting_since

    with django_capture_on_commit_callbacks(execute=True):
        services.jobs_sweep()

    pause = ProviderPause.objects.get()
    assert pause.is_open
    assert pause.probe_job is None
    assert pause.paused_until > timezone.now()
    assert pause.occurrences == 2
    assert ProviderIncident.objects.count() == 2
    assert len(mail.outbox) == 1
    for job in (first, second, third):
        job.refresh_from_db()
        assert job.status == JobStatus.WAITING_FOR_PROVIDER
    # The probe was the first job; the wait limit still counts from its first wait.
    assert first.waiting_since == first_wait
    assert fake.stats()["refused_by_api_key"][PLATFORM_KEY] == 2
    assert _totals(tenant) == (30 - 3 * PRICE, 3 * PRICE)


def test_jobs_that_wait_beyond_the_limit_fail_and_get_their_credits_back(
    fake, settings, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    first, second, third = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )
    long_ago = timezone.now() - timedelta(seconds=settings.SEGMIND_WAIT_LIMIT_SECONDS + 60)
    Job.objects.filter(pk__in=[first.pk, second.pk]).update(waiting_since=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        swept = services.jobs_sweep()

    assert swept["expired"] == 2
    for job in (first, second):
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED
        assert job.error_code == "provider_insufficient_credits"
        assert "waited 6 hours" in job.error_message
        assert "No credit was taken" in job.error_message
        assert ProviderIncident.objects.for_tenant(tenant).filter(job=job).count() == (
            2 if job == first else 1  # the first also met the 406 itself
        )
    third.refresh_from_db()
    assert third.status == JobStatus.WAITING_FOR_PROVIDER
    assert _totals(tenant) == (30 - PRICE, PRICE)


def test_canceling_any_waiting_job_gives_its_credits_back_the_first_one_included(
    fake, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    first, second, _ = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )

    for job in (first, second):
        assert services.job_cancel(job=job) is True
        assert services.job_cancel(job=job) is False
        job.refresh_from_db()
        assert job.status == JobStatus.CANCELED
    assert _totals(tenant) == (30 - PRICE, PRICE)
    # The pause stands for the job still waiting; canceling touched nothing else.
    assert ProviderPause.objects.get().is_open


# --- workspaces with their own key -------------------------------------------------------


def test_own_key_jobs_are_sent_with_the_own_key_even_without_a_platform_key(
    fake, settings, own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks
):
    settings.SEGMIND_API_KEY = ""

    job = _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)[0]

    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert job.own_key
    assert fake.stats()["submissions_by_api_key"] == {OWN_KEY: 1}
    assert (job.provider_request or {})["key_id"] == services.segmind_key_id(OWN_KEY)


def test_the_platform_key_paused_does_not_hold_back_a_workspace_with_its_own_key(
    fake, tenant, owner, own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.out_of_credit(PLATFORM_KEY)
    _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    assert ProviderPause.objects.open().filter(tenant=None).exists()

    job = _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)[0]

    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert fake.stats()["submissions_by_api_key"] == {OWN_KEY: 1}


def test_an_own_key_out_of_credit_pauses_only_that_workspace_and_tells_it_to_top_up(
    fake, tenant, owner, staff, own_key_tenant, outsider, product_jpeg,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    fake.faults.out_of_credit(OWN_KEY)

    first, second = (
        _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)[0]
        for _ in range(2)
    )
    platform_job = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)[0]

    for job in (first, second):
        assert job.status == JobStatus.WAITING_FOR_PROVIDER
        message = Job.objects.get(pk=job.pk).waiting_message
        assert "Your own Segmind account (key ending 9876) is out of credit" in message
        assert "top up your Segmind account" in message
    assert first.error_code == ""
    assert platform_job.status == JobStatus.SUCCEEDED
    pause = ProviderPause.objects.get()
    assert pause.tenant == own_key_tenant
    assert pause.key_id == services.segmind_key_id(OWN_KEY)
    incident = ProviderIncident.objects.get()
    assert (incident.tenant, incident.own_key) == (own_key_tenant, True)
    assert len(mail.outbox) == 1
    assert own_key_tenant.name in mail.outbox[0].subject
    assert OWN_KEY not in mail.outbox[0].body


def test_a_workspace_that_enters_a_new_key_gets_its_waiting_jobs_sent_with_it(
    fake, own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.out_of_credit(OWN_KEY)
    waiting = [
        _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)[0]
        for _ in range(2)
    ]
    account_services.segmind_key_set(tenant=own_key_tenant, by=outsider, key=NEW_OWN_KEY)

    with django_capture_on_commit_callbacks(execute=True):
        services.jobs_sweep()

    pause = ProviderPause.objects.get()
    assert not pause.is_open
    assert "changed its own Segmind key" in pause.cleared_reason
    for job in waiting:  # the one that met the 406 included
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert fake.stats()["submissions_by_api_key"] == {NEW_OWN_KEY: 2}


def test_removing_the_key_through_the_service_clears_its_pause_once_committed(
    fake, own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks
):
    # Accounts sends segmind_key_changed; jobs' receiver clears the pause, with no view
    # or sweeper involved.
    fake.faults.out_of_credit(OWN_KEY)
    _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)
    assert ProviderPause.objects.get().is_open

    with django_capture_on_commit_callbacks(execute=True):
        account_services.segmind_key_clear(tenant=own_key_tenant, by=outsider)

    pause = ProviderPause.objects.get()
    assert not pause.is_open
    assert "changed its own Segmind key" in pause.cleared_reason


def test_entering_a_new_key_on_the_settings_page_sends_the_waiting_jobs_at_once(
    fake, own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks
):
    fake.faults.out_of_credit(OWN_KEY)
    met = _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)[0]
    waiting = _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)[0]
    client = Client()
    client.force_login(outsider)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/w/{own_key_tenant.slug}/settings/", {"action": "save", "segmind_key": NEW_OWN_KEY}
        )

    assert not ProviderPause.objects.get().is_open
    for job in (met, waiting):
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert fake.stats()["submissions_by_api_key"] == {NEW_OWN_KEY: 2}


def test_an_own_key_that_can_no_longer_be_read_fails_the_job_and_gives_its_credits_back(
    fake, settings, own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks
):
    settings.SEGMIND_OWN_KEY_FEE = 2
    account_services.credits_grant(tenant=own_key_tenant, amount=5, user=outsider, memo="")
    # The encryption key changed since the key was saved: it no longer decrypts.
    Tenant.objects.filter(pk=own_key_tenant.pk).update(segmind_key_encrypted="not-a-token")

    job = _submit(own_key_tenant, outsider, product_jpeg, django_capture_on_commit_callbacks)[0]

    assert job.status == JobStatus.FAILED
    assert job.error_code == "own_key_missing"
    assert "Enter the key again" in job.error_message
    assert _totals(own_key_tenant) == (5, 0)
    assert fake.stats()["submit_attempts"] == 0


# --- what the shop sees ----------------------------------------------------------------------


@pytest.fixture
def api(tenant: Tenant) -> Client:
    key = account_services.api_key_create(tenant=tenant, name="t").secret
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def test_the_api_shows_the_waiting_jobs_with_their_reason(
    fake, api, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    first, second, _ = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )

    met = api.get(f"/api/v1/jobs/{first.pk}").json()
    waiting = api.get(f"/api/v1/jobs/{second.pk}").json()

    assert met["status"] == "waiting_for_provider" and met["error"] is None
    assert met["waiting"]["message"] == waiting["waiting"]["message"]
    assert waiting["status"] == "waiting_for_provider"
    assert waiting["error"] is None
    assert waiting["waiting"]["code"] == "provider_insufficient_credits"
    assert "Nothing has been charged" in waiting["waiting"]["message"]
    assert waiting["waiting"]["since"] and waiting["waiting"]["gives_up_at"]
    listed = {item["id"]: item for item in api.get("/api/v1/jobs").json()["results"]}
    assert listed[str(second.pk)]["status"] == "waiting_for_provider"


def test_the_job_page_and_the_gallery_say_what_happened(
    fake, owner_client, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    first, second, _ = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )

    for job in (first, second):
        page = owner_client.get(f"/w/{tenant.slug}/jobs/{job.pk}/").content.decode()
        assert "Waiting for Segmind" in page
        assert "Nothing has been charged" in page
        assert "Cancel job" in page
    gallery = owner_client.get(f"/w/{tenant.slug}/gallery/").content.decode()
    assert "Waiting or not made" in gallery
    assert "Nothing has been charged" in gallery and "Waiting for Segmind" in gallery


# --- the parts ----------------------------------------------------------------------------------


def test_a_key_id_names_a_key_without_revealing_it():
    first = services.segmind_key_id(OWN_KEY)
    assert first == services.segmind_key_id(OWN_KEY)
    assert first != services.segmind_key_id(NEW_OWN_KEY)
    assert len(first) == 24
    # Keyed with SECRET_KEY: a plain digest of the key would let anyone test guesses.
    assert not hashlib.sha256(OWN_KEY.encode()).hexdigest().startswith(first)


def test_a_segmind_key_is_never_in_its_repr(settings):
    settings.SEGMIND_API_KEY = PLATFORM_KEY
    key = services.segmind_key_for(tenant=None)
    assert key is not None and key.key == PLATFORM_KEY
    assert PLATFORM_KEY not in repr(key)


def _running_jobs(tenant: Tenant, owner: User, product_jpeg: bytes, n: int) -> list[Job]:
    jobs = []
    for _ in range(n):
        job = services.job_submit(
            tenant=tenant,
            user=owner,
            model=PACKSHOT,
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
        Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
        jobs.append(job)
    return jobs


@pytest.mark.django_db(transaction=True)
def test_ten_runs_refused_at_the_same_moment_open_one_pause(
    tenant, owner, staff, product_jpeg, no_worker
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency runs on PostgreSQL (CI runs the suite there too)")
    # No dispatcher: the jobs are moved to running by hand, as ten claims would.
    jobs = _running_jobs(tenant, owner, product_jpeg, 10)
    key = services.SegmindKey(
        key=PLATFORM_KEY, key_id=services.segmind_key_id(PLATFORM_KEY), tenant_id=None
    )
    start = threading.Barrier(10)
    outcomes: list[bool] = []

    def refused(job: Job) -> None:
        start.wait()
        try:
            outcomes.append(services.provider_pause_open(job_id=job.pk, key=key))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=refused, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False] * 9 + [True]
    pause = ProviderPause.objects.get()
    assert pause.is_open and pause.occurrences == 10
    assert ProviderIncident.objects.filter(pause=pause).count() == 10
    statuses = list(Job.objects.values_list("status", flat=True))
    assert statuses == [JobStatus.WAITING_FOR_PROVIDER] * 10
    assert len([m for m in mail.outbox if "Segmind is out of credit" in m.subject]) == 1


def test_a_dispatcher_never_claims_a_waiting_job_but_the_sweeper_frees_one_left_unpaused(
    fake, tenant, owner, priced, product_jpeg, django_capture_on_commit_callbacks
):
    first, second, third = _pause_opened_by_a_406(
        fake, tenant, owner, product_jpeg, django_capture_on_commit_callbacks
    )
    # The pause closed without resuming them (as when a job was made waiting in the
    # same moment an operator cleared its pause).
    ProviderPause.objects.update(cleared_at=timezone.now())

    provider.segmind_dispatch(budget_seconds=1)

    second.refresh_from_db()
    assert second.status == JobStatus.WAITING_FOR_PROVIDER
    assert fake.stats()["submit_attempts"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.jobs_sweep()

    for job in (first, second, third):
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
