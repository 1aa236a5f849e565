"""Fixtures for media on S3: moto's server for the whole session, and the studio's
default storage pointed at it.

- `s3_server`: the session's `S3Server` (started on first use).
- `s3_media`: this test's media on that server (STORAGES overridden); the bucket is
  emptied afterwards.
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


@pytest.fixture
def s3_media(settings: Any, s3_server: S3Server) -> Iterator[S3Server]:
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
