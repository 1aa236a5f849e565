"""A job's price is shown before it is submitted: on the new-job page, in its live
preview, and over the API; a job the workspace cannot pay for is refused with a way to
buy more, and nothing is created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts import services as account_services
from accounts.models import Tenant
from jobs import services, tasks
from jobs.models import Asset, Job, JobPrice
from tests.support.fake_segmind import FakeSegmind

# Every credit below is the test's own: the ledgers start empty.
pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"
OWN_KEY = "sg_own_key_of_the_shop_9876"


@pytest.fixture
def prices(db) -> None:
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    JobPrice.objects.create(model=SCENE, engine="local", credits=2, credits_per_megapixel=4)


@pytest.fixture
def api(tenant: Tenant) -> Client:
    key = account_services.api_key_create(tenant=tenant, name="t").secret
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def own_key(settings: Any, tenant: Tenant, owner: Any) -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=0.1, api_key=OWN_KEY) as server:
        settings.SEGMIND_API_BASE = server.base_url
        account_services.segmind_key_set(tenant=tenant, by=owner, key=OWN_KEY)
        yield server


def _grant(tenant: Tenant, amount: int) -> None:
    account_services.credits_grant(tenant=tenant, amount=amount, user=None, memo="test")


def test_each_model_card_shows_its_price(owner_client: Client, tenant: Tenant, prices: None):
    page = owner_client.get(f"/w/{tenant.slug}/jobs/new/").content.decode()

    assert "3 credits" in page
    assert "2 credits + 4 per megapixel" in page
    assert "Free" in page  # the models without a price


def test_the_preview_gives_the_price_and_the_balance(
    owner_client: Client, tenant: Tenant, prices: None
):
    _grant(tenant, 10)

    data = owner_client.post(
        f"/w/{tenant.slug}/jobs/preview/",
        {"model": SCENE, f"param-{SCENE}-megapixel": "1.5", f"param-{SCENE}-prompt": "a mug"},
    ).json()

    assert data["price"] == 2 + 4 * 2
    assert data["balance"] == 10
    assert data["enough_credits"] is True


def test_the_preview_says_when_the_balance_is_short_and_where_to_buy(
    owner_client: Client, tenant: Tenant, prices: None
):
    _grant(tenant, 2)

    data = owner_client.post(f"/w/{tenant.slug}/jobs/preview/", {"model": PACKSHOT}).json()

    assert data["price"] == 3
    assert data["enough_credits"] is False
    assert data["buy_url"] == f"/w/{tenant.slug}/credits/"


def test_a_job_the_workspace_cannot_pay_for_is_refused_with_a_link_to_buy_more(
    owner_client: Client, tenant: Tenant, prices: None, product_jpeg: bytes
):
    _grant(tenant, 2)
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")

    response = owner_client.post(
        f"/w/{tenant.slug}/jobs/new/", {"model": PACKSHOT, "image": upload}
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "This needs 3 credits and the workspace has 2." in page
    assert f'href="/w/{tenant.slug}/credits/#buy"' in page
    assert "Buy more credits" in page
    assert not Job.objects.exists()
    assert not Asset.objects.exists()
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (2, 0)


def test_the_job_page_says_what_the_job_costs(
    owner_client: Client, tenant: Tenant, owner: Any, prices: None, product_jpeg: bytes
):
    _grant(tenant, 5)
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    job = services.job_submit(tenant=tenant, user=owner, model=PACKSHOT, upload=upload)
    job_page = f"/w/{tenant.slug}/jobs/{job.id}/"

    assert "3 credits reserved until it finishes" in owner_client.get(job_page).content.decode()
    tasks.job_run(str(job.id))
    assert "3 credits charged" in owner_client.get(job_page).content.decode()


def test_the_api_catalog_gives_each_models_price(api: Client, prices: None):
    models = {m["slug"]: m for m in api.get("/api/v1/models").json()["results"]}

    assert models[PACKSHOT]["price"] == {
        "credits": 3,
        "credits_per_megapixel": 0,
        "own_key": False,
        "default_price": 3,
    }
    scene = models[SCENE]["price"]
    assert (scene["credits"], scene["credits_per_megapixel"]) == (2, 4)
    assert scene["default_price"] == 2 + 4 * 1  # the default megapixel is 1.0
    assert models["segmind-scenecraft-v01"]["price"]["credits"] == 0


def test_the_api_resolve_gives_the_price_and_whether_the_balance_covers_it(
    api: Client, tenant: Tenant, prices: None
):
    _grant(tenant, 5)

    data = api.post(
        f"/api/v1/models/{SCENE}/resolve",
        {"megapixel": "2.5", "prompt": "a mug on a table"},
        content_type="application/json",
    ).json()

    assert data["price"] == 2 + 4 * 3
    assert data["balance"] == 5
    assert data["enough_credits"] is False


def test_the_api_shows_a_jobs_price(
    api: Client, tenant: Tenant, owner: Any, prices: None, product_jpeg: bytes
):
    _grant(tenant, 5)
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    job = services.job_submit(tenant=tenant, user=owner, model=PACKSHOT, upload=upload)

    assert api.get(f"/api/v1/jobs/{job.id}").json()["price"] == 3


def test_with_its_own_key_a_workspace_runs_on_segmind_and_pays_only_the_platform_fee(
    own_key: FakeSegmind, tenant: Tenant, api: Client, prices: None, settings: Any
):
    settings.SEGMIND_API_KEY = ""
    settings.SEGMIND_OWN_KEY_FEE = 1
    JobPrice.objects.create(model=PACKSHOT, engine="segmind", credits=7)
    tenant.refresh_from_db()

    engine, own = services.job_engine(tenant=tenant)
    models = {m["slug"]: m for m in api.get("/api/v1/models").json()["results"]}

    assert (engine, own) == ("segmind", True)
    assert models[PACKSHOT]["engine"] == "segmind"
    assert models[PACKSHOT]["price"]["credits"] == 1
    assert models[PACKSHOT]["price"]["own_key"] is True
    # PixelFlow needs Segmind; the workspace's key brings it.
    assert models["65c9c7f641c340d7ef2f7134-v1"]["available"] is True


def test_the_new_job_page_says_jobs_run_on_the_workspaces_own_key(
    own_key: FakeSegmind, owner_client: Client, tenant: Tenant
):
    page = owner_client.get(f"/w/{tenant.slug}/jobs/new/").content.decode()

    assert "your workspace's own key" in page
    assert "Free on your key" in page
