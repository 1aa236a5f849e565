"""Rerunning a job over the API (`POST /api/v1/jobs/<id>/rerun`): the same model, photo,
preset and parameters, a drawn seed drawn again, its own credits."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.test import Client

from accounts import services as account_services
from accounts.models import CreditEntry, Tenant, User
from jobs import catalog
from jobs.models import Job, JobPrice, JobStatus, Preset
from tests.conftest import login_client
from tests.support.api_helpers import assert_problem, key_client

pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture
def seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawn seeds are 1001, 1002, ... in turn."""
    drawn = itertools.count(1001)
    monkeypatch.setattr(catalog.secrets, "randbelow", lambda _: next(drawn))


@pytest.fixture
def photo_url(http_server: Any, product_jpeg: bytes) -> str:
    return str(http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg"))


def _create(api: Client, **payload: Any) -> Job:
    response = api.post("/api/v1/jobs", payload, content_type="application/json")
    assert response.status_code == 201, response.content
    return Job.objects.get(pk=response.json()["id"])


def _rerun(api: Client, job: Job, body: dict[str, Any] | None = None) -> Any:
    return api.post(f"/api/v1/jobs/{job.pk}/rerun", body or {}, content_type="application/json")


def test_a_rerun_is_the_same_job_again_from_the_stored_photo(
    api: Client, tenant: Tenant, photo_url: str, http_server: Any, seeds: None
):
    preset = Preset.objects.create(
        tenant=tenant, model=SCENE, slug="sunny", name="Sunny", params={"prompt": "in the sun"}
    )
    job = _create(api, model=SCENE, image_url=photo_url, preset=preset.slug, params={"steps": 12})
    fetched = list(http_server.requests)

    response = _rerun(api, job)

    assert response.status_code == 201, response.content
    rerun = Job.objects.get(pk=response.json()["id"])
    assert rerun.pk != job.pk
    assert (rerun.model, rerun.preset, rerun.status) == (SCENE, preset, JobStatus.QUEUED)
    assert rerun.input_asset_id == job.input_asset_id
    assert http_server.requests == fetched  # the photo was not fetched again
    assert rerun.source_url == ""  # the stored photo goes, not the URL
    assert {k: v for k, v in rerun.params.items() if k != "seed"} == {
        k: v for k, v in job.params.items() if k not in ("seed", "image")
    }
    assert (job.params["seed"], rerun.params["seed"]) == (1001, 1002)
    assert rerun.seed_drawn
    assert response.json()["urls"]["self"] == f"http://testserver/api/v1/jobs/{rerun.pk}"
    # A rerun's assets list has its photo.
    assets = api.get(f"/api/v1/assets?job={rerun.pk}").json()["results"]
    assert [a["id"] for a in assets] == [str(job.input_asset_id)]


def test_a_given_seed_is_kept_and_params_override(api: Client, photo_url: str, seeds: None):
    job = _create(api, model=SCENE, image_url=photo_url, params={"prompt": "a mug", "seed": 42})

    same_seed = Job.objects.get(pk=_rerun(api, job, {"params": {"prompt": "a cup"}}).json()["id"])
    new_seed = Job.objects.get(pk=_rerun(api, job, {"params": {"seed": -1}}).json()["id"])
    given = Job.objects.get(pk=_rerun(api, job, {"params": {"seed": 7}}).json()["id"])

    assert (same_seed.params["seed"], same_seed.params["prompt"]) == (42, "a cup")
    assert not same_seed.seed_drawn
    assert (new_seed.params["seed"], new_seed.params["prompt"]) == (1001, "a mug")
    assert new_seed.seed_drawn
    assert given.params["seed"] == 7 and not given.seed_drawn


def test_a_rerun_of_a_rerun_draws_its_seed_again_too(api: Client, photo_url: str, seeds: None):
    job = _create(api, model=SCENE, image_url=photo_url, params={"prompt": "a mug"})
    rerun = Job.objects.get(pk=_rerun(api, job).json()["id"])

    again = Job.objects.get(pk=_rerun(api, rerun).json()["id"])

    assert [job.params["seed"], rerun.params["seed"], again.params["seed"]] == [1001, 1002, 1003]


def test_a_rerun_holds_its_own_credits(api: Client, tenant: Tenant, photo_url: str):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=7, user=None, memo="test")
    job = _create(api, model=PACKSHOT, image_url=photo_url)

    rerun = Job.objects.get(pk=_rerun(api, job).json()["id"])

    assert rerun.price == 3
    assert CreditEntry.objects.filter(job=rerun, kind="hold", amount=-3).exists()
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (1, 6)


def test_a_rerun_the_workspace_cannot_pay_for_is_refused_with_where_to_buy(
    api: Client, tenant: Tenant, photo_url: str
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    account_services.credits_grant(tenant=tenant, amount=4, user=None, memo="test")
    job = _create(api, model=PACKSHOT, image_url=photo_url)

    body = assert_problem(_rerun(api, job), 402, "insufficient_credits")

    assert body["buy_url"] == f"http://testserver/w/{tenant.slug}/credits/"
    assert Job.objects.count() == 1
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (1, 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": {"colour": "red"}}, "colour"),
        ({"params": {"background_color": "reddish"}}, "background_color"),
        ({"params": {"image_url": "https://shop.test/other.jpg"}}, "image_url"),
        ({"params": [1]}, "params"),
        ({"model": SCENE}, "model"),
    ],
)
def test_a_bad_rerun_is_refused_naming_the_field_and_nothing_is_made(
    api: Client, photo_url: str, body: dict[str, Any], field: str
):
    job = _create(api, model=PACKSHOT, image_url=photo_url)

    refused = assert_problem(_rerun(api, job, body), 400, "validation_error")

    assert field in refused["errors"], refused
    assert Job.objects.count() == 1


def test_a_job_whose_photo_is_gone_cannot_be_rerun(api: Client, photo_url: str):
    job = _create(api, model=PACKSHOT, image_url=photo_url)
    Job.objects.filter(pk=job.pk).update(input_asset=None)

    assert_problem(_rerun(api, job), 409, "not_rerunnable")


def test_a_member_signed_in_reruns_as_themselves(
    member: User, tenant: Tenant, api: Client, photo_url: str
):
    job = _create(api, model=PACKSHOT, image_url=photo_url)
    client = login_client(member)
    client.get(f"/w/{tenant.slug}/")

    response = _rerun(client, job)

    assert response.status_code == 201, response.content
    assert Job.objects.get(pk=response.json()["id"]).created_by == member


def test_another_workspaces_key_gets_404(api: Client, outsider: User, photo_url: str):
    job = _create(api, model=PACKSHOT, image_url=photo_url)
    other = key_client(Tenant.objects.get(memberships__user=outsider))

    assert_problem(_rerun(other, job), 404, "not_found")
    assert Job.objects.count() == 1


def test_a_rerun_runs_from_the_stored_photo(
    api: Client, photo_url: str, http_server: Any, django_capture_on_commit_callbacks
):
    job = _create(api, model=PACKSHOT, image_url=photo_url)
    http_server.routes.clear()  # the photo is gone from the shop's site

    with django_capture_on_commit_callbacks(execute=True):
        response = _rerun(api, job)

    rerun = api.get(response.json()["urls"]["self"]).json()
    assert rerun["status"] == "succeeded", rerun
    assert len(rerun["outputs"]) == 1
