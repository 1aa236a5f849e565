"""The API's IDOR matrix: no workspace reaches another's objects, through any route.

The routes come from the URL resolver (`productstudio.urls.api_patterns`), with every
HTTP method each one answers. For each (route, method), workspace B (the outsider) aims a
request at an object of workspace A (the tenant), with B's API key and with B's signed-in
session: B gets 404 `not_found` in the problem shape, and no row of either workspace
changes. Then A, doing the same with its own key, gets anything but 404.

A route or a method missing from the tables below fails the suite, naming it. To add one:

1. If its URL names an object (`<uuid:batch_id>`), add that object of workspace A to the
   `objects` fixture under the converter's name (`"batch_id": batch.pk`).
2. Add a line per method to `CASES` (a request at one object), `LIST_CASES` (a list that
   must not show A's objects to B) or, for routes without a workspace's objects,
   `NOT_OBJECT_ROUTES` with the reason.

`Case(body=...)` is the JSON body (or a function of `objects` returning it); for a body
that names A's object rather than the URL, say how B is refused (`refused=400`,
`code="validation_error"`, `field="preset"`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from accounts import services as account_services
from accounts.models import Tenant, User
from jobs import services as job_services
from jobs.models import AssetKind, Batch, Job
from productstudio.urls import api_patterns
from tests.conftest import login_client
from tests.support.api_helpers import key_client

PACKSHOT = "bria-product-packshot"
Objects = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One request of workspace B at workspace A's object, and how B is refused."""

    body: dict[str, Any] | Callable[[Objects], dict[str, Any]] | None = None
    # POST only: the body as a form with files (`jobs` takes an image that way).
    multipart: bool = False
    refused: int = 404
    code: str = "not_found"
    # With a body naming A's object: the field the refusal must name.
    field: str | None = None
    # A POST that makes a new object in the caller's own workspace, naming none of A's:
    # B's request succeeds with this status and A's rows stay as they were.
    creates: int | None = None


def _job_naming_the_tenants_preset(objects: Objects) -> dict[str, Any]:
    return {
        "model": PACKSHOT,
        "preset": str(objects["preset_id"]),
        "image": SimpleUploadedFile("mug.jpg", objects["jpeg"], content_type="image/jpeg"),
    }


# (route name, method) -> the case. The URL's objects come from `objects` by converter name.
CASES: dict[tuple[str, str], Case] = {
    ("api_job", "GET"): Case(),
    ("api_job_cancel", "POST"): Case(),
    ("api_jobs", "POST"): Case(
        body=_job_naming_the_tenants_preset,
        multipart=True,
        refused=400,
        code="validation_error",
        field="preset",
    ),
    ("api_job_rerun", "POST"): Case(),
    ("api_presets", "POST"): Case(
        body={"model": PACKSHOT, "name": "B's white", "params": {}}, creates=201
    ),
    ("api_preset", "GET"): Case(),
    ("api_preset", "PATCH"): Case(body={"name": "Taken over"}),
    ("api_preset", "DELETE"): Case(),
    ("api_preset_copy", "POST"): Case(),
    ("api_batches", "POST"): Case(
        body=lambda objects: {
            "model": PACKSHOT,
            "preset": str(objects["preset_id"]),
            # Refused before any connection: a private address.
            "items": [{"image_url": "http://127.0.0.1:9/mug.jpg"}],
        },
        refused=400,
        code="validation_error",
        field="preset",
    ),
    ("api_batch", "GET"): Case(),
    ("api_asset", "GET"): Case(),
    ("api_webhooks", "POST"): Case(
        body=lambda objects: {"url": objects["hook_url"], "event_types": ["job.succeeded"]},
        creates=201,
    ),
    ("api_webhook", "GET"): Case(),
    ("api_webhook", "DELETE"): Case(),
    ("api_webhook_test", "POST"): Case(),
    ("api_webhook_deliveries", "GET"): Case(),
}

# (route name, method) -> the object of A the list would show: B's page (`results`) lists
# none of A's objects, A's lists this one.
LIST_CASES: dict[tuple[str, str], str] = {
    ("api_jobs", "GET"): "job_id",
    ("api_presets", "GET"): "preset_id",
    ("api_batches", "GET"): "batch_id",
    ("api_assets", "GET"): "asset_id",
    ("api_credits_ledger", "GET"): "entry_id",
    ("api_webhooks", "GET"): "endpoint_id",
}

# Routes whose answers hold no workspace's objects, with the reason.
NOT_OBJECT_ROUTES: dict[str, str] = {
    "api_models": "the catalog: the same models for every workspace (only prices differ)",
    "api_model": "one model of the catalog, named by its public slug",
    "api_model_resolve": "checks parameters against the catalog; stores and reads nothing",
    "api_credits": "the caller's own workspace's balance: nothing in the URL names another",
    "api_webhook_secret": "the caller's own workspace's secret: nothing in the URL names another",
    "api_asset_download": "no key or session: its signature is the permission (a missing, "
    "tampered or expired one is refused: tests/jobs/api/test_assets.py)",
}

# HTTP methods answered without running the view, so they cannot reach an object.
NOT_OBJECT_METHODS: dict[str, str] = {
    "OPTIONS": "DRF describes the view (name, description, parsers); the view never runs",
}
NOT_OBJECT_METHODS_LOWER = {m.lower() for m in NOT_OBJECT_METHODS}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    converters: frozenset[str]
    methods: tuple[str, ...]


def _methods(callback: Any) -> tuple[str, ...]:
    view_class = getattr(callback, "cls", None)
    assert view_class is not None, f"{callback!r}: API views are DRF views (@api_view)"
    # What the view answers; @api_view answers HEAD only when it is listed.
    return tuple(
        sorted(m.upper() for m in view_class.http_method_names if m not in NOT_OBJECT_METHODS_LOWER)
    )


def _routes(patterns: list[Any], prefix: str = "", converters: frozenset[str] = frozenset()):
    for p in patterns:
        found = converters | set(p.pattern.converters)
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern), frozenset(found))
        elif isinstance(p, URLPattern):
            assert p.name, f"API route {prefix}{p.pattern} needs a name"
            yield Route(p.name, prefix + str(p.pattern), frozenset(found), _methods(p.callback))


ROUTES = list(_routes(api_patterns))
PAIRS = [
    (route.name, method)
    for route in ROUTES
    if route.name not in NOT_OBJECT_ROUTES
    for method in route.methods
]


def _case(name: str, method: str) -> Case | str:
    # HEAD runs the GET handler: the GET case serves it.
    key = (name, "GET" if method == "HEAD" else method)
    found = CASES.get(key) or LIST_CASES.get(key)
    if found is None:
        route = next(r for r in ROUTES if r.name == name)
        pytest.fail(
            f"no IDOR case for {method} {name} (/api/v1/{route.pattern}): add one to CASES "
            "or LIST_CASES in tests/test_api_tenancy.py, or the route to NOT_OBJECT_ROUTES"
        )
    return found


# --- the workspaces and their objects ------------------------------------------------------


@pytest.fixture
def objects(
    tenant: Tenant,
    owner: User,
    product_jpeg,
    django_capture_on_commit_callbacks,
    settings,
    http_server,
):
    """Workspace A's objects, by the name of the URL converter that names them."""
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_submit(
            tenant=tenant,
            user=owner,
            model=PACKSHOT,
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
    preset = job_services.preset_create(
        tenant=tenant,
        user=owner,
        model=PACKSHOT,
        name="House white",
        params={"background_color": "#FAFAFA"},
    )
    batch = Batch.objects.create(tenant=tenant, name="A's batch", created_by=owner)
    Job.objects.filter(pk=job.pk).update(batch=batch)
    entry = account_services.credits_grant(tenant=tenant, amount=5, user=owner, memo="A's")
    # Its test events go to a server on this machine.
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    http_server.route("/hooks")
    endpoint = account_services.webhook_endpoint_create(
        tenant=tenant, url=http_server.url("/hooks"), created_by=owner
    ).endpoint
    return {
        "job_id": job.pk,
        "asset_id": job.assets.get(kind=AssetKind.OUTPUT).pk,
        "preset_id": preset.pk,
        "batch_id": batch.pk,
        "entry_id": entry.pk,
        "endpoint_id": endpoint.pk,
        "hook_url": http_server.url("/hooks"),
        "jpeg": product_jpeg,
    }


@pytest.fixture
def workspace_b(outsider: User) -> Tenant:
    return Tenant.objects.get(memberships__user=outsider)


def _session_client(user: User, tenant: Tenant) -> Client:
    client = login_client(user)
    # The API's session door uses the workspace last opened in the portal.
    client.get(reverse("dashboard", args=[tenant.slug]))
    return client


@pytest.fixture(params=["api_key", "session"])
def caller_b(request, outsider: User, workspace_b: Tenant) -> Client:
    if request.param == "api_key":
        return key_client(workspace_b)
    return _session_client(outsider, workspace_b)


def _snapshot(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every row of the workspace, in every model with a foreign key to it."""
    rows: dict[str, list[dict[str, Any]]] = {
        "tenant": [dict(Tenant.objects.filter(pk=tenant.pk).values().get())]
    }
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignKey) and field.related_model is Tenant:
                qs = model._default_manager.filter(**{field.name: tenant}).order_by("pk")
                found = [
                    # Each request with a key touches its last-used time: not an object change.
                    {k: v for k, v in row.items() if k != "last_used_at"}
                    for row in qs.values()
                ]
                rows[f"{model._meta.label}.{field.name}"] = found
    return rows


def _send(client: Client, method: str, route: Route, case: Case, objects: Objects):
    kwargs = {}
    for converter in route.converters:
        assert converter in objects, (
            f"no object of workspace A for <{converter}> of route {route.name!r}: "
            "add it to the `objects` fixture of tests/test_api_tenancy.py"
        )
        kwargs[converter] = objects[converter]
    url = reverse(route.name, kwargs=kwargs)
    body = case.body(objects) if callable(case.body) else case.body
    if case.multipart:
        assert method == "POST", "multipart bodies go with POST"
        return client.post(url, body or {})
    if body is None:
        return client.generic(method, url)
    return client.generic(method, url, json.dumps(body), content_type="application/json")


def _ids(objects: Objects) -> list[str]:
    return [str(v) for k, v in objects.items() if k.endswith("_id")]


def _listed(response) -> set[str]:
    return {str(item["id"]) for item in response.json()["results"]}


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "method"), PAIRS, ids=[f"{m} {n}" for n, m in PAIRS])
def test_workspace_b_cannot_reach_workspace_as_objects(
    name, method, caller_b, workspace_b, tenant, objects
):
    case = _case(name, method)
    route = next(r for r in ROUTES if r.name == name)
    before = (_snapshot(tenant), _snapshot(workspace_b))

    if isinstance(case, str):
        response = _send(caller_b, method, route, Case(), objects)
        assert response.status_code == 200, response.content
        assert str(objects[case]) not in _listed(response), f"{name} lists A's objects"
    elif case.creates:
        response = _send(caller_b, method, route, case, objects)
        assert response.status_code == case.creates, response.content
        assert _snapshot(tenant) == before[0]
        return  # B's own workspace has its new object
    else:
        response = _send(caller_b, method, route, case, objects)
        assert response.status_code == case.refused, response.content
        assert response["Content-Type"] == "application/problem+json"
        if method != "HEAD":
            body = response.json()
            assert body["code"] == case.code
            if case.field:
                assert case.field in body["errors"], body
        assert tenant.name not in response.content.decode()

    assert (_snapshot(tenant), _snapshot(workspace_b)) == before


@pytest.mark.parametrize(("name", "method"), PAIRS, ids=[f"{m} {n}" for n, m in PAIRS])
def test_workspace_a_reaches_its_own_objects(name, method, tenant, objects):
    case = _case(name, method)
    route = next(r for r in ROUTES if r.name == name)

    response = _send(
        key_client(tenant), method, route, Case() if isinstance(case, str) else case, objects
    )

    assert response.status_code != 404, response.content
    assert response.status_code < 500, response.content
    if isinstance(case, str):
        assert str(objects[case]) in _listed(response), response.content
    if isinstance(case, Case) and case.field and response.status_code == 400:
        assert case.field not in response.json().get("errors", {}), response.content


def test_the_tables_name_only_routes_and_methods_that_exist():
    pairs = {(r.name, m) for r in ROUTES for m in r.methods}
    names = {r.name for r in ROUTES}
    stale: list[Any] = [key for key in (*CASES, *LIST_CASES) if key not in pairs]
    stale += [name for name in NOT_OBJECT_ROUTES if name not in names]
    assert not stale, f"cases for routes or methods the API no longer has: {stale}"
    assert not [key for key in CASES if key in LIST_CASES], "a pair is in CASES and LIST_CASES"


def test_the_matrix_covers_the_jobs_routes():
    # The generator itself: it finds the routes and their methods.
    assert ("api_job", "GET") in PAIRS
    assert ("api_jobs", "POST") in PAIRS and ("api_job_cancel", "POST") in PAIRS
    assert ("api_job_cancel", "GET") not in PAIRS
    assert not [pair for pair in PAIRS if pair[0] in NOT_OBJECT_ROUTES]


@pytest.mark.parametrize("name", [r.name for r in ROUTES if r.name not in NOT_OBJECT_ROUTES])
def test_options_describes_the_view_without_reaching_the_object(name, workspace_b, objects):
    route = next(r for r in ROUTES if r.name == name)

    response = _send(key_client(workspace_b), "OPTIONS", route, Case(), objects)

    assert response.status_code == 200
    assert set(response.json()) <= {"name", "description", "renders", "parses"}
    for object_id in _ids(objects):
        assert object_id not in json.dumps(response.json()["name"])
