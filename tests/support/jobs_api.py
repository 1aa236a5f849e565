"""Fixtures for tests of jobs.api: where a test needs a seam (an enqueue not sent, a call
that fails), a fixture here patches the one module that owns it, so tests never reach
into service internals themselves."""

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def jobs_list_query_fails(monkeypatch: pytest.MonkeyPatch) -> Callable[[Exception], None]:
    """Call it with an exception: GET /api/v1/jobs then raises it where it reads the
    workspace's jobs (a locked database, a broken column)."""

    from jobs.api import jobs as jobs_resource

    def fail(error: Exception) -> None:
        def raising(*args: Any, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(jobs_resource, "_jobs_filtered", raising)

    return fail
