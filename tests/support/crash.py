"""Fixtures for the in-process crash tests (a dead dispatcher's takeover, the lease watch).

The real-cluster SIGKILL runs (tests/jobs/engines/segmind/test_crashes.py) keep a
module-scoped fake of their own, which overrides this one there, as does any test module
with its own `fake`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_segmind import FakeSegmind

KEY = "test-key"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeSegmind]:
    """The fake Segmind with the settings pointing at it: quick polls, no rate limit, and
    a dispatcher budget that outlasts the tests' few jobs."""
    with FakeSegmind(port=0, latency=0.3, api_key=KEY) as server:
        settings.SEGMIND_API_KEY = KEY
        # Delivery, not price, is tested here: a model no operator priced is free.
        settings.SEGMIND_DEFAULT_PRICE = 0
        settings.SEGMIND_API_BASE = server.base_url
        settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SEGMIND_FIRST_POLL_SECONDS = 0.1
        settings.SEGMIND_POLL_INTERVAL_SECONDS = 0.1
        settings.SEGMIND_DISPATCHER_SECONDS = 20
        settings.SEGMIND_RATE_LIMIT = "unlimited"
        yield server
