"""Operators: every model is in the admin, listed, searchable and filterable."""

from __future__ import annotations

import time

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import (
    ApiKey,
    CheckoutSession,
    CreditEntry,
    CreditKind,
    CreditPack,
    Invitation,
    Membership,
    StripeEvent,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from jobs import services
from jobs.models import Asset, Batch, Job, JobPrice, JobStatus, Preset, SegmindKeyBudget
from tests.support.two_factor import staff_login

MODELS = [
    User,
    Tenant,
    Membership,
    Invitation,
    ApiKey,
    CreditEntry,
    CreditPack,
    CheckoutSession,
    StripeEvent,
    WebhookEndpoint,
    WebhookDelivery,
    Job,
    JobPrice,
    Asset,
    Preset,
    Batch,
    SegmindKeyBudget,
]


@pytest.fixture
def operator_client(db) -> Client:
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    return staff_login(Client(), operator)


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
    "model",
    [
        Membership,
        Invitation,
        ApiKey,
        CreditEntry,
        CheckoutSession,
        WebhookEndpoint,
        WebhookDelivery,
        Job,
        Asset,
        Batch,
    ],
    ids=lambda m: m.__name__,
)
def test_tenant_data_can_be_filtered_by_tenant(model):
    assert "tenant" in admin.site._registry[model].list_filter


@pytest.fixture
def a_sale(tenant, owner) -> CheckoutSession:
    pack = CreditPack.objects.create(name="Starter mug pack", credits=100, price_cents=1200)
    StripeEvent.objects.create(event_id="evt_test_mug", type="checkout.session.completed")
    return CheckoutSession.objects.create(
        session_id="cs_test_mug",
        tenant=tenant,
        pack=pack,
        credits=100,
        price_cents=1200,
        currency="usd",
        created_by=owner,
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_loads(model, operator_client, a_job, a_sale):
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


# -- credits: operators' grants and adjustments -------------------------------------------


def _grant_url(tenant: Tenant) -> str:
    return reverse("admin:accounts_tenant_credits_grant", args=[tenant.pk])


def _adjust_url(tenant: Tenant) -> str:
    return reverse("admin:accounts_tenant_credits_adjust", args=[tenant.pk])


def _balance(tenant: Tenant) -> int:
    tenant.refresh_from_db()
    return tenant.credit_balance


def test_the_tenant_page_offers_grant_and_adjust_and_an_editable_threshold(operator_client, tenant):
    page = operator_client.get(reverse("admin:accounts_tenant_change", args=[tenant.pk]))
    content = page.content.decode()
    assert _grant_url(tenant) in content and _adjust_url(tenant) in content
    assert 'name="low_balance_threshold"' in content
    # The totals are the ledger's: never typed in.
    assert 'name="credit_balance"' not in content


def test_an_operator_grants_credits_with_a_memo(operator_client, tenant):
    before = _balance(tenant)
    response = operator_client.post(
        _grant_url(tenant), {"amount": "40", "memo": "Invoice 2026-031 paid by bank transfer"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_tenant_change", args=[tenant.pk])
    entry = CreditEntry.objects.for_tenant(tenant).first()
    assert entry is not None
    assert (entry.kind, entry.amount, entry.memo) == (
        CreditKind.GRANT,
        40,
        "Invoice 2026-031 paid by bank transfer",
    )
    assert entry.created_by == User.objects.get(email="ops@studio.test")
    assert _balance(tenant) == before + 40
    page = operator_client.get(response["Location"]).content.decode()
    assert f"now has {before + 40} credits" in page


@pytest.mark.parametrize("url", [_grant_url, _adjust_url], ids=["grant", "adjust"])
def test_a_memo_is_required(operator_client, tenant, url):
    entries = CreditEntry.objects.count()
    response = operator_client.post(url(tenant), {"amount": "5", "memo": "   "})
    assert response.status_code == 200
    assert "memo: say why" in response.content.decode()
    assert 'value="5"' in response.content.decode()  # what was typed is kept
    assert CreditEntry.objects.count() == entries


def test_an_adjustment_down_is_written_with_who_and_why(operator_client, tenant):
    before = _balance(tenant)
    response = operator_client.post(_adjust_url(tenant), {"amount": "-3", "memo": "double grant"})
    assert response.status_code == 302
    entry = CreditEntry.objects.for_tenant(tenant).first()
    assert entry is not None
    assert (entry.kind, entry.amount, entry.memo) == (CreditKind.ADJUSTMENT, -3, "double grant")
    assert entry.created_by == User.objects.get(email="ops@studio.test")
    assert _balance(tenant) == before - 3


def test_an_adjustment_below_zero_is_refused_with_a_message_and_nothing_written(
    operator_client, tenant
):
    before = _balance(tenant)
    entries = CreditEntry.objects.count()
    response = operator_client.post(
        _adjust_url(tenant), {"amount": str(-before - 1), "memo": "clawback"}
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert f"would make the balance -1; the workspace has {before} credits" in content
    assert "nothing was written" in content
    assert CreditEntry.objects.count() == entries
    assert _balance(tenant) == before


@pytest.mark.parametrize(
    ("url", "amount", "message"),
    [
        (_grant_url, "0", "greater than or equal to 1"),
        (_grant_url, "-5", "greater than or equal to 1"),
        (_adjust_url, "0", "amount: an adjustment cannot be zero"),
        (_adjust_url, "ten", "Enter a whole number"),
    ],
)
def test_a_bad_amount_is_refused_naming_the_field(operator_client, tenant, url, amount, message):
    entries = CreditEntry.objects.count()
    response = operator_client.post(url(tenant), {"amount": amount, "memo": "why"})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert CreditEntry.objects.count() == entries


def test_a_shop_user_cannot_grant_credits(owner_client, tenant):
    entries = CreditEntry.objects.count()
    response = owner_client.post(_grant_url(tenant), {"amount": "1000", "memo": "free money"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert CreditEntry.objects.count() == entries


def test_packs_show_their_price_as_money_and_are_put_on_sale_from_the_list(operator_client):
    pack = CreditPack.objects.create(name="Starter", credits=100, price_cents=1200, active=False)
    url = reverse("admin:accounts_creditpack_changelist")
    assert "$12.00" in operator_client.get(url).content.decode()
    response = operator_client.post(
        url,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(pack.pk),
            "form-0-active": "on",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    pack.refresh_from_db()
    assert pack.active


def test_an_operator_cannot_sell_a_pack_for_nothing(operator_client):
    response = operator_client.post(
        reverse("admin:accounts_creditpack_add"),
        {"name": "Free", "credits": "10", "price_cents": "0", "currency": "usd", "active": "on"},
    )
    assert response.status_code == 200
    assert "price_cents: a pack needs a price above zero" in response.content.decode()
    assert not CreditPack.objects.exists()


@pytest.mark.parametrize("model", [CheckoutSession, StripeEvent], ids=lambda m: m.__name__)
def test_stripes_records_are_read_only_in_the_admin(operator_client, a_sale, model):
    obj = model.objects.get()
    opts = model._meta
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    page = operator_client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert operator_client.post(change, {}).status_code == 403
    add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    assert operator_client.get(add).status_code == 403
    delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_a_sold_pack_cannot_be_deleted_only_taken_off_sale(operator_client, a_sale):
    delete = reverse("admin:accounts_creditpack_delete", args=[a_sale.pack.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert CreditPack.objects.filter(pk=a_sale.pack.pk).exists()


@pytest.mark.parametrize("object_id", ["999999", "not-a-number"])
def test_granting_to_a_workspace_that_does_not_exist_is_a_404(operator_client, object_id):
    url = reverse("admin:accounts_tenant_credits_grant", args=[object_id])
    assert operator_client.post(url, {"amount": "5", "memo": "x"}).status_code == 404
    assert not CreditEntry.objects.exists()


def test_the_workspace_admin_shows_only_the_last_four_of_its_own_segmind_key(
    operator_client: Client, tenant: Tenant
) -> None:
    from accounts.services.fernet import _fernet

    secret = "sg_the_shops_own_secret_key_4321"
    Tenant.objects.filter(pk=tenant.pk).update(
        segmind_key_encrypted=_fernet().encrypt(secret.encode()).decode(),
        segmind_key_last4="4321",
    )

    page = operator_client.get(f"/admin/accounts/tenant/{tenant.pk}/change/").content.decode()

    assert "ending 4321" in page
    assert secret not in page
    assert 'name="segmind_key_encrypted"' not in page
    assert 'name="segmind_key_last4"' not in page


def test_an_operator_refunds_a_charged_job_from_its_admin_page_with_a_memo(
    operator_client: Client, tenant: Tenant, owner: User, product_jpeg: bytes
) -> None:
    JobPrice.objects.create(model="bria-product-packshot", engine="local", credits=3)
    tenant.refresh_from_db()
    before = tenant.credit_balance
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )
    services.job_run(job_id=job.pk)
    change = operator_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    refund_url = f"/admin/jobs/job/{job.pk}/refund/"
    assert "3 credits charged" in change
    assert refund_url in change

    refused = operator_client.post(refund_url, {"memo": ""})
    assert "memo: say why the job is refunded." in refused.content.decode()
    tenant.refresh_from_db()
    assert tenant.credit_balance == before - 3

    operator_client.post(refund_url, {"memo": "the shop could not use it"})

    tenant.refresh_from_db()
    assert tenant.credit_balance == before
    entry = CreditEntry.objects.get(kind=CreditKind.REFUND)
    assert entry.created_by is not None
    assert (entry.job_id, entry.created_by.email, entry.memo) == (
        job.pk,
        "ops@studio.test",
        "the shop could not use it",
    )
    page = operator_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert "refunded" in page
    assert refund_url not in page
    shop = Client()
    shop.force_login(owner)
    job_page = shop.get(f"/w/{tenant.slug}/jobs/{job.pk}/").content.decode()
    assert "3 credits charged, then refunded" in job_page


def test_a_jobs_price_and_key_are_read_only_in_the_admin(operator_client: Client, a_job: Job):
    page = operator_client.get(f"/admin/jobs/job/{a_job.pk}/change/").content.decode()
    for field in ("price", "own_key", "waiting_since"):
        assert f'name="{field}"' not in page


def test_a_batch_page_shows_its_progress(operator_client, tenant):
    batch = Batch.objects.create(tenant=tenant, name="Summer mugs")
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED):
        Job.objects.create(tenant=tenant, model="bria-product-packshot", status=status, batch=batch)

    page = operator_client.get(reverse("admin:jobs_batch_change", args=[batch.pk]))

    assert page.status_code == 200
    assert "2 of 3 done (66 %): 1 succeeded, 1 failed, 0 canceled" in page.content.decode()


def test_operators_see_each_segmind_keys_budget_use_429s_and_waiting_jobs(
    operator_client, owner_client, tenant, a_job, settings
):
    from jobs.engines.segmind.ratelimit import KeyGate, Rate

    settings.SEGMIND_API_KEY = "platform-key-0001"
    now = time.time()
    gate = KeyGate(Rate(50, 60))
    for offset in (30, 20, 10):
        gate.take(now - offset)
    gate.on_429(now - 5, 600)
    SegmindKeyBudget.objects.create(
        key_id=services.segmind_key_id("platform-key-0001"),
        limit=50,
        window_seconds=60,
        adaptive_limit=40,
        state=gate.to_state(),
    )
    Job.objects.filter(pk=a_job.pk).update(engine="segmind", status="queued", own_key=False)
    url = reverse("admin:jobs_segmindkeybudget_changelist")

    page = operator_client.get(url).content.decode()

    assert "the platform&#x27;s key" in page or "the platform's key" in page
    assert "50 per 60 s" in page
    assert '<td class="field-used_in_window">3</td>' in page
    assert '<td class="field-throttled_last_hour">1</td>' in page
    assert '<td class="field-jobs_waiting">1</td>' in page
    assert "closed until" in page
    assert owner_client.get(url).status_code == 302


def test_a_replaced_segmind_keys_budget_shows_no_jobs_waiting_for_it(
    operator_client, tenant, owner, a_job, monkeypatch
):
    monkeypatch.setattr("accounts.services.segmind_key._verifier", lambda key: False)
    account_services.segmind_key_set(tenant=tenant, by=owner, key="own-key-of-the-shop-0001")
    old_id = services.segmind_key_id("own-key-of-the-shop-0001")
    account_services.segmind_key_set(tenant=tenant, by=owner, key="own-key-of-the-shop-0002")
    new_id = services.segmind_key_id("own-key-of-the-shop-0002")
    for key_id in (old_id, new_id):
        SegmindKeyBudget.objects.create(key_id=key_id, tenant=tenant, limit=5, window_seconds=60)
    Job.objects.filter(pk=a_job.pk).update(engine="segmind", status="queued", own_key=True)

    page = operator_client.get(reverse("admin:jobs_segmindkeybudget_changelist")).content.decode()

    # The shop's queued job waits for its current key only: counted once.
    assert page.count('<td class="field-jobs_waiting">1</td>') == 1
    assert '<td class="field-jobs_waiting">none (key replaced)</td>' in page
