"""The fake Segmind server speaks the protocol: the official SDK drives it end to end,
and every injected fault looks on the wire the way docs/segmind.md describes."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import segmind  # type: ignore[import-untyped]
from PIL import Image

from tests.support.fake_segmind import WORKFLOW_ID, FakeSegmind, job_key_for

KEY = "test-key"
LATENCY = 0.2
PHOTO = {
    "image": "https://example.test/mug.jpg",
    "prompt": "a mug on a kitchen table",
    "megapixel": "1.0",
    "aspect_ratio": "8:5 (Cinematic View)",
}


@pytest.fixture
def fake() -> Iterator[FakeSegmind]:
    with FakeSegmind(latency=LATENCY, api_key=KEY) as server:
        yield server


@pytest.fixture
def client(fake: FakeSegmind) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, headers={"x-api-key": KEY}, timeout=5) as c:
        yield c


@pytest.fixture
def sdk(fake: FakeSegmind) -> segmind.SegmindClient:
    # The SDK derives its v2 prefix by replacing the trailing /v1 of base_url.
    return segmind.SegmindClient(api_key=KEY, base_url=fake.base_url + "/v1")


def submit(client: httpx.Client, slug: str = "ai-product-photography", **params) -> dict:
    response = client.post(f"/v2/{slug}", json=params or PHOTO)
    assert response.status_code == 200, response.text
    return response.json()


def wait_done(client: httpx.Client, status_url: str) -> httpx.Response:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = client.get(status_url)
        if response.json()["status"] in ("COMPLETED", "FAILED"):
            return response
        time.sleep(0.05)
    raise AssertionError("the fake never finished the job")


# --- conformance with Segmind's own SDK -------------------------------------------------


def test_the_sdk_runs_a_v2_model_to_completion(fake, sdk):
    result = sdk.submit_async("ai-product-photography", **PHOTO).wait(timeout=10, interval=0.05)

    assert result["status"] == "COMPLETED"
    assert result["output"].startswith(fake.base_url + "/outputs/")
    assert result["metrics"]["inference_time"] == LATENCY
    image = Image.open(io.BytesIO(httpx.get(result["output"]).content))
    assert image.size == (1280, 768)


def test_the_sdk_runs_the_pixelflow_workflow_and_parses_its_output(fake, sdk):
    # PixelFlows.workflows_base is hard-wired to api.segmind.com; workflow_url avoids it.
    result = sdk.pixelflows.run(
        workflow_url=f"{fake.base_url}/workflows/{WORKFLOW_ID}",
        data={"product_prompt": "a blue running shoe"},
        poll_interval=0.05,
        max_wait_time=10,
    )

    assert result["status"] == "COMPLETED"
    url = result["output"]["outputs"]["image"]["url"]
    assert Image.open(io.BytesIO(httpx.get(url).content)).size == (1024, 1024)


def test_the_sdk_raises_inference_failed_for_an_injected_failure(fake, sdk):
    fake.faults.fail_jobs(1, error="Content moderation: input flagged")

    with pytest.raises(segmind.InferenceFailed) as caught:
        sdk.submit_async("ai-product-photography", **PHOTO).wait(timeout=10, interval=0.05)

    assert caught.value.detail == "Content moderation: input flagged"


def test_the_sdk_raises_its_error_with_the_message_for_insufficient_credits(fake, sdk):
    fake.faults.insufficient_credits(1)

    with pytest.raises(segmind.SegmindError) as caught:
        sdk.submit_async("ai-product-photography", **PHOTO)

    assert caught.value.status == 406
    assert caught.value.detail == "Insufficient credits"


# --- the protocol on the wire -----------------------------------------------------------


def test_a_submit_without_the_key_or_with_a_wrong_one_is_401(fake):
    for headers in ({}, {"x-api-key": "wrong"}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(fake.url("/v2/ai-product-photography"), json=PHOTO, headers=headers)
        assert response.status_code == 401
        assert "error" in response.json()


def test_the_workflow_accepts_a_bearer_token(fake):
    response = httpx.post(
        fake.url(f"/workflows/{WORKFLOW_ID}"),
        json={"product_prompt": "shoe"},
        headers={"Authorization": f"Bearer {KEY}"},
    )

    assert response.status_code == 200
    assert response.json()["poll_url"].startswith(fake.base_url + "/workflows/request/")


def test_a_job_goes_through_queued_and_processing_to_completed(client):
    job = submit(client)
    first = client.get(job["status_url"]).json()["status"]
    done = wait_done(client, job["status_url"])

    assert job["status"] == "QUEUED"
    assert first in ("QUEUED", "PROCESSING")
    assert done.status_code == 200
    assert done.json()["status"] == "COMPLETED"


def test_an_unknown_request_id_is_404(client):
    assert client.get("/v2/requests/no-such-id/status").status_code == 404
    assert client.get("/v2/requests/no-such-id").json() == {"error": "Request not found"}


def test_a_failed_job_is_served_as_422_with_its_error(fake, client):
    fake.faults.fail_jobs(1, error="NSFW content detected")
    job = submit(client)

    status = wait_done(client, job["status_url"])
    result = client.get(job["response_url"])

    for response in (status, result):
        assert response.status_code == 422
        assert response.json()["status"] == "FAILED"
        assert response.json()["error"] == "NSFW content detected"


def test_an_expired_request_answers_404_everywhere(fake, client):
    job = submit(client)
    wait_done(client, job["status_url"])
    output = client.get(job["response_url"]).json()["output"]

    fake.faults.expire(job["request_id"])

    assert client.get(job["status_url"]).status_code == 404
    assert client.get(job["response_url"]).status_code == 404
    assert client.get(output).status_code == 404


def test_results_expire_after_the_retention(fake, client):
    job = submit(client)
    wait_done(client, job["status_url"])

    fake.advance(3600)

    assert client.get(job["response_url"]).json() == {"error": "Request not found"}


def test_a_rate_limit_answers_429_with_retry_after_then_recovers(fake, client):
    fake.faults.rate_limit(2, retry_after=3, scope="submit")

    answers = [client.post("/v2/ai-product-photography", json=PHOTO) for _ in range(3)]

    assert [r.status_code for r in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert fake.stats()["submissions"] == 1


def test_server_errors_answer_the_chosen_status(fake, client):
    fake.faults.server_error(1, status=502)

    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 502
    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 200


def test_a_malformed_answer_is_not_json(fake, client):
    job = submit(client)
    fake.faults.malformed_json(1, scope="poll")

    response = client.get(job["status_url"])

    assert response.status_code == 200
    assert response.content == b'{"status": '
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_a_dropped_connection_is_a_transport_error_in_httpx(fake, client):
    fake.faults.drop_connection(1)

    with pytest.raises(httpx.TransportError):
        client.post("/v2/ai-product-photography", json=PHOTO)
    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 200


def test_a_slow_answer_takes_its_time(fake, client):
    fake.faults.slow(1, seconds=0.3)

    started = time.monotonic()
    submit(client)

    assert time.monotonic() - started >= 0.3


def test_faults_can_be_set_and_reset_over_http(fake, client):
    answer = client.post("/_fake/faults", json={"insufficient_credits": 1, "latency": 0})
    assert answer.json()["insufficient_credits"] == 1

    refused = client.post("/v2/ai-product-photography", json=PHOTO)
    assert refused.status_code == 406
    assert refused.json() == {"error": "Insufficient credits"}
    job = submit(client)
    assert client.get(job["status_url"]).json()["status"] == "COMPLETED"

    client.post("/_fake/reset")
    assert client.get("/_fake/stats").json()["submissions"] == 0
    assert client.get("/_fake/faults").json()["latency"] == LATENCY


def test_a_per_request_latency_header_overrides_the_default(fake, client):
    job = client.post(
        "/v2/ai-product-photography", json=PHOTO, headers={"x-fake-latency": "0"}
    ).json()

    assert client.get(job["status_url"]).json()["status"] == "COMPLETED"


def test_stats_count_submissions_per_job_key(fake, client):
    client.post("/v2/ai-product-photography", json=PHOTO, headers={"x-fake-job": "job-1"})
    client.post("/v2/ai-product-photography", json=PHOTO, headers={"x-fake-job": "job-1"})
    client.post("/v2/ai-product-photography", json=PHOTO)

    stats = client.get("/_fake/stats").json()

    assert stats["submissions"] == 3
    assert stats["submissions_by_key"] == {"job-1": 2, job_key_for(PHOTO): 1}
    assert len(stats["requests"]) == 3


def test_qwen_with_base64_returns_png_data_instead_of_a_url(client):
    job = submit(
        client,
        "qwen-image-edit-plus-product-photography",
        prompt="a mug in a living room",
        image_1="https://example.test/mug.jpg",
        base64=True,
    )
    wait_done(client, job["status_url"])

    output = client.get(job["response_url"]).json()["output"]

    image = Image.open(io.BytesIO(base64.b64decode(output)))
    assert image.format == "PNG"
    assert image.size == (1024, 1024)


def test_the_packshot_is_square(client):
    job = submit(client, "bria-product-packshot", image_url="https://example.test/mug.jpg")
    wait_done(client, job["status_url"])
    output = client.get(job["response_url"]).json()["output"]

    assert Image.open(io.BytesIO(client.get(output).content)).size == (2000, 2000)


def test_unknown_models_and_missing_required_params_are_refused(client):
    assert client.post("/v2/no-such-model", json=PHOTO).status_code == 404
    assert client.post("/v2/ai-product-photography", json={"prompt": "x"}).status_code == 400


# --- the command line -------------------------------------------------------------------


def test_the_command_line_serves_until_terminated():
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_segmind", "--port", "0", "--latency", "0.1"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:")

        stats = httpx.get(base_url + "/_fake/stats", timeout=5).json()

        assert stats["submissions"] == 0
    finally:
        process.terminate()
        process.wait(timeout=5)


# --- several keys, each with its own account ----------------------------------------------


def test_several_keys_are_accepted_and_counted_apart():
    with FakeSegmind(latency=0, api_key=KEY, api_keys=["own-key"]) as fake:
        for key in (KEY, "own-key", "own-key"):
            response = httpx.post(
                fake.url("/v2/ai-product-photography"), json=PHOTO, headers={"x-api-key": key}
            )
            assert response.status_code == 200
        stranger = httpx.post(
            fake.url("/v2/ai-product-photography"), json=PHOTO, headers={"x-api-key": "nope"}
        )

        assert stranger.status_code == 401
        assert fake.stats()["submissions_by_api_key"] == {KEY: 1, "own-key": 2}


def test_one_key_out_of_credit_leaves_the_others_working_until_topped_up():
    with FakeSegmind(latency=0, api_key=KEY, api_keys=["own-key"]) as fake:

        def post(key: str) -> int:
            return httpx.post(
                fake.url("/v2/ai-product-photography"), json=PHOTO, headers={"x-api-key": key}
            ).status_code

        fake.faults.out_of_credit(KEY)
        assert [post(KEY), post(KEY), post("own-key")] == [406, 406, 200]
        fake.faults.top_up(KEY)
        assert post(KEY) == 200
        fake.faults.insufficient_credits(1, key="own-key")
        assert [post("own-key"), post("own-key"), post(KEY)] == [406, 200, 200]
        assert fake.stats()["refused_by_api_key"] == {KEY: 2, "own-key": 1}


def test_a_key_can_be_put_out_of_credit_over_http(fake, client):
    client.post("/_fake/faults", json={"out_of_credit": KEY})
    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 406
    assert client.get("/_fake/faults").json()["out_of_credit"] == [KEY]

    client.post("/_fake/faults", json={"top_up": KEY})
    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 200


# --- Segmind's per-key rate limit, as a sliding window --------------------------------------


def _post(fake: FakeSegmind, key: str = KEY) -> httpx.Response:
    return httpx.post(
        fake.url("/v2/ai-product-photography"), json=PHOTO, headers={"x-api-key": key}
    )


def test_a_window_limit_refuses_the_request_past_n_per_key_with_its_retry_after():
    with FakeSegmind(latency=0, api_key=KEY, api_keys=["own-key"]) as fake:
        fake.faults.rate_window(2, window=30, retry_after=7)

        codes = [_post(fake).status_code for _ in range(3)]
        third = _post(fake)
        own = _post(fake, "own-key")

        assert codes == [200, 200, 429]
        assert third.headers["Retry-After"] == "7"
        assert own.status_code == 200
        stats = fake.stats()["rate_by_api_key"]
        assert fake.stats()["submissions_by_api_key"] == {KEY: 2, "own-key": 1}
        assert stats[KEY]["submissions"] == 2
        assert stats[KEY]["refused_submissions"] == 2
        assert len(stats[KEY]["requests"]) == 4
        assert [after for _, after in stats[KEY]["throttled"]] == [7, 7]


def test_the_window_slides_and_a_429_may_come_without_retry_after():
    with FakeSegmind(latency=0, api_key=KEY) as fake:
        fake.faults.rate_window(1, window=0.5)

        first, second = _post(fake), _post(fake)
        deadline = time.monotonic() + 10
        while _post(fake).status_code != 200:
            assert time.monotonic() < deadline

        assert (first.status_code, second.status_code) == (200, 429)
        assert "Retry-After" not in second.headers


def test_polls_count_against_the_window_only_when_asked(fake, client):
    job = submit(client)
    fake.faults.rate_window(1, window=60)

    assert client.get(job["status_url"]).status_code == 200
    assert client.get(job["status_url"]).status_code == 200
    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 200

    fake.reset()
    job = submit(client)
    fake.faults.rate_window(1, window=60, count_polls=True)
    assert client.get(job["status_url"]).status_code == 200
    assert client.get(job["status_url"]).status_code == 429
    assert fake.stats()["rate_by_api_key"][KEY]["refused_polls"] == 1


def test_the_window_limit_can_be_set_over_http(fake, client):
    client.post("/_fake/faults", json={"rate_window": {"n": 1, "window": 60, "retry_after": 2}})

    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 200
    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 429
    assert client.get("/_fake/faults").json()["rate_window"]["n"] == 1

    client.post("/_fake/faults", json={"rate_window": None})
    assert client.post("/v2/ai-product-photography", json=PHOTO).status_code == 200


def test_the_command_line_enforces_a_rate_limit():
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fake_segmind",
            "--port",
            "0",
            "--latency",
            "0.1",
            "--rate-limit",
            "1/60s",
            "--retry-after",
            "5",
            "--count-polls",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        headers = {"x-api-key": "test-key"}
        answers = [
            httpx.post(base_url + "/v2/ai-product-photography", json=PHOTO, headers=headers)
            for _ in range(2)
        ]

        assert [a.status_code for a in answers] == [200, 429]
        assert answers[1].headers["Retry-After"] == "5"
        assert httpx.get(base_url + "/_fake/faults").json()["rate_window"]["count_polls"] is True
    finally:
        process.terminate()
        process.wait(timeout=5)
