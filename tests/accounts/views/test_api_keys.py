"""The workspace's API keys page (`/w/<ws>/api-keys/`): creating a key shown once,
revoking it, who may do either, and the `api_key_create` command."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import ApiKey, Membership, Role, Tenant, User
from tests.conftest import PASSWORD, login_client

KEY_RE = re.compile(r"ps_[0-9a-f]{8}_[\w-]{20,}")


def _page(tenant: Tenant) -> str:
    return reverse("api_keys", args=[tenant.slug])


def _create(client: Client, tenant: Tenant, name: str = "Shopify sync"):
    return client.post(_page(tenant), {"name": name})


def _shown_key(response) -> str:
    keys = KEY_RE.findall(response.content.decode())
    assert len(set(keys)) == 1, keys
    return keys[0]


def _api(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def _messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


@pytest.fixture
def admin(tenant: Tenant) -> User:
    user = User.objects.create_user(email="admin@shop.test", password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    return user


@pytest.fixture
def key(tenant: Tenant, owner: User) -> services.NewApiKey:
    return services.api_key_create(tenant=tenant, name="Nightly export", created_by=owner)


def test_an_owner_creates_a_key_that_is_shown_once_in_the_response(owner_client, tenant, owner):
    response = _create(owner_client, tenant)

    assert response.status_code == 200
    secret = _shown_key(response)
    page = response.content.decode()
    assert "won't be shown again" in page
    assert 'data-copy="new-api-key"' in page
    # Not kept by a browser or a proxy, and not reachable by any later GET.
    assert "no-store" in response["Cache-Control"]
    assert secret not in owner_client.get(_page(tenant)).content.decode()
    assert not KEY_RE.search(owner_client.get(_page(tenant)).content.decode())
    assert secret not in str(dict(owner_client.session))
    key = ApiKey.objects.for_tenant(tenant).get()
    assert key.name == "Shopify sync" and key.created_by == owner
    assert _api(secret).get("/api/v1/jobs").status_code == 200


def test_the_key_is_stored_only_as_a_prefix_and_a_keyed_digest(owner_client, tenant):
    secret = _shown_key(_create(owner_client, tenant))
    prefix, _, rest = secret.removeprefix("ps_").partition("_")

    key = ApiKey.objects.get()
    assert key.prefix == prefix
    assert key.digest == ApiKey.digest_secret(rest) != rest
    stored = " ".join(str(v) for v in ApiKey.objects.values().get().values())
    assert rest not in stored and secret not in stored


def test_an_admin_creates_and_revokes_keys_too(admin, tenant):
    client = login_client(admin)
    secret = _shown_key(_create(client, tenant, "CI"))
    key = ApiKey.objects.get(name="CI")

    client.post(reverse("api_key_revoke", args=[tenant.slug, key.pk]))

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert _api(secret).get("/api/v1/jobs").status_code == 401


def test_a_member_sees_the_keys_but_cannot_create_or_revoke_one(member_client, tenant, key):
    page = member_client.get(_page(tenant)).content.decode()
    assert "Nightly export" in page and key.key.masked in page
    assert "Only the workspace's owners and admins" in page
    assert reverse("api_key_revoke", args=[tenant.slug, key.key.pk]) not in page

    created = _create(member_client, tenant)
    revoked = member_client.post(reverse("api_key_revoke", args=[tenant.slug, key.key.pk]))

    assert created.status_code == 302 and not KEY_RE.search(created.content.decode())
    assert "Only owners and admins can create API keys." in _messages(created)
    assert "Only owners and admins can manage API keys." in _messages(revoked)
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None


def test_the_services_refuse_a_member_and_a_stranger(tenant, member, outsider, key):
    for user in (member, outsider):
        with pytest.raises(services.AccountError) as refused:
            services.api_key_create(tenant=tenant, name="x", created_by=user)
        assert refused.value.code == "forbidden"
        with pytest.raises(services.AccountError):
            services.api_key_revoke(tenant=tenant, key_id=key.key.pk, by=user)
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().is_active


def test_an_outsider_gets_404_on_the_page_and_on_revoke(outsider_client, tenant, key):
    assert outsider_client.get(_page(tenant)).status_code == 404
    assert _create(outsider_client, tenant).status_code == 404
    revoke = reverse("api_key_revoke", args=[tenant.slug, key.key.pk])
    assert outsider_client.post(revoke).status_code == 404
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().is_active


def test_a_key_of_another_workspace_is_404_through_ones_own(outsider, outsider_client, key):
    own = Tenant.objects.get(memberships__user=outsider)

    response = outsider_client.post(reverse("api_key_revoke", args=[own.slug, key.key.pk]))

    assert response.status_code == 404
    assert ApiKey.objects.get(pk=key.key.pk).is_active
    assert "Nightly export" not in outsider_client.get(_page(own)).content.decode()


def test_revoking_a_key_stops_it_at_once(owner_client, tenant, key):
    api = _api(key.secret)
    assert api.get("/api/v1/jobs").status_code == 200

    response = owner_client.post(reverse("api_key_revoke", args=[tenant.slug, key.key.pk]))

    assert response.status_code == 302
    assert "Key “Nightly export” revoked: it no longer works." in _messages(response)
    refused = api.get("/api/v1/jobs")
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "not_authenticated"
    page = owner_client.get(_page(tenant)).content.decode()
    assert "revoked" in page
    assert reverse("api_key_revoke", args=[tenant.slug, key.key.pk]) not in page


def test_the_revoke_button_asks_for_confirmation_first(owner_client, tenant, key):
    page = owner_client.get(_page(tenant)).content.decode()

    form = re.search(
        r'<details class="confirm">\s*<summary[^>]*>Revoke</summary>\s*<form method="post" '
        r'action="([^"]+)">',
        page,
    )
    assert form is not None, page
    assert form.group(1) == reverse("api_key_revoke", args=[tenant.slug, key.key.pk])


def test_revoke_answers_only_post(owner_client, tenant, key):
    response = owner_client.get(reverse("api_key_revoke", args=[tenant.slug, key.key.pk]))

    assert response.status_code == 405
    assert ApiKey.objects.get().is_active


def test_a_request_sets_the_keys_last_used_time(owner_client, tenant, key):
    assert key.key.last_used_at is None
    assert "never" in owner_client.get(_page(tenant)).content.decode()

    _api(key.secret).get("/api/v1/models")

    key.key.refresh_from_db()
    assert key.key.last_used_at is not None
    assert "ago</time>" in owner_client.get(_page(tenant)).content.decode()


def test_the_last_used_time_is_written_at_most_once_a_minute(tenant, key):
    api = _api(key.secret)
    api.get("/api/v1/models")
    key.key.refresh_from_db()
    first = key.key.last_used_at

    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/models").status_code == 200
    key.key.refresh_from_db()

    assert key.key.last_used_at == first
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]

    a_minute_ago = first - timedelta(seconds=61)
    ApiKey.objects.filter(pk=key.key.pk).update(last_used_at=a_minute_ago)
    api.get("/api/v1/models")
    key.key.refresh_from_db()

    assert key.key.last_used_at > first


def test_the_page_lists_each_key_with_its_prefix_creator_and_dates(
    owner_client, tenant, owner, key
):
    operator_key = services.api_key_create(tenant=tenant, name="From the shell")
    services.api_key_revoke(tenant=tenant, key_id=operator_key.key.pk)

    page = owner_client.get(_page(tenant)).content.decode()

    assert f"<code>ps_{key.key.prefix}_…</code>" in page
    assert f"by {owner.get_full_name()}" in page
    assert "by an operator" in page
    assert page.count('class="status status-canceled">revoked') == 1
    assert key.secret not in page and operator_key.secret not in page


def test_a_key_needs_a_name(owner_client, tenant):
    response = _create(owner_client, tenant, name="  ")

    assert response.status_code == 200
    assert "name: give the key a name." in response.content.decode()
    assert not KEY_RE.search(response.content.decode())
    assert not ApiKey.objects.exists()


def test_the_settings_page_links_to_the_api_keys_page(member_client, tenant):
    page = member_client.get(reverse("workspace_settings", args=[tenant.slug])).content.decode()

    assert f'href="{_page(tenant)}"' in page


def test_the_command_prints_a_working_key_alone(tenant):
    out, err = io.StringIO(), io.StringIO()

    call_command("api_key_create", tenant.slug, "--name", "README", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    assert KEY_RE.fullmatch(secret)
    assert "README" in err.getvalue() and secret not in err.getvalue()
    assert ApiKey.objects.get().name == "README"
    assert _api(secret).get("/api/v1/jobs").status_code == 200


def test_the_command_refuses_an_unknown_workspace(db):
    with pytest.raises(CommandError, match="no workspace with the slug 'nope'"):
        call_command("api_key_create", "nope", stdout=io.StringIO())
    assert not ApiKey.objects.exists()
