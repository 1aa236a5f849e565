"""No free Segmind by accident: with the platform's Segmind key, a model no operator has
priced costs SEGMIND_DEFAULT_PRICE credits (held and shown like any price); a row of 0 makes
it free on purpose; the local engine and a workspace's own key are unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs import services
from jobs.models import JobPrice
from tests.test_settings import _python

pytestmark = pytest.mark.django_db

PACKSHOT = "bria-product-packshot"


@pytest.fixture
def platform_key(settings: Any) -> None:
    # No job is sent: these tests stop at the hold, before the dispatcher.
    settings.SEGMIND_API_KEY = "platform-key-for-pricing"
    settings.SEGMIND_DEFAULT_PRICE = 4


def _submit(tenant: Tenant, user: User, photo: bytes, capture: Any) -> Any:
    upload = SimpleUploadedFile("mug.jpg", photo, content_type="image/jpeg")
    with capture(execute=False):
        return services.job_submit(tenant=tenant, user=user, model=PACKSHOT, upload=upload)


@pytest.mark.usefixtures("platform_key")
def test_an_unpriced_segmind_model_holds_the_default_price(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> None:
    before = tenant.credit_balance
    job = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    tenant.refresh_from_db()
    assert job.price == 4
    assert (tenant.credit_balance, tenant.credit_held) == (before - 4, 4)


@pytest.mark.usefixtures("platform_key")
def test_a_price_row_of_zero_makes_a_segmind_model_free_on_purpose(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> None:
    JobPrice.objects.create(model=PACKSHOT, engine="segmind", credits=0)
    job = _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    assert job.price == 0


@pytest.mark.usefixtures("platform_key")
def test_a_workspace_that_cannot_pay_the_default_price_is_refused_and_nothing_is_made(
    tenant: Tenant, owner: User, product_jpeg: bytes, django_capture_on_commit_callbacks: Any
) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(credit_balance=3)
    with pytest.raises(services.JobError, match="needs 4 credits"):
        _submit(tenant, owner, product_jpeg, django_capture_on_commit_callbacks)
    assert not tenant.jobs.exists()


def test_a_local_job_with_no_price_row_stays_free(settings: Any) -> None:
    settings.SEGMIND_API_KEY = ""
    settings.SEGMIND_DEFAULT_PRICE = 4
    assert services.job_price(model=PACKSHOT, engine="local", params={}) == 0


@pytest.mark.usefixtures("platform_key")
def test_a_workspace_on_its_own_key_pays_the_platform_fee_not_the_default(settings: Any) -> None:
    settings.SEGMIND_OWN_KEY_FEE = 1
    assert services.job_price(model=PACKSHOT, engine="segmind", params={}, own_key=True) == 1


@pytest.mark.usefixtures("platform_key")
def test_the_api_catalog_and_the_new_job_page_show_the_default_price(
    tenant: Tenant, owner_client: Client
) -> None:
    key = account_services.api_key_create(tenant=tenant, name="t").secret
    models = Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/v1/models").json()["results"]
    price = next(m["price"] for m in models if m["slug"] == PACKSHOT)
    assert (price["credits"], price["default_price"]) == (4, 4)

    page = owner_client.get(reverse("job_new", args=[tenant.slug])).content.decode()
    assert '<span class="model-price">4 credits</span>' in page
    assert "Free" not in page


@pytest.mark.parametrize(("given", "error"), [("0", "at least 1"), ("none", "a whole number")])
def test_the_default_price_cannot_be_configured_to_nothing(given: str, error: str) -> None:
    result = _python("import productstudio.settings", SEGMIND_DEFAULT_PRICE=given, DEBUG="1")
    assert result.returncode != 0
    assert "SEGMIND_DEFAULT_PRICE" in result.stderr
    assert error in result.stderr


def test_the_default_price_is_above_zero_when_unset() -> None:
    result = _python(
        "import productstudio.settings as s; print(s.SEGMIND_DEFAULT_PRICE)", DEBUG="1"
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0
