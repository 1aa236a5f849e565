"""Hostile bodies get 400s, and every error of the API is a problem, with DEBUG on too
(issue 18, point 5): a JSON body nested 100,000 deep (once a RecursionError, a 500), one
larger than API_MAX_BODY_BYTES (refused from its Content-Length, unread), one that is not
JSON; an exception in a view or a middleware, a URL no route matches, a method or content
type a route does not take. The portal's pages stay HTML."""

from __future__ import annotations

import io
import json
import logging
import random
import uuid
from typing import Any

import pytest
from django.http import Http404
from django.test import Client
from django.urls import URLPattern, reverse

from accounts.models import CreditEntry, StripeEvent, Tenant, WebhookEndpoint
from jobs.models import Batch, Job, Preset
from productstudio.lib import parsers
from productstudio.lib.errors import Problem
from productstudio.lib.parsers import MAX_JSON_DEPTH, json_depth
from productstudio.urls import api_patterns
from tests.support.api_helpers import assert_problem, key_client
from tests.support.fake_stripe import checkout_event, sign

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
STRIPE_SECRET = "whsec_test_productstudio"


@pytest.fixture
def api(tenant: Tenant) -> Client:
    return key_client(tenant)


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request: pytest.FixtureRequest, settings: Any) -> bool:
    settings.DEBUG = request.param
    return bool(request.param)


@pytest.fixture
def stripe_settings(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_productstudio"
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET


def _created(tenant: Tenant) -> list[int]:
    """Everything a body could have made."""
    return [
        Job.objects.count(),
        Batch.objects.count(),
        Preset.objects.count(),
        WebhookEndpoint.objects.count(),
        CreditEntry.objects.count(),
        StripeEvent.objects.count(),
    ]


class CountingStream(io.RawIOBase):
    """A request body that never ends, counting the bytes the server reads of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b"[" * size
        self.read_bytes += size
        return size


# -- the depth, measured without recursion -----------------------------------------------


def test_the_depth_counts_arrays_and_objects_but_not_brackets_inside_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[{{{"}]}') == 3
    assert json_depth(b'["a \\" [[[ \\\\", ["\\u005b"]]') == 2
    assert json_depth(b"42") == 0
    assert json_depth(DEEP) == 100_000


def _true_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_true_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_true_depth, value), default=0)
    return 0


def _random_json(rng: random.Random, depth: int) -> Any:
    tricky = ['"', "\\", "[", "]", "{", "}", '\\"', "é", "\n", "a"]
    kind = rng.choice(["list", "dict", "text", "number"] if depth < 8 else ["text", "number"])
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        return {
            "".join(rng.choices(tricky, k=3)): _random_json(rng, depth + 1)
            for _ in range(rng.randint(0, 3))
        }
    if kind == "text":
        return "".join(rng.choices(tricky, k=rng.randint(0, 6)))
    return rng.randint(-5, 5)


def test_the_depth_of_any_json_is_counted_exactly():
    rng = random.Random(18)
    for _ in range(3000):
        value = _random_json(rng, 0)
        for raw in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
            assert json_depth(raw.encode()) == _true_depth(value), raw


def test_a_body_far_too_deep_is_refused_after_its_first_brackets():
    assert MAX_JSON_DEPTH < json_depth(DEEP, stop_above=MAX_JSON_DEPTH) < 100_000


def test_a_string_never_closed_ends_the_count():
    assert json_depth(b'[["[[[[[[[[') == 2
    assert json_depth(b'[["\\') == 2


@pytest.mark.parametrize(
    "body",
    [
        b'["' + b'\\"' * (512 * 1024 - 2),  # a string never closed, full of escaped quotes
        b'["' + b"\\" * (1024 * 1024 - 2),
        b"[" + b'"' * (1024 * 1024 - 1),
    ],
    ids=["escaped-quotes", "backslashes", "quotes"],
)
def test_a_megabyte_of_quotes_and_escapes_is_scanned_in_one_pass(api: Client, body: bytes):
    # The first string pattern took 73 s on 80 KB of the first body (each escaped quote
    # began a new match to the end): quadratic. This test would take hours.
    assert len(body) <= 1024 * 1024

    response = api.post("/api/v1/jobs", body, content_type="application/json")

    assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("depth", "refused"), [(MAX_JSON_DEPTH, False), (MAX_JSON_DEPTH + 1, True)]
)
def test_the_api_takes_64_levels_and_refuses_65(api: Client, depth: int, refused: bool):
    body = b'{"model": "bria-product-packshot", "params": ' + b"[" * (depth - 1)
    body += b"]" * (depth - 1) + b"}"

    response = api.post("/api/v1/jobs", body, content_type="application/json")

    if refused:
        assert_problem(response, 400, "json_too_deep")
    else:
        assert response.status_code == 400  # refused by the serializer, not the parser
        assert response.json()["code"] == "validation_error"


def test_a_json_body_is_scanned_for_depth_once_per_request(api: Client, monkeypatch):
    scans: list[int] = []
    real = parsers.json_depth

    def counting(raw: bytes, **kwargs: Any) -> int:
        scans.append(len(raw))
        return real(raw, **kwargs)

    monkeypatch.setattr(parsers, "json_depth", counting)
    body = json.dumps({"model": "bria-product-packshot", "params": {"x": [[1]]}})

    # Through the middleware, the idempotency fingerprint and DRF's parser.
    api.post("/api/v1/jobs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="once-1")

    assert scans == [len(body)]


# -- deep bodies, on the routes that create or change something --------------------------


@pytest.fixture
def objects(tenant: Tenant, owner: Any) -> dict[str, str]:
    from jobs import services as job_services

    preset = job_services.preset_create(
        tenant=tenant, user=owner, model="bria-product-packshot", name="House", params={}
    )
    return {"preset_id": str(preset.pk)}


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/jobs"),
        ("post", "/api/v1/batches"),
        ("post", "/api/v1/presets"),
        ("patch", "/api/v1/presets/{preset_id}"),
        ("post", "/api/v1/presets/{preset_id}/copy"),
        ("post", "/api/v1/webhooks"),
        ("post", "/api/v1/models/bria-product-packshot/resolve"),
    ],
)
def test_a_body_nested_100000_deep_is_refused_naming_the_problem_and_nothing_is_created(
    api: Client,
    tenant: Tenant,
    objects: dict[str, str],
    debug: bool,
    method: str,
    path: str,
    body: bytes,
):
    before = _created(tenant)

    response = getattr(api, method)(path.format(**objects), body, content_type="application/json")

    problem = assert_problem(response, 400, "json_too_deep")
    assert problem["detail"] == ("The JSON body nests deeper than 64 levels of arrays and objects.")
    assert _created(tenant) == before


def test_a_deep_body_with_an_idempotency_key_is_refused_and_the_key_stays_free(
    api: Client, tenant: Tenant
):
    for content_type in ("application/json", "text/plain"):
        response = api.post(
            "/api/v1/jobs", DEEP, content_type=content_type, HTTP_IDEMPOTENCY_KEY="k1"
        )
        assert response["Content-Type"] == "application/problem+json"
        assert response.status_code in (400, 415), response.content
    assert not Job.objects.exists()


def _sample_kwargs(pattern: URLPattern) -> dict[str, Any]:
    samples = {"uuid": uuid.uuid4(), "int": 1, "string": "bria-product-packshot"}
    converters = pattern.pattern.converters
    return {
        name: samples[type(converter).__name__.removesuffix("Converter").lower()]
        for name, converter in converters.items()
    }


API_ROUTES = [pattern for pattern in api_patterns if isinstance(pattern, URLPattern)]


def test_every_route_of_the_api_is_in_the_loop_below():
    assert len(API_ROUTES) == len(api_patterns) >= 20


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("pattern", API_ROUTES, ids=[p.name or "" for p in API_ROUTES])
def test_no_route_of_the_api_parses_a_deep_body(
    api: Client, tenant: Tenant, pattern: URLPattern, method: str
):
    # Refused before the route's view, its authentication or its method check run: a new
    # route can't forget it.
    path = reverse(str(pattern.name), kwargs=_sample_kwargs(pattern))
    before = _created(tenant)

    response = getattr(api, method)(path, DEEP, content_type="application/json")

    assert_problem(response, 400, "json_too_deep")
    assert _created(tenant) == before
    anonymous = getattr(Client(), method)(path, DEEP, content_type="application/json")
    assert_problem(anonymous, 400, "json_too_deep")


# -- too large: refused from Content-Length, unread -------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/webhooks", "/stripe/webhook/"])
def test_a_huge_body_is_refused_from_its_content_length_without_reading_it(
    api: Client, tenant: Tenant, stripe_settings: None, path: str
):
    stream = CountingStream()
    environ: dict[str, Any] = {"wsgi.input": stream, "CONTENT_LENGTH": str(10**10)}
    before = _created(tenant)

    response = api.generic("POST", path, content_type="application/json", **environ)

    problem = assert_problem(response, 400, "body_too_large")
    assert "1048576 bytes" in problem["detail"]
    assert stream.read_bytes == 0
    assert _created(tenant) == before


def test_the_limit_is_a_setting_and_a_body_of_exactly_the_limit_is_read(api: Client, settings: Any):
    settings.API_MAX_BODY_BYTES = 1000
    body = json.dumps({"name": "x" * 2000}).encode()
    at_limit = json.dumps({"model": "bria-product-packshot", "pad": ""}).encode()
    at_limit = at_limit[:-2] + b" " * (1000 - len(at_limit)) + b'"}'

    too_large = api.post("/api/v1/presets", body, content_type="application/json")
    assert_problem(too_large, 400, "body_too_large")
    assert "1000 bytes" in too_large.json()["detail"]
    assert len(at_limit) == 1000
    read = api.post("/api/v1/presets", at_limit, content_type="application/json")
    assert read.json()["code"] == "validation_error"  # parsed, then refused by the serializer


def test_the_parser_stops_reading_one_byte_past_the_limit(settings: Any):
    # Without a Content-Length to trust (a stream that would not stop), the read is bounded.
    settings.API_MAX_BODY_BYTES = 4096
    stream = CountingStream()

    with pytest.raises(Problem) as refused:
        parsers.JSONParser().parse(io.BufferedReader(stream, buffer_size=1024), None, {})

    assert refused.value.code == "body_too_large"
    assert stream.read_bytes <= 4096 + 1024


def test_a_multipart_upload_keeps_its_own_size_rules(
    api: Client, settings: Any, product_jpeg: bytes
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.API_MAX_BODY_BYTES = 1000
    assert len(product_jpeg) > 1000

    response = api.post(
        "/api/v1/jobs",
        {
            "model": "bria-product-packshot",
            "image": SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        },
    )

    assert response.status_code == 201, response.content


# -- not JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"model": "bria-product-packshot",}', "line 1, column 35"),
        (b'{"model":\n  nope}', "line 2, column 3"),
        (b'{"model": "\xff"}', "not utf-8 text"),
        (b'{"seed": NaN}', "NaN"),
        (b'{"model": "unterminated [[[[', "line 1, column 11"),
    ],
)
def test_a_body_that_is_not_json_is_refused_saying_where(
    api: Client, tenant: Tenant, body: bytes, where: str
):
    before = _created(tenant)

    response = api.post("/api/v1/jobs", body, content_type="application/json")

    problem = assert_problem(response, 400, "invalid_json")
    assert where.lower() in problem["detail"].lower()
    assert _created(tenant) == before


# -- Stripe's webhook ---------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_stripes_webhook_refuses_a_deep_body_before_its_signature(
    tenant: Tenant, stripe_settings: None, signed: bool
):
    signature = sign(DEEP, STRIPE_SECRET) if signed else "t=1,v1=forged"

    response = Client().post(
        "/stripe/webhook/", DEEP, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )

    assert_problem(response, 400, "json_too_deep")
    assert not StripeEvent.objects.exists()
    assert not CreditEntry.objects.filter(kind="purchase").exists()


def test_stripes_webhook_still_takes_a_signed_event(tenant: Tenant, stripe_settings: None):
    body = json.dumps(checkout_event("cs_unknown", amount_total=100)).encode()

    response = Client().post(
        "/stripe/webhook/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, STRIPE_SECRET),
    )

    assert response.status_code == 200, response.content


# -- every error of the API is a problem, DEBUG or not -----------------------------------


def test_an_exception_in_an_api_view_is_a_problem_with_a_request_id_and_no_traceback(
    api: Client, credits_api_fails_with: Any, caplog: pytest.LogCaptureFixture, debug: bool
):
    credits_api_fails_with(RuntimeError("secret internals"))

    with caplog.at_level(logging.ERROR, logger="productstudio.middleware"):
        response = api.get("/api/v1/credits")

    problem = assert_problem(response, 500, "server_error")
    assert problem["request_id"] in problem["detail"]
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content
    logged = [r for r in caplog.records if problem["request_id"] in r.getMessage()]
    assert logged and logged[0].exc_info and "secret internals" in str(logged[0].exc_info[1])


def test_an_exception_in_a_middleware_on_an_api_path_is_a_problem(
    tenant: Tenant, idempotency_begin_fails: None, debug: bool
):
    client = key_client(tenant, raise_request_exception=False)

    response = client.post(
        "/api/v1/presets", {}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )

    problem = assert_problem(response, 500, "server_error")
    assert problem["request_id"]
    assert b"secret internals" not in response.content


def test_a_not_found_raised_in_an_api_view_is_a_problem(
    api: Client, credits_api_fails_with: Any, debug: bool
):
    credits_api_fails_with(Http404("no such workspace"))

    assert_problem(api.get("/api/v1/credits"), 404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/api/v2/jobs", "/api/v1/jobs/not-a-uuid"]
)
def test_an_unknown_api_path_is_a_problem(api: Client, debug: bool, path: str):
    problem = assert_problem(api.get(path), 404, "not_found")

    assert path in problem["detail"]
    assert_problem(Client().post(path, {}, content_type="application/json"), 404, "not_found")


def test_a_method_or_content_type_a_route_does_not_take_is_a_problem(api: Client, debug: bool):
    refused_method = api.delete("/api/v1/jobs")
    assert_problem(refused_method, 405, "method_not_allowed")
    assert "GET" in refused_method["Allow"]
    refused_type = api.post("/api/v1/presets", "name=x", content_type="text/plain")
    assert_problem(refused_type, 415, "unsupported_media_type")


def test_too_many_form_fields_is_a_problem(api: Client, settings: Any, debug: bool):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = {f"f{i}": "x" for i in range(20)}

    response = api.post("/api/v1/jobs", fields)  # multipart

    problem = assert_problem(response, 400, "bad_request")
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in problem["detail"]
    assert not Job.objects.exists()


def test_form_fields_over_djangos_limit_are_a_problem(api: Client, settings: Any, debug: bool):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api.post("/api/v1/jobs", {"model": "bria-product-packshot", "params": "x" * 5000})

    problem = assert_problem(response, 400, "body_too_large")
    assert "1000 bytes" in problem["detail"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("path", ["/w/no-such-workspace/", "/no-such-page/"])
def test_a_portal_page_that_does_not_exist_stays_html(owner_client: Client, debug: bool, path: str):
    response = owner_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_signed_in_post_without_its_csrf_token_is_a_problem(
    owner: Any, tenant: Tenant, debug: bool
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    response = client.post("/api/v1/presets", {"name": "x"}, content_type="application/json")

    problem = assert_problem(response, 403, "forbidden")
    assert "CSRF" in problem["detail"]
    assert not Preset.objects.filter(name="x").exists()
