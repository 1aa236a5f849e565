"""A workspace's own Segmind key: checked before it is saved, encrypted at rest, shown
back by its last four characters only."""

from collections.abc import Iterator
from typing import Any

import pytest

from accounts import services
from accounts.models import Tenant, User
from tests.support.fake_segmind import FakeSegmind

OWN_KEY = "sg_own_key_of_the_shop_1234"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeSegmind]:
    with FakeSegmind(port=0, latency=0.1, api_key=OWN_KEY) as server:
        settings.SEGMIND_API_BASE = server.base_url
        yield server


def test_a_key_segmind_accepts_is_saved_encrypted_with_its_last_four_shown(
    fake: FakeSegmind, tenant: Tenant, owner: User
) -> None:
    check = services.segmind_key_set(tenant=tenant, by=owner, key=f"  {OWN_KEY}\n")

    tenant.refresh_from_db()
    assert check.last4 == "1234"
    assert not check.out_of_credit
    assert tenant.segmind_key_last4 == "1234"
    assert tenant.has_own_segmind_key
    assert OWN_KEY not in tenant.segmind_key_encrypted
    assert services.segmind_key_get(tenant=tenant) == OWN_KEY
    assert fake.stats()["status_polls"] == 1


def test_a_key_segmind_refuses_is_not_saved(fake: FakeSegmind, tenant: Tenant, owner: User) -> None:
    with pytest.raises(services.AccountError) as refused:
        services.segmind_key_set(tenant=tenant, by=owner, key="sg_wrong_key_0000")

    assert refused.value.code == "invalid_key"
    assert refused.value.message.startswith("segmind_key:")
    tenant.refresh_from_db()
    assert not tenant.has_own_segmind_key
    assert tenant.segmind_key_last4 == ""


def test_when_segmind_cannot_be_asked_nothing_is_saved(
    fake: FakeSegmind, tenant: Tenant, owner: User
) -> None:
    fake.faults.server_error(5, status=502)

    with pytest.raises(services.AccountError) as refused:
        services.segmind_key_set(tenant=tenant, by=owner, key=OWN_KEY)

    assert refused.value.code == "segmind_unreachable"
    tenant.refresh_from_db()
    assert not tenant.has_own_segmind_key


def test_something_that_is_not_a_key_is_refused_without_asking_segmind(
    fake: FakeSegmind, tenant: Tenant, owner: User
) -> None:
    for bad in ["", "short", "has a space in it", "ключ-не-ascii-1234"]:
        with pytest.raises(services.AccountError) as refused:
            services.segmind_key_set(tenant=tenant, by=owner, key=bad)
        assert refused.value.code == "invalid_key"
    assert fake.stats()["status_polls"] == 0


def test_only_owners_and_admins_change_the_key(
    fake: FakeSegmind, tenant: Tenant, member: User, outsider: User, owner: User
) -> None:
    for user in (member, outsider):
        with pytest.raises(services.AccountError) as refused:
            services.segmind_key_set(tenant=tenant, by=user, key=OWN_KEY)
        assert refused.value.code == "forbidden"
    services.segmind_key_set(tenant=tenant, by=owner, key=OWN_KEY)
    with pytest.raises(services.AccountError):
        services.segmind_key_clear(tenant=tenant, by=member)


def test_clearing_the_key_forgets_it(fake: FakeSegmind, tenant: Tenant, owner: User) -> None:
    services.segmind_key_set(tenant=tenant, by=owner, key=OWN_KEY)

    services.segmind_key_clear(tenant=tenant, by=owner)

    tenant.refresh_from_db()
    assert not tenant.has_own_segmind_key
    assert tenant.segmind_key_last4 == ""
    assert services.segmind_key_get(tenant=tenant) == ""


def test_a_key_encrypted_under_another_secret_reads_as_no_key(
    fake: FakeSegmind, tenant: Tenant, owner: User, settings: Any
) -> None:
    services.segmind_key_set(tenant=tenant, by=owner, key=OWN_KEY)

    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"

    assert services.segmind_key_get(tenant=tenant) == ""


def test_the_settings_page_saves_a_key_and_shows_only_its_last_four(
    fake: FakeSegmind, owner_client: Any, tenant: Tenant
) -> None:
    page = f"/w/{tenant.slug}/settings/"

    response = owner_client.post(page, {"action": "save", "segmind_key": OWN_KEY}, follow=True)

    html = response.content.decode()
    assert "Segmind accepted the key ending 1234" in html
    assert "<code>1234</code>" in html
    assert OWN_KEY not in html
    assert OWN_KEY not in owner_client.get(page).content.decode()


def test_the_settings_page_names_the_field_when_segmind_refuses_the_key(
    fake: FakeSegmind, owner_client: Any, tenant: Tenant
) -> None:
    response = owner_client.post(
        f"/w/{tenant.slug}/settings/", {"action": "save", "segmind_key": "sg_wrong_key_0000"}
    )

    html = response.content.decode()
    assert 'id="id_segmind_key-error"' in html
    assert "Segmind refused this key" in html
    assert "sg_wrong_key_0000" not in html
    tenant.refresh_from_db()
    assert not tenant.has_own_segmind_key


def test_a_member_sees_the_key_state_but_cannot_change_it(
    fake: FakeSegmind, member_client: Any, tenant: Tenant, owner: User
) -> None:
    services.segmind_key_set(tenant=tenant, by=owner, key=OWN_KEY)
    page = f"/w/{tenant.slug}/settings/"

    assert "<code>1234</code>" in member_client.get(page).content.decode()
    member_client.post(page, {"action": "remove"})

    tenant.refresh_from_db()
    assert tenant.has_own_segmind_key


def test_the_owner_can_remove_the_key_from_the_settings_page(
    fake: FakeSegmind, owner_client: Any, tenant: Tenant, owner: User
) -> None:
    services.segmind_key_set(tenant=tenant, by=owner, key=OWN_KEY)

    owner_client.post(f"/w/{tenant.slug}/settings/", {"action": "remove"})

    tenant.refresh_from_db()
    assert not tenant.has_own_segmind_key


def test_an_outsider_gets_a_404_on_the_settings_page(outsider_client: Any, tenant: Tenant) -> None:
    page = f"/w/{tenant.slug}/settings/"
    assert outsider_client.get(page).status_code == 404
    assert outsider_client.post(page, {"action": "remove"}).status_code == 404
