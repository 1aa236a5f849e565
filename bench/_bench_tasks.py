"""The baseline for `bench.orchestrator`: the naive integration, run as a django-q2 task.

`sdk_run` is what a first integration of Segmind looks like: the official SDK's blocking
`SegmindClient.run()` (submit, then poll every 1 s until COMPLETED) inside a task, then the
output downloaded. The worker is held for the whole inference.
"""

from __future__ import annotations

import time
from typing import Any

import httpx


def sdk_run(api_key: str, base_url: str, slug: str, params: dict[str, Any]) -> dict[str, Any]:
    import segmind  # type: ignore[import-untyped]

    started = time.time()
    client = segmind.SegmindClient(api_key=api_key, base_url=base_url.rstrip("/") + "/v1")
    body = client.run(slug, **params)
    output = body.get("output")
    size = 0
    if isinstance(output, str) and output.startswith("http"):
        size = len(httpx.get(output, timeout=30).content)
    return {"started": started, "finished": time.time(), "bytes": size}
