"""Fixtures for media on S3: moto's server for the whole session, and the studio's
default storage pointed at it.

- `s3_server`: the session's `S3Server` (started on first use).
- `s3_media`: this test's media on that server (STORAGES overridden); the bucket is
  emptied afterwards. Every request the storage sends is checked by the suite's
  network-in-transaction guard (boto3 keeps connections alive, so most requests open no
  socket for the socket wrappers to see).
- `media_storage`: parametrized, "local" then "s3": a storage-heavy test module runs on
  both by asking for it (or with `@pytest.mark.usefixtures("media_storage")`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.s3_server import S3Server, s3_storages


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def _guard_each_request(request: Any, **kwargs: Any) -> None:
    from tests.conftest import transaction_network_check

    transaction_network_check(f"sending {request.method} {request.url} to S3")


@pytest.fixture
def s3_media(
    settings: Any, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[S3Server]:
    from productstudio.lib.storage import PrivateS3Storage

    create_session = PrivateS3Storage._create_session

    def guarded_session(storage: PrivateS3Storage) -> Any:
        # Each thread's client is made from its own session: the hook is on all of them.
        session = create_session(storage)
        session.events.register("before-send.s3", _guard_each_request)
        return session

    monkeypatch.setattr(PrivateS3Storage, "_create_session", guarded_session)
    settings.STORAGES = s3_storages(
        s3_server, settings.STORAGES, ttl=int(settings.ASSET_URL_TTL_SECONDS)
    )
    yield s3_server
    s3_server.empty()


@pytest.fixture(params=["local", "s3"])
def media_storage(request: pytest.FixtureRequest) -> str:
    """Which storage this run of the test uses: "local" (MEDIA_ROOT) or "s3" (moto)."""
    if request.param == "s3":
        request.getfixturevalue("s3_media")
    return str(request.param)
