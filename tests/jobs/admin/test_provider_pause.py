"""Operators and Segmind's 406: a banner on every admin page while a key is paused, the
pauses with their "Clear pause and resume", and the incidents, read-only."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import Tenant, User
from jobs import services
from jobs.models import Job, JobStatus, ProviderIncident, ProviderPause
from tests.support.two_factor import staff_login

KEY = "platform-key-0001"


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser(email="ops@studio.test", password="x")


@pytest.fixture
def operator_client(operator: User) -> Client:
    return staff_login(Client(), operator)


def _running_job(tenant: Tenant, owner: User, product_jpeg: bytes) -> Job:
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )
    # As the dispatcher's claim leaves it, just before Segmind answers 406.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
    return job


@pytest.fixture
def pause(tenant: Tenant, owner: User, product_jpeg: bytes) -> ProviderPause:
    """The platform key refused twice: both jobs wait."""
    key = services.SegmindKey(key=KEY, key_id=services.segmind_key_id(KEY), tenant_id=None)
    for _ in range(2):
        job = _running_job(tenant, owner, product_jpeg)
        services.provider_pause_open(job_id=job.pk, key=key, provider_message="Insufficient")
    return ProviderPause.objects.get()


@pytest.mark.parametrize("model", [ProviderPause, ProviderIncident], ids=lambda m: m.__name__)
def test_pauses_and_incidents_have_useful_read_only_changelists(model, operator_client, pause):
    model_admin = admin.site._registry[model]
    assert len(model_admin.list_display) >= 3 and model_admin.search_fields
    assert "tenant" in model_admin.list_filter
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert operator_client.get(changelist, {"q": "mug"}).status_code == 200
    obj = model.objects.first()
    assert obj is not None
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    page = operator_client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert (
        operator_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code
        == 403
    )


def test_every_admin_page_shows_the_banner_while_a_pause_is_open(operator_client, pause):
    for url in (reverse("admin:index"), reverse("admin:jobs_job_changelist")):
        page = operator_client.get(url).content.decode()
        assert "Segmind is out of credit on the platform&#x27;s key" in page
        assert reverse("admin:jobs_providerpause_change", args=[pause.pk]) in page

    services.provider_pause_clear(pause_id=pause.pk, by=None, reason="topped up")

    assert (
        "Segmind is out of credit"
        not in operator_client.get(reverse("admin:index")).content.decode()
    )


def test_the_banner_is_not_shown_on_the_admin_login_page(client, pause):
    assert "Segmind is out of credit" not in client.get(reverse("admin:login")).content.decode()


def test_clear_pause_and_resume_from_the_list_sends_the_waiting_jobs_back(
    operator_client, operator, pause
):
    assert Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER).count() == 2
    action = {"action": "clear_and_resume", "_selected_action": [pause.pk]}
    changelist = reverse("admin:jobs_providerpause_changelist")
    confirm = operator_client.post(changelist, action)
    assert 'name="reason"' in confirm.content.decode()
    assert Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER).count() == 2

    response = operator_client.post(
        changelist, {**action, "post": "yes", "reason": "topped up"}, follow=True
    )

    assert "1 pause(s) cleared; 2 waiting job(s) resumed." in response.content.decode()
    pause.refresh_from_db()
    assert not pause.is_open
    assert pause.cleared_by == operator
    assert Job.objects.filter(status=JobStatus.QUEUED).count() == 2


def test_clear_pause_and_resume_from_the_pause_asks_for_a_reason_and_keeps_it(
    operator_client, operator, pause
):
    page = operator_client.get(reverse("admin:jobs_providerpause_change", args=[pause.pk]))
    clear = reverse("admin:jobs_providerpause_clear", args=[pause.pk])
    assert clear in page.content.decode()
    form = operator_client.get(clear)
    assert "2 jobs waiting" in form.content.decode()

    operator_client.post(clear, {"reason": "topped up $50 on Segmind"})

    pause.refresh_from_db()
    assert (pause.cleared_by, pause.cleared_reason) == (operator, "topped up $50 on Segmind")
    assert not Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER).exists()


def test_an_operator_without_the_right_to_change_pauses_cannot_clear_one(db, pause):
    viewer = User.objects.create_user(email="viewer@studio.test", password="x", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_providerpause"))
    client = staff_login(Client(), viewer)

    response = client.post(reverse("admin:jobs_providerpause_clear", args=[pause.pk]))

    assert response.status_code == 403
    pause.refresh_from_db()
    assert pause.is_open


def test_incidents_are_listed_and_filtered_by_whose_key_and_workspace(
    operator_client, pause, tenant, outsider
):
    url = reverse("admin:jobs_providerincident_changelist")
    other = Tenant.objects.get(memberships__user=outsider)

    def shown(**filters: object) -> int:
        page = operator_client.get(url, filters)
        return len(page.context["cl"].result_list)

    assert shown() == 2
    assert shown(own_key__exact="0") == 2
    assert shown(own_key__exact="1") == 0
    assert shown(tenant__id__exact=tenant.pk) == 2
    assert shown(tenant__id__exact=other.pk) == 0


def test_an_open_pause_is_flagged_with_a_warning_in_the_list_not_a_green_check(
    operator_client, pause
):
    changelist = reverse("admin:jobs_providerpause_changelist")

    page = operator_client.get(changelist).content.decode()

    assert "icon-alert.svg" in page and "Open: jobs wait" in page
    assert "icon-yes.svg" not in page

    services.provider_pause_clear(pause_id=pause.pk, by=None, reason="topped up")
    page = operator_client.get(changelist).content.decode()
    assert "icon-alert.svg" not in page and "Cleared" in page
