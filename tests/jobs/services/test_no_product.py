"""A photo with no product in it fails plainly and costs nothing."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import services as account_services
from jobs import services, tasks
from jobs.models import AssetKind, JobPrice, JobStatus
from jobs.quality_photos import skimage_photo

pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"


def test_a_photo_of_a_lawn_fails_saying_no_product_was_found_and_gives_the_credits_back(
    tenant, owner
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)
    account_services.credits_grant(tenant=tenant, amount=5, user=owner, memo="")
    photo = io.BytesIO()
    skimage_photo("grass").save(photo, format="JPEG", quality=90)
    upload = SimpleUploadedFile("lawn.jpg", photo.getvalue(), content_type="image/jpeg")
    job = services.job_submit(tenant=tenant, user=owner, model=PACKSHOT, upload=upload)
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (3, 2)

    tasks.job_run(str(job.id))

    job.refresh_from_db()
    tenant.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "no_product"
    assert job.error_message.startswith("No product was found in the image")
    assert not job.assets.filter(kind=AssetKind.OUTPUT).exists()
    assert (tenant.credit_balance, tenant.credit_held) == (5, 0)
