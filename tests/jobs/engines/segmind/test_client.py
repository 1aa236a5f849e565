"""Tests for jobs.engines.segmind.client, the Segmind client, against httpx.MockTransport only.

No sockets are opened: every answer comes from a handler in this file. Async code runs
through asyncio.run inside plain tests.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import pickle
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from PIL import Image

from jobs.engines.segmind import client as segmind
from jobs.engines.segmind.client import (
    Output,
    Poll,
    SegmindClient,
    SegmindError,
    Submission,
    call_with_retries,
    find_outputs,
    parse_retry_after,
)

KEY = "sk-test-0123456789abcdef"
BASE = "http://127.0.0.1:9100"
IMAGE_URL = "https://images.segmind.example/outputs/abc.png"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()
PNG_B64 = base64.b64encode(PNG).decode()

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport whose handler also keeps every request it saw."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def run(
    handler: Handler, call: Callable[[SegmindClient], Any], *, base: str = BASE, **kwargs: Any
) -> tuple[Any, Recorder]:
    recorder = Recorder(handler)

    async def go() -> Any:
        async with SegmindClient(
            KEY, base, transport=httpx.MockTransport(recorder), **kwargs
        ) as client:
            return await call(client)

    return asyncio.run(go()), recorder


def run_error(handler: Handler, call: Callable[[SegmindClient], Any]) -> SegmindError:
    with pytest.raises(SegmindError) as caught:
        run(handler, call)
    return caught.value


def answer(status: int = 200, body: Any = None, **kwargs: Any) -> Handler:
    return lambda request: httpx.Response(status, json=body, **kwargs)


V2 = Submission(
    request_id="r1",
    kind="v2",
    status_url=f"{BASE}/v2/requests/r1/status",
    result_url=f"{BASE}/v2/requests/r1",
)
FLOW = Submission(
    request_id="w1",
    kind="workflow",
    status_url=f"{BASE}/workflows/request/w1",
    result_url=f"{BASE}/workflows/request/w1",
)


def submit_v2(client: SegmindClient) -> Any:
    return client.submit("ai-product-photography", "v2", {"prompt": "a sofa"})


def submit_flow(client: SegmindClient) -> Any:
    return client.submit("65c9c7f641c340d7ef2f7134-v1", "workflow", {"product_prompt": "shoe"})


# --- submitting ---------------------------------------------------------------------


def test_a_v2_submission_posts_the_parameters_with_the_key_in_x_api_key():
    body = {
        "request_id": "r1",
        "status_url": f"{BASE}/v2/requests/r1/status",
        "response_url": f"{BASE}/v2/requests/r1",
    }
    sub, rec = run(answer(200, body), submit_v2)
    request = rec.requests[0]
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/v2/ai-product-photography"
    assert request.headers["x-api-key"] == KEY
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {"prompt": "a sofa"}
    assert sub == Submission("r1", "v2", body["status_url"], body["response_url"])


def test_a_workflow_submission_sends_the_key_as_x_api_key_and_as_a_bearer_token():
    body = {"request_id": "w1", "poll_url": f"{BASE}/workflows/request/w1"}
    sub, rec = run(answer(200, body), submit_flow)
    request = rec.requests[0]
    assert str(request.url) == f"{BASE}/workflows/65c9c7f641c340d7ef2f7134-v1"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert sub.kind == "workflow"
    assert sub.status_url == sub.result_url == body["poll_url"]


def test_a_v2_answer_with_only_a_request_id_falls_back_to_the_documented_urls():
    sub, _ = run(answer(200, {"request_id": "abc"}), submit_v2)
    assert sub.status_url == f"{BASE}/v2/requests/abc/status"
    assert sub.result_url == f"{BASE}/v2/requests/abc"


def test_relative_urls_in_the_answer_are_resolved_against_the_base_url():
    body = {"request_id": "r9", "status_url": "/v2/requests/r9/status", "response_url": "/v2/x/r9"}
    sub, _ = run(answer(200, body), submit_v2)
    assert sub.status_url == f"{BASE}/v2/requests/r9/status"
    assert sub.result_url == f"{BASE}/v2/x/r9"


def test_a_workflow_answer_without_a_request_id_takes_it_from_the_poll_url():
    sub, _ = run(answer(200, {"poll_url": f"{BASE}/workflows/request/zz9"}), submit_flow)
    assert sub.request_id == "zz9"


def test_an_answer_without_request_id_is_a_bad_response():
    err = run_error(answer(200, {"status": "QUEUED"}), submit_v2)
    assert err.code == "provider_bad_response"
    assert err.retryable is False


def test_a_status_url_outside_segmind_is_refused_and_never_gets_the_key():
    body = {"request_id": "r1", "status_url": "https://evil.example/steal", "response_url": "/x"}
    err = run_error(answer(200, body), submit_v2)
    assert err.code == "provider_bad_response"
    assert "r1" in err.provider_message  # the paid request id is not lost

    stored = Submission("r1", "v2", "https://evil.example/steal", "https://evil.example/x")
    err = run_error(answer(200, {"status": "QUEUED"}), lambda c: c.status(stored))
    assert err.code == "provider_bad_response"


def test_sibling_hosts_of_the_base_domain_may_be_polled_but_not_over_plain_http():
    sub = Submission(
        "r1", "v2", "https://queue.segmind.test/v2/r1/status", "http://api.segmind.test/v2/r1"
    )
    poll, rec = run(
        answer(200, {"status": "QUEUED"}), lambda c: c.status(sub), base="https://api.segmind.test"
    )
    assert poll.state == "QUEUED"
    assert rec.requests[0].url.host == "queue.segmind.test"
    with pytest.raises(SegmindError):
        run(answer(200, {}), lambda c: c.result(sub), base="https://api.segmind.test")


def test_an_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        run(answer(200, {}), lambda c: c.submit("x", "v1", {}))


def test_a_submission_survives_a_round_trip_through_json():
    stored = json.loads(json.dumps(FLOW.to_dict()))
    assert Submission.from_dict(stored) == FLOW
    with pytest.raises(ValueError):
        Submission.from_dict({**stored, "kind": "v1"})
    with pytest.raises(ValueError):
        Submission.from_dict({"request_id": "x"})


# --- the error table ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "provider_bad_request", False),
        (401, "provider_unauthorized", False),
        (403, "provider_forbidden", False),
        (404, "provider_not_found", False),
        (406, "provider_insufficient_credits", False),
        (422, "provider_failed", False),
        (429, "provider_rate_limited", True),
        (500, "provider_unavailable", True),
        (502, "provider_unavailable", True),
        (503, "provider_unavailable", True),
        (504, "provider_unavailable", True),
    ],
)
def test_each_error_status_on_submit_has_its_stable_code(status, code, retryable):
    err = run_error(answer(status, {"error": "Segmind's own words"}), submit_v2)
    assert err.code == code
    assert err.status == status
    assert err.retryable is retryable
    assert err.provider_message == "Segmind's own words"
    assert "Segmind's own words" in err.message
    assert str(err) == err.message


def test_a_404_on_submit_names_the_model():
    err = run_error(answer(404, {"error": "Not Found"}), submit_v2)
    assert err.code == "provider_not_found"
    assert "ai-product-photography" in err.message


@pytest.mark.parametrize("sub", [V2, FLOW], ids=["v2", "workflow"])
@pytest.mark.parametrize("method", ["status", "result"])
def test_a_404_on_a_submitted_request_means_the_result_expired(sub, method):
    err = run_error(answer(404, {"error": "request not found"}), lambda c: getattr(c, method)(sub))
    assert err.code == "result_expired"
    assert err.retryable is False
    assert "one hour" in err.message


def test_out_of_credit_says_so_in_words_a_shop_owner_understands():
    err = run_error(answer(406, None), submit_v2)
    assert err.code == "provider_insufficient_credits"
    assert err.message == (
        "Segmind's account is out of credit, so the image could not be made. "
        "No credit was taken from you."
    )


@pytest.mark.parametrize("method", ["status", "result"])
def test_a_422_on_status_or_result_is_a_failed_poll_with_segminds_error(method):
    body = {"status": "FAILED", "error": "Content blocked by safety filter"}
    poll, _ = run(answer(422, body), lambda c: getattr(c, method)(V2))
    assert poll.state == "FAILED"
    assert poll.error == "Content blocked by safety filter"
    assert poll.finished
    failure = poll.failure()
    assert failure is not None
    assert failure.code == "provider_failed"
    assert failure.retryable is False
    assert failure.message == "Segmind could not make the image: Content blocked by safety filter."


def test_a_422_without_a_readable_body_is_still_a_failed_poll():
    poll, _ = run(lambda r: httpx.Response(422, text="<html>nope</html>"), lambda c: c.status(V2))
    assert poll.state == "FAILED"
    assert poll.error is None
    failure = poll.failure()
    assert failure is not None and failure.message.startswith("Segmind could not make the image")


def test_a_failed_workflow_poll_carries_its_error():
    poll, _ = run(
        answer(200, {"status": "FAILED", "error": "node crashed"}), lambda c: c.result(FLOW)
    )
    assert (poll.state, poll.error, poll.outputs) == ("FAILED", "node crashed", ())


def test_a_429_carries_the_retry_after_in_seconds():
    err = run_error(answer(429, {"error": "slow down"}, headers={"Retry-After": "7"}), submit_v2)
    assert err.code == "provider_rate_limited"
    assert err.retryable is True
    assert err.retry_after == 7.0


def test_retry_after_may_be_an_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30)), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    assert parse_retry_after(None) is None


def test_a_5xx_html_page_does_not_end_up_in_the_message():
    err = run_error(
        lambda r: httpx.Response(502, text="<html><h1>Bad Gateway</h1></html>"), submit_v2
    )
    assert err.code == "provider_unavailable"
    assert err.provider_message == ""
    assert "<html>" not in err.message


# --- transport failures -------------------------------------------------------------


def raising(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)

    return handler


@pytest.mark.parametrize(
    ("exc_type", "code"),
    [
        (httpx.ReadTimeout, "provider_timeout"),
        (httpx.ConnectTimeout, "provider_timeout"),
        (httpx.WriteTimeout, "provider_timeout"),
        (httpx.RemoteProtocolError, "provider_connection"),
        (httpx.ConnectError, "provider_connection"),
        (httpx.ReadError, "provider_connection"),
    ],
)
def test_timeouts_and_dropped_connections_become_retryable_errors(exc_type, code):
    for call in (submit_v2, lambda c: c.status(V2), lambda c: c.result(FLOW)):
        err = run_error(raising(exc_type), call)
        assert err.code == code
        assert err.retryable is True
        assert err.status is None
        assert isinstance(err.__cause__, exc_type)


def test_a_local_protocol_fault_is_not_retried():
    err = run_error(raising(httpx.UnsupportedProtocol), submit_v2)
    assert err.code == "provider_connection"
    assert err.retryable is False


# --- malformed answers --------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="{not json"),
        httpx.Response(200, json=["a", "list"]),
        httpx.Response(200, content=b"\xff\xfe\x00garbage"),
    ],
    ids=["broken-json", "json-list", "binary"],
)
def test_malformed_json_is_a_bad_response_everywhere(response):
    for call in (submit_v2, lambda c: c.status(V2), lambda c: c.result(V2)):
        err = run_error(lambda r: response, call)
        assert err.code == "provider_bad_response"
        assert err.retryable is False


def test_an_unknown_state_is_a_bad_response():
    err = run_error(answer(200, {"status": "DANCING"}), lambda c: c.status(V2))
    assert err.code == "provider_bad_response"


def test_a_completed_result_without_any_image_is_a_bad_response():
    err = run_error(answer(200, {"status": "COMPLETED", "output": None}), lambda c: c.result(V2))
    assert err.code == "provider_bad_response"


def test_a_completed_v2_status_needs_no_output_and_states_are_read_case_blind():
    poll, rec = run(answer(200, {"status": "completed"}), lambda c: c.status(V2))
    assert (poll.state, poll.outputs) == ("COMPLETED", ())
    assert str(rec.requests[0].url) == V2.status_url
    assert rec.requests[0].method == "GET"
    assert rec.requests[0].headers["x-api-key"] == KEY


@pytest.mark.parametrize("state", ["QUEUED", "PROCESSING"])
def test_a_request_in_flight_reports_its_state(state):
    poll, _ = run(answer(200, {"status": state}), lambda c: c.status(V2))
    assert poll.state == state
    assert not poll.finished
    assert poll.failure() is None


# --- outputs ------------------------------------------------------------------------


def result_with(output: Any) -> Poll:
    body = {"status": "COMPLETED", "output": output, "metrics": {"inference_time": 11.67}}
    poll, rec = run(answer(200, body), lambda c: c.result(V2))
    assert str(rec.requests[0].url) == V2.result_url
    return poll


def test_an_output_url_is_read_with_the_inference_time():
    poll = result_with(IMAGE_URL)
    assert poll.outputs == (Output(url=IMAGE_URL),)
    assert poll.inference_time == 11.67
    assert poll.raw["output"] == IMAGE_URL


def test_a_signed_media_url_without_an_image_suffix_is_still_the_output():
    url = "https://cdn.segmind.example/media/3f2a?sig=abc"
    assert result_with(url).outputs == (Output(url=url),)


def test_a_list_of_output_urls_gives_every_image_once():
    other = "https://images.segmind.example/outputs/def.jpg"
    assert result_with([IMAGE_URL, other, IMAGE_URL]).outputs == (
        Output(url=IMAGE_URL),
        Output(url=other),
    )


def test_base64_output_is_decoded_to_the_image_bytes():
    assert result_with(PNG_B64).outputs == (Output(data=PNG),)


def test_a_data_uri_output_is_decoded_to_the_image_bytes():
    assert result_with(f"data:image/png;base64,{PNG_B64}").outputs == (Output(data=PNG),)


def test_a_dict_output_gives_the_image_it_holds():
    poll = result_with({"image": IMAGE_URL, "seed": 42, "request": "abcdef"})
    assert poll.outputs == (Output(url=IMAGE_URL),)


def test_a_workflow_output_is_a_json_string_with_the_image_nested_anywhere():
    document = {
        "meta": {"docs": "https://docs.segmind.example/workflows", "id": "x" * 80},
        "nodes": [
            {"node": 1, "outputs": {}},
            {"node": 7, "outputs": {"images": [{"deep": {"er": [{"url": IMAGE_URL}]}}]}},
        ],
    }
    body = {"status": "COMPLETED", "output": json.dumps(document)}
    for call in (lambda c: c.status(FLOW), lambda c: c.result(FLOW)):
        poll, rec = run(answer(200, body), call)
        assert poll.outputs == (Output(url=IMAGE_URL),)
        assert str(rec.requests[0].url) == FLOW.status_url
        assert rec.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_workflow_output_may_carry_the_image_as_base64():
    body = {"status": "COMPLETED", "output": json.dumps({"result": {"img": PNG_B64}})}
    poll, _ = run(answer(200, body), lambda c: c.result(FLOW))
    assert poll.outputs == (Output(data=PNG),)


def test_long_strings_that_are_not_images_are_not_taken_for_base64_images():
    assert find_outputs({"hash": "ab" * 64, "token": "A" * 128}) == ()


def test_an_output_holds_exactly_one_of_url_and_data():
    with pytest.raises(ValueError):
        Output()
    with pytest.raises(ValueError):
        Output(url=IMAGE_URL, data=PNG)


# --- the key stays secret -----------------------------------------------------------


def test_the_key_never_appears_in_the_client_repr():
    client = SegmindClient(KEY, BASE, transport=httpx.MockTransport(answer()))
    assert KEY not in repr(client)
    assert KEY not in str(client)
    asyncio.run(client.aclose())
    assert client.is_closed


@pytest.mark.parametrize("status", [400, 401, 403, 404, 406, 422, 429, 500])
def test_the_key_never_appears_in_an_error_even_when_segmind_echoes_it(status):
    echo = answer(status, {"error": f"bad key {KEY} for you"}, headers={"x-api-key": KEY})
    err = run_error(echo, submit_v2)
    for text in (str(err), repr(err), err.message, err.provider_message):
        assert KEY not in text
    assert "[redacted]" in err.provider_message


def test_the_key_never_appears_in_transport_or_failed_poll_errors():
    err = run_error(raising(httpx.ConnectError), submit_v2)
    assert KEY not in str(err) + repr(err) + err.provider_message
    poll, _ = run(answer(422, {"status": "FAILED", "error": KEY}), lambda c: c.status(V2))
    assert KEY not in (poll.error or "")
    failure = poll.failure()
    assert failure is not None and KEY not in str(failure)


def test_an_error_survives_pickling_with_all_its_fields():
    err = SegmindError("provider_rate_limited", "busy", 429, True, 3.0, "slow down")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.code, copy.message, copy.status, copy.retryable, copy.retry_after) == (
        "provider_rate_limited",
        "busy",
        429,
        True,
        3.0,
    )
    assert copy.provider_message == "slow down"


# --- concurrency --------------------------------------------------------------------


def test_no_more_requests_are_in_flight_than_the_pool_has_connections():
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"status": "PROCESSING"})

    async def go() -> list[Poll]:
        async with SegmindClient(
            KEY, BASE, transport=httpx.MockTransport(handler), max_connections=3
        ) as client:
            return await asyncio.gather(*(client.status(V2) for _ in range(20)))

    polls = asyncio.run(go())
    assert len(polls) == 20
    assert peak == 3


def test_the_default_timeouts_are_explicit():
    timeout = segmind.DEFAULT_TIMEOUT
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (5.0, 30.0, 30.0, 10.0)


# --- retrying -----------------------------------------------------------------------


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class TopOfRange(random.Random):
    """Always draws the top of the jitter range, to show the range itself."""

    def uniform(self, a: float, b: float) -> float:
        return b


def failing(*errors: SegmindError, then: Any = "done") -> tuple[Callable[[], Any], list[int]]:
    calls: list[int] = []

    async def fn() -> Any:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return then

    return fn, calls


def transient(retry_after: float | None = None) -> SegmindError:
    return SegmindError("provider_unavailable", "down", 503, True, retry_after)


def test_backoff_doubles_each_time_up_to_the_cap():
    fn, calls = failing(*[transient() for _ in range(6)])
    sleep = FakeSleep()
    result = asyncio.run(
        call_with_retries(
            fn, attempts=7, base_delay=0.5, max_delay=10.0, sleep=sleep, rng=TopOfRange()
        )
    )
    assert result == "done"
    assert len(calls) == 7
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]


def test_jitter_stays_between_zero_and_the_backoff_ceiling():
    fn, _ = failing(*[transient() for _ in range(9)])
    sleep = FakeSleep()
    asyncio.run(
        call_with_retries(
            fn, attempts=10, base_delay=0.5, max_delay=20.0, sleep=sleep, rng=random.Random(1234)
        )
    )
    assert len(sleep.delays) == 9
    for attempt, delay in enumerate(sleep.delays):
        assert 0.0 <= delay <= min(20.0, 0.5 * 2**attempt)
    assert len(set(sleep.delays)) == 9  # jittered, not a fixed schedule


def test_retry_after_is_a_floor_capped_at_max_delay():
    fn, _ = failing(transient(retry_after=3.0), transient(retry_after=600.0))
    sleep = FakeSleep()
    asyncio.run(
        call_with_retries(fn, base_delay=0.1, max_delay=20.0, sleep=sleep, rng=random.Random(5))
    )
    assert sleep.delays[0] >= 3.0
    assert sleep.delays[1] == 20.0


def test_a_permanent_error_is_raised_at_once():
    permanent = SegmindError("provider_unauthorized", "no", 401, False)
    fn, calls = failing(permanent)
    sleep = FakeSleep()
    with pytest.raises(SegmindError) as caught:
        asyncio.run(call_with_retries(fn, sleep=sleep))
    assert caught.value is permanent
    assert len(calls) == 1
    assert sleep.delays == []


def test_other_exceptions_are_not_retried():
    calls: list[int] = []

    async def fn() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        asyncio.run(call_with_retries(fn, sleep=FakeSleep()))
    assert len(calls) == 1


def test_retries_give_up_after_the_attempts_and_raise_the_last_error():
    errors = [transient() for _ in range(5)]
    fn, calls = failing(*errors)
    sleep = FakeSleep()
    with pytest.raises(SegmindError) as caught:
        asyncio.run(call_with_retries(fn, attempts=3, sleep=sleep, rng=random.Random(0)))
    assert caught.value is errors[2]
    assert len(calls) == 3
    assert len(sleep.delays) == 2


def test_retries_wrap_real_client_calls():
    answers = iter(
        [httpx.Response(503), httpx.Response(429), httpx.Response(200, json={"status": "QUEUED"})]
    )
    sleep = FakeSleep()
    poll, rec = run(
        lambda r: next(answers),
        lambda c: call_with_retries(lambda: c.status(V2), sleep=sleep, rng=random.Random(2)),
    )
    assert poll.state == "QUEUED"
    assert len(rec.requests) == 3
    assert len(sleep.delays) == 2


def test_the_gate_lets_polls_in_before_submissions_that_waited_longer():
    from jobs.engines.segmind.client import PriorityGate

    async def scenario() -> list[str]:
        gate = PriorityGate(1)
        order: list[str] = []
        await gate.acquire(0)  # the one slot is taken

        async def request(name: str, priority: int) -> None:
            async with gate.slot(priority):
                order.append(name)

        waiting = [
            asyncio.create_task(request("submit-1", 1)),
            asyncio.create_task(request("submit-2", 1)),
        ]
        await asyncio.sleep(0)
        waiting.append(asyncio.create_task(request("poll", 0)))
        await asyncio.sleep(0)
        gate.release()
        await asyncio.gather(*waiting)
        return order

    assert asyncio.run(scenario()) == ["poll", "submit-1", "submit-2"]


def test_a_cancelled_waiter_does_not_keep_a_slot_of_the_gate():
    from jobs.engines.segmind.client import PriorityGate

    async def scenario() -> bool:
        gate = PriorityGate(1)
        await gate.acquire()
        stuck = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
        gate.release()
        await asyncio.wait_for(gate.acquire(), 1)  # the slot came back
        return True

    assert asyncio.run(scenario())
