"""The admin warns operators, on every page, while a Segmind model runs at the default
price because nobody priced it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from jobs import catalog
from jobs.models import JobPrice
from tests.support.two_factor import staff_login

BANNER = "unpriced-models"


@pytest.fixture
def operator_client(db: None) -> Client:
    operator = User.objects.create_superuser(email="ops@studio.test", password="x")
    return staff_login(Client(), operator)


def _segmind_models() -> list[catalog.ModelSpec]:
    return [m for m in catalog.all_models() if m.runs_on("segmind")]


def test_every_admin_page_names_the_unpriced_segmind_models_and_the_default(
    operator_client: Client, settings: Any
) -> None:
    settings.SEGMIND_API_KEY = "platform-key"
    settings.SEGMIND_DEFAULT_PRICE = 6
    JobPrice.objects.create(model="bria-product-packshot", engine="segmind", credits=2)
    for url in (reverse("admin:index"), reverse("admin:jobs_job_changelist")):
        page = operator_client.get(url).content.decode()
        assert BANNER in page
        unpriced = [m for m in _segmind_models() if m.slug != "bria-product-packshot"]
        assert f"No price is set for {len(unpriced)} Segmind models" in page
        assert all(m.title in page for m in unpriced)
        assert "Bria Product Packshot" not in page.split(BANNER, 1)[1].split("</ul>", 1)[0]
        assert "the default price of 6 credits" in page
        assert reverse("admin:jobs_jobprice_add") in page


def test_no_warning_once_every_segmind_model_is_priced_even_at_zero(
    operator_client: Client, settings: Any
) -> None:
    settings.SEGMIND_API_KEY = "platform-key"
    for m in _segmind_models():
        JobPrice.objects.create(model=m.slug, engine="segmind", credits=0)
    assert BANNER not in operator_client.get(reverse("admin:index")).content.decode()


def test_no_warning_without_a_segmind_key(operator_client: Client, settings: Any) -> None:
    settings.SEGMIND_API_KEY = ""
    assert BANNER not in operator_client.get(reverse("admin:index")).content.decode()
