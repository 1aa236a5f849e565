"""Every workspace page, for an owner, a member and an outsider.

The cases are generated from the URL resolver: a new workspace route whose URL needs an
object this file does not know fails the suite until a case is added.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, reverse

from accounts import services as account_services
from accounts.models import ApiKey, Invitation, Membership, Tenant
from jobs import services as job_services
from jobs.models import AssetKind, Batch, Job, Preset
from productstudio.urls import workspace_patterns

ROUTES = [p.name for p in workspace_patterns if isinstance(p, URLPattern)]
# Routes whose URL names an object besides the workspace.
OBJECT_ROUTES = [
    p.name
    for p in workspace_patterns
    if isinstance(p, URLPattern) and set(p.pattern.converters) - {"workspace"}
]
# Routes that only accept POST (GET answers 405).
POST_ONLY = {
    "api_key_revoke",
    "asset_delete",
    "asset_favourite",
    "assets_delete",
    "assets_zip",
    "batch_retry_failed",
    "credits_buy",
    "credits_threshold",
    "job_cancel",
    "job_preview",
    "job_rerun",
    "preset_copy",
    "preset_delete",
    "team_invite",
    "team_change_role",
    "team_remove",
    "team_revoke_invitation",
    "team_resend_invitation",
    "workspace_rename",
    "workspace_segmind_plan",
}


@pytest.fixture
def objects(tenant: Tenant, owner, member, product_jpeg, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
    batch = Batch.objects.create(tenant=tenant, name="Spring mugs", created_by=owner)
    Job.objects.filter(pk=job.pk).update(batch=batch)
    invitation, _ = account_services.invitation_create(
        tenant=tenant, invited_by=owner, email="later@shop.test"
    )
    preset = job_services.preset_create(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        name="House white",
        params={"background_color": "#FAFAFA"},
    )
    key = account_services.api_key_create(tenant=tenant, name="Shop sync")
    return {
        "key_id": key.key.pk,
        "preset_id": preset.pk,
        "job_id": job.id,
        "batch_id": batch.id,
        "asset_id": job.assets.get(kind=AssetKind.OUTPUT).id,
        "member_id": Membership.objects.get(user=member).pk,
        "invitation_id": invitation.pk,
    }


def _url(name: str, workspace: str, objects: dict[str, Any]) -> str:
    pattern = next(p for p in workspace_patterns if isinstance(p, URLPattern) and p.name == name)
    kwargs: dict[str, Any] = {"workspace": workspace}
    for converter in pattern.pattern.converters:
        assert converter in objects, f"no test object for <{converter}> of route {name!r}"
        kwargs[converter] = objects[converter]
    return reverse(name, kwargs=kwargs)


def _request(client, name: str, url: str):
    # POST routes are exercised with harmless bodies: the tests look at who gets through.
    if name in POST_ONLY:
        return client.post(
            url, {"role": "member", "email": "x@shop.test", "model": "bria-product-packshot"}
        )
    return client.get(url)


@pytest.mark.parametrize("name", ROUTES)
def test_the_owner_reaches_every_workspace_page(name, owner_client, tenant, objects):
    response = _request(owner_client, name, _url(name, tenant.slug, objects))
    assert response.status_code in (200, 302), response.status_code


@pytest.mark.parametrize("name", ROUTES)
def test_a_member_reaches_every_workspace_page(name, member_client, tenant, objects):
    response = _request(member_client, name, _url(name, tenant.slug, objects))
    assert response.status_code in (200, 302), response.status_code


@pytest.mark.parametrize("name", ROUTES)
def test_an_outsider_gets_404_on_every_workspace_page(name, outsider_client, tenant, objects):
    response = _request(outsider_client, name, _url(name, tenant.slug, objects))
    assert response.status_code == 404
    assert tenant.name not in response.content.decode()


@pytest.mark.parametrize("name", OBJECT_ROUTES)
def test_an_outsider_gets_404_for_the_tenants_objects_through_their_own_workspace(
    name, outsider, outsider_client, tenant, objects
):
    own = Tenant.objects.get(memberships__user=outsider)
    response = _request(outsider_client, name, _url(name, own.slug, objects))
    assert response.status_code in (404, 302)
    # Whatever the answer, the tenant's objects were not touched.
    assert Membership.objects.filter(pk=objects["member_id"], role="member").exists()
    assert Invitation.objects.filter(pk=objects["invitation_id"]).exists()
    assert Job.objects.get(pk=objects["job_id"]).status == "succeeded"
    assert Preset.objects.filter(pk=objects["preset_id"], name="House white").exists()
    assert ApiKey.objects.get(pk=objects["key_id"]).is_active
    assert str(objects["asset_id"]) not in response.content.decode()


def test_the_outsider_cannot_read_the_tenants_job_through_the_api(outsider_client, tenant, objects):
    outsider_client.get(
        reverse("dashboard", args=[Tenant.objects.exclude(pk=tenant.pk).get().slug])
    )
    response = outsider_client.get(f"/api/v1/jobs/{objects['job_id']}")
    assert response.status_code == 404


def test_an_api_key_never_sees_another_workspaces_job(outsider, tenant, objects):
    from django.test import Client

    own = Tenant.objects.get(memberships__user=outsider)
    key = account_services.api_key_create(tenant=own, name="ci").secret
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get(f"/api/v1/jobs/{objects['job_id']}").status_code == 404
    assert client.get("/api/v1/jobs").json()["results"] == []
