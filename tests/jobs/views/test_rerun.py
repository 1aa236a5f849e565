"""The portal's "run again" button: same photo, parameters and given seed."""

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import Tenant
from jobs import services
from jobs.models import Job

pytestmark = pytest.mark.django_db


def _job(tenant: Tenant, owner: Any, product_jpeg: bytes) -> Job:
    return services.job_submit(
        tenant=tenant,
        user=owner,
        model="segmind-scenecraft-v01",
        image_url="",
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        preset=None,
        params={"prompt": "a mug on oak", "seed": 4242},
    )


def test_it_reruns_a_job_with_the_same_photo_and_seed(
    owner_client: Client, tenant: Tenant, owner: Any, product_jpeg: bytes
) -> None:
    job = _job(tenant, owner, product_jpeg)
    response = owner_client.post(reverse("job_rerun", args=[tenant.slug, job.id]))
    rerun = Job.objects.for_tenant(tenant).exclude(pk=job.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job_detail", args=[tenant.slug, rerun.id])
    assert rerun.input_asset_id == job.input_asset_id
    assert rerun.params["seed"] == 4242


def test_an_outsider_cannot_rerun_another_workspaces_job(
    client: Client, tenant: Tenant, owner: Any, outsider: Any, product_jpeg: bytes
) -> None:
    job = _job(tenant, owner, product_jpeg)
    client.force_login(outsider)
    response = client.post(reverse("job_rerun", args=[tenant.slug, job.id]))
    assert response.status_code == 404
    assert Job.objects.count() == 1
