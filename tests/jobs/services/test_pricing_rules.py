"""The prices the new-job page and the API show: the platform fee on a workspace's own
key (`own_key_fee`) and the preview's quote for one job per photo (`job_preview_quote`)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Tenant
from jobs import catalog, services
from jobs.models import JobPrice

pytestmark = pytest.mark.django_db

SCENE = "segmind-scenecraft-v01"
PACKSHOT = "bria-product-packshot"


def _spec(slug: str) -> catalog.ModelSpec:
    spec = catalog.get_model(slug)
    assert spec is not None
    return spec


def _balance(tenant: Tenant, credits: int) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(credit_balance=credits)
    tenant.refresh_from_db()


def test_the_own_key_fee_is_the_setting_and_what_an_own_key_job_costs(settings: Any) -> None:
    settings.SEGMIND_OWN_KEY_FEE = 2
    assert services.own_key_fee() == 2
    price = services.job_price(model=PACKSHOT, engine="segmind", params={}, own_key=True)
    assert price == services.own_key_fee()


def test_the_preview_prices_one_job_per_photo_against_the_balance(tenant: Tenant) -> None:
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)
    _balance(tenant, 10)

    preview = services.job_preview_quote(
        tenant=tenant, spec=_spec(PACKSHOT), preset=None, overrides={}, count=3
    )
    assert (preview.price, preview.count, preview.total) == (3, 3, 9)
    assert (preview.balance, preview.enough_credits) == (10, True)

    preview = services.job_preview_quote(
        tenant=tenant, spec=_spec(PACKSHOT), preset=None, overrides={}, count=4
    )
    assert (preview.total, preview.enough_credits) == (12, False)


@pytest.mark.parametrize(("given", "counted"), [(0, 1), (10_000, 7)])
def test_the_preview_counts_between_one_photo_and_a_batchs_most(
    tenant: Tenant, settings: Any, given: int, counted: int
) -> None:
    settings.BATCH_MAX_ITEMS = 7
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)
    preview = services.job_preview_quote(
        tenant=tenant, spec=_spec(PACKSHOT), preset=None, overrides={}, count=given
    )
    assert (preview.count, preview.total) == (counted, 2 * counted)


def test_the_preview_says_a_drawn_seed_is_drawn_at_submission(tenant: Tenant) -> None:
    spec = _spec(SCENE)
    drawn = services.job_preview_quote(
        tenant=tenant, spec=spec, preset=None, overrides={"prompt": "a mug"}, count=1
    )
    given = services.job_preview_quote(
        tenant=tenant, spec=spec, preset=None, overrides={"prompt": "a mug", "seed": 42}, count=1
    )
    assert drawn.params["seed"] == services.SEED_DRAWN_LABEL
    assert given.params["seed"] == 42


def test_the_preview_refuses_bad_parameters_naming_the_field(tenant: Tenant) -> None:
    with pytest.raises(services.JobError) as raised:
        services.job_preview_quote(
            tenant=tenant,
            spec=_spec(PACKSHOT),
            preset=None,
            overrides={"background_color": "pink"},
            count=1,
        )
    assert set(raised.value.errors) == {"background_color"}
