"""Operators price models: only a model the catalog has, on an engine that runs it, so that
no price is saved that prices nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import User
from jobs.models import JobPrice
from tests.support.two_factor import staff_login

ADD = "admin:jobs_jobprice_add"


@pytest.fixture
def operator_client(db: None) -> Client:
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    return staff_login(Client(), operator)


def _form(**changes: str) -> dict[str, str]:
    return {
        "model": "bria-product-packshot",
        "engine": "segmind",
        "credits": "3",
        "credits_per_megapixel": "0",
        "reason": "launch prices",
        **changes,
    }


def test_the_price_form_offers_the_catalogs_models_by_title(operator_client):
    page = operator_client.get(reverse(ADD)).content.decode()
    assert '<select name="model"' in page
    assert '<option value="bria-product-packshot">Bria Product Packshot' in page
    assert '<option value="ai-product-photography">' in page


def test_a_price_for_a_model_the_catalog_does_not_have_is_refused_naming_the_field(
    operator_client,
):
    response = operator_client.post(reverse(ADD), _form(model="Bria packshot"))

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not JobPrice.objects.exists()


def test_a_price_on_an_engine_that_does_not_run_the_model_is_refused(operator_client):
    # The local engine cannot draw a product from text (the PixelFlow workflow).
    response = operator_client.post(
        reverse(ADD), _form(model="65c9c7f641c340d7ef2f7134-v1", engine="local")
    )

    assert "engine: the Local engine does not run" in response.content.decode()
    assert not JobPrice.objects.exists()


def test_a_catalog_model_is_saved(operator_client):
    response = operator_client.post(reverse(ADD), _form())

    assert response.status_code == 302
    price = JobPrice.objects.get()
    assert (price.model, price.engine, price.credits) == ("bria-product-packshot", "segmind", 3)


def test_the_model_refuses_an_unknown_name_whoever_saves_it(db):
    price = JobPrice(model="Bria packshot", engine="segmind", credits=3)

    with pytest.raises(ValidationError) as raised:
        price.full_clean()

    assert "the catalog has no model called “Bria packshot”" in str(raised.value.message_dict)
    assert "bria-product-packshot" in raised.value.message_dict["model"][0]


def test_an_old_price_under_an_unknown_name_is_flagged_and_cannot_be_saved_unchanged(
    operator_client,
):
    # Saved before the check existed: shown as it is, with a warning, not silently renamed.
    price = JobPrice.objects.create(model="Bria packshot", engine="segmind", credits=3)
    change = reverse("admin:jobs_jobprice_change", args=[price.pk])

    changelist = operator_client.get(reverse("admin:jobs_jobprice_changelist")).content.decode()
    assert "icon-alert.svg" in changelist and "Not in the catalog: prices nothing" in changelist
    page = operator_client.get(change).content.decode()
    assert '<option value="Bria packshot" selected>Bria packshot: not in the catalog' in page

    refused = operator_client.post(change, _form(model="Bria packshot", credits="4"))
    assert "the catalog has no model called" in refused.content.decode()
    price.refresh_from_db()
    assert price.credits == 3

    assert operator_client.post(change, _form(credits="4")).status_code == 302
    price.refresh_from_db()
    assert (price.model, price.credits) == ("bria-product-packshot", 4)
