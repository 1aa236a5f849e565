"""The job page lists a job's parameters in a shop owner's words, with the API name beside
each, and switches as On or Off rather than Python's True and False."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Tenant
from jobs import services


def test_the_job_page_names_each_parameter_in_words_beside_its_api_name(
    owner_client: Client, tenant: Tenant, owner: Any, product_jpeg: bytes
) -> None:
    upload = SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg")
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=upload,
        params={"background_color": "#F4F4F4", "force_rmbg": True},
    )

    page = owner_client.get(f"/w/{tenant.slug}/jobs/{job.id}/").content.decode()

    assert "Background colour <small><code>background_color</code></small>" in page
    assert "Always remove the background <small><code>force_rmbg</code></small>" in page
    assert "<dd>On</dd>" in page
    assert "<dd>True</dd>" not in page
    assert "<dt>force_rmbg</dt>" not in page
