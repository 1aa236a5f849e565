"""Operators: every model is in the admin, listed, searchable and filterable."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import ApiKey, CreditEntry, Invitation, Membership, Tenant, User
from jobs import services
from jobs.models import Asset, Job, JobPrice, Preset

MODELS = [
    User,
    Tenant,
    Membership,
    Invitation,
    ApiKey,
    CreditEntry,
    Job,
    JobPrice,
    Asset,
    Preset,
]


@pytest.fixture
def operator_client(db) -> Client:
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def a_job(tenant, owner, product_jpeg, django_capture_on_commit_callbacks) -> Job:
    with django_capture_on_commit_callbacks(execute=True):
        return services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_is_registered_with_a_useful_changelist(model):
    model_admin = admin.site._registry[model]
    assert len(model_admin.list_display) >= 3
    assert model_admin.search_fields


@pytest.mark.parametrize(
    "model", [Membership, Invitation, ApiKey, CreditEntry, Job, Asset], ids=lambda m: m.__name__
)
def test_tenant_data_can_be_filtered_by_tenant(model):
    assert "tenant" in admin.site._registry[model].list_filter


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_loads(model, operator_client, a_job):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert operator_client.get(changelist).status_code == 200
    assert operator_client.get(changelist, {"q": "mug"}).status_code == 200
    obj = model.objects.first()
    if obj is not None:
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert operator_client.get(change).status_code == 200


def test_jobs_are_filtered_by_status(operator_client, a_job):
    url = reverse("admin:jobs_job_changelist")
    assert (
        str(a_job.id) in operator_client.get(url, {"status__exact": "succeeded"}).content.decode()
    )
    assert (
        str(a_job.id) not in operator_client.get(url, {"status__exact": "failed"}).content.decode()
    )


def test_an_operator_sees_an_assets_preview(operator_client, a_job):
    asset = a_job.assets.first()
    response = operator_client.get(reverse("staff_asset_file", args=[asset.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/")


def test_a_shop_user_cannot_open_the_operators_asset_view(owner_client, a_job):
    response = owner_client.get(reverse("staff_asset_file", args=[a_job.assets.first().pk]))
    assert response.status_code == 302


def test_an_operator_cannot_save_a_preset_with_an_invalid_parameter(operator_client):
    url = reverse("admin:jobs_preset_add")
    response = operator_client.post(
        url,
        {
            "model": "bria-product-packshot",
            "slug": "bad",
            "name": "Bad",
            "params": '{"background_color": "pink"}',
        },
    )
    assert response.status_code == 200
    assert "background_color: must be" in response.content.decode()
    assert not Preset.objects.filter(slug="bad").exists()


def test_the_ledger_is_read_only_in_the_admin(operator_client, tenant, owner):
    entry = account_services.credits_grant(tenant=tenant, amount=5, user=owner, memo="welcome")
    change = reverse("admin:accounts_creditentry_change", args=[entry.pk])
    page = operator_client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert operator_client.post(change, {"amount": 500}).status_code == 403
    delete = reverse("admin:accounts_creditentry_delete", args=[entry.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    add = reverse("admin:accounts_creditentry_add")
    assert operator_client.get(add).status_code == 403
    entry.refresh_from_db()
    assert entry.amount == 5
