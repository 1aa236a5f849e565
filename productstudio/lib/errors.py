"""The one shape of a refused operation: a stable code and a message for a person, and
the API's rendering of it (problem+json)."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from typing import Any

from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.exceptions import APIException
from rest_framework.response import Response


class CodedError(Exception):
    """A failure with a stable `code` (for the API and logs) and a human `message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


# --- the API's errors: one shape everywhere (RFC 9457, application/problem+json) ---------

PROBLEM_CONTENT_TYPE = "application/problem+json"

# The HTTP status of each stable code a service may refuse with.
STATUS_OF_CODE = {
    "validation_error": 400,
    "invalid_json": 400,
    "json_too_deep": 400,
    "body_too_large": 400,
    "insufficient_credits": 402,
    "forbidden": 403,
    "not_found": 404,
    "not_cancelable": 409,
    "idempotency_in_progress": 409,
    "idempotency_mismatch": 422,
    "endpoint_disabled": 409,
    "not_rerunnable": 409,
    "url_expired": 410,
    "model_unavailable": 422,
    "rate_limited": 429,
    "server_error": 500,
    "temporarily_unavailable": 503,
}

# How long a client is told to wait when the database was too busy to answer.
BUSY_RETRY_AFTER_SECONDS = 1

logger = logging.getLogger(__name__)


class Problem(APIException):
    """A refusal the API answers in the problem shape: a stable `code`, a `detail` for a
    person, the fields at fault in `errors`, and any extra members (a link to buy)."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        errors: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, code)
        self.code = code
        self.message = detail
        self.status_code = status or STATUS_OF_CODE.get(code, 400)
        self.errors = dict(errors or {})
        self.extra = dict(extra or {})

    @classmethod
    def of(cls, error: CodedError, **extra: Any) -> Problem:
        return cls(
            error.code, error.message, errors=getattr(error, "errors", None) or None, extra=extra
        )


def _drf_problem(exc: Exception) -> Problem | None:
    """DRF's and Django's own refusals, in the problem shape with stable codes."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, CodedError):
        return Problem.of(exc)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return Problem("not_found", str(getattr(exc, "detail", "")) or "Not found.", status=404)
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        detail = "; ".join(f"{field}: {rule}" for field, rule in errors.items())
        return Problem("validation_error", detail or "The request is not valid.", errors=errors)
    if isinstance(exc, exceptions.Throttled):
        return Problem("rate_limited", str(exc.detail), status=429)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return Problem("not_authenticated", str(exc.detail), status=exc.status_code)
    if isinstance(exc, exceptions.PermissionDenied):
        return Problem("forbidden", str(exc.detail), status=403)
    if isinstance(exc, exceptions.APIException):
        code = str(exc.default_code)
        return Problem(code, str(exc.detail), status=exc.status_code)
    return None


def _field_errors(detail: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(detail, Mapping):
        found: dict[str, str] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            # An object's own errors (not a field's) belong to the object: `items.3`.
            found.update(_field_errors(value, prefix if key == "non_field_errors" else name))
        return found
    if isinstance(detail, list) and any(isinstance(item, Mapping | list) for item in detail):
        # A list of objects (`items`): each one's errors under its index, `items.3.image_url`.
        found = {}
        for index, item in enumerate(detail):
            if item:
                found.update(_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return found
    if isinstance(detail, list):
        return {prefix or "request": " ".join(str(item) for item in detail)}
    return {prefix or "request": str(detail)}


def problem_body(
    code: str, detail: str, *, status: int, errors: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The members every problem has, and the fields at fault when there are some."""
    body: dict[str, Any] = {
        "type": f"/api/docs/#error-{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = dict(errors)
    return body


def _problem_body(problem: Problem) -> dict[str, Any]:
    body = problem_body(
        problem.code, problem.message, status=problem.status_code, errors=problem.errors
    )
    body.update(problem.extra)
    return body


def database_busy(exc: BaseException | None) -> bool:
    """SQLite's "database is locked": a writer waited its whole busy timeout for the one
    write lock. Nothing was written, so the request may simply be sent again."""
    return isinstance(exc, OperationalError) and "is locked" in str(exc)


def _busy_problem() -> Problem:
    return Problem(
        "temporarily_unavailable",
        f"The studio is too busy to answer just now; nothing was changed. Retry after "
        f"{BUSY_RETRY_AFTER_SECONDS} s.",
    )


def problem_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF's exception handler: every error of the API in one shape."""
    if database_busy(exc):
        logger.warning("Answered 503: the database stayed locked (%s)", exc)
        return Response(
            _problem_body(_busy_problem()),
            status=503,
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            content_type=PROBLEM_CONTENT_TYPE,
        )
    problem = _drf_problem(exc)
    if problem is None:
        return None  # a bug: Django's 500 handling (and its logging) takes it
    body = _problem_body(problem)
    headers = {}
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(math.ceil(wait))
    if isinstance(exc, exceptions.APIException):
        auth = getattr(exc, "auth_header", None)
        if auth:
            headers["WWW-Authenticate"] = auth
    return Response(
        body, status=problem.status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE
    )


# Every error of the API, in the schema (RFC 9457, `application/problem+json`).
ProblemSerializer = inline_serializer(
    "Problem",
    {
        "type": serializers.CharField(
            help_text="A link to the code's entry in the docs: `/api/docs/#error-<code>`."
        ),
        "title": serializers.CharField(help_text="The code in words, for a person."),
        "status": serializers.IntegerField(help_text="The HTTP status, again."),
        "detail": serializers.CharField(help_text="What went wrong, for a person."),
        "code": serializers.CharField(
            help_text="Stable, for programs: validation_error, insufficient_credits… (every "
            "code is listed in the API's description)."
        ),
        "errors": serializers.DictField(
            child=serializers.CharField(),
            required=False,
            help_text="What is wrong with each field.",
        ),
        "buy_url": serializers.URLField(required=False, help_text="With insufficient_credits."),
        "request_id": serializers.CharField(
            required=False,
            help_text="With server_error: quote it to the operators, whose log has the fault.",
        ),
    },
)

PROBLEMS = dict.fromkeys((400, 401, 402, 404, 409, 422), ProblemSerializer)


def problem_response(problem: Problem, *, headers: Mapping[str, str] | None = None) -> JsonResponse:
    """A problem answered outside DRF's views (middleware, Django's handlers, Stripe's
    webhook)."""
    response = JsonResponse(
        _problem_body(problem), status=problem.status_code, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def busy_response() -> JsonResponse:
    """503 with `Retry-After`: the database stayed locked, nothing was written."""
    return problem_response(_busy_problem(), headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 (`handler404`), for URLs no route matches: in the problem shape under
    /api/, where clients read JSON, and the portal's page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.page_not_found(request, exception)
    return problem_response(no_route_problem(request))


def no_route_problem(request: HttpRequest) -> Problem:
    return Problem("not_found", f"No API route {request.path}: see /api/docs/.")


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 (`handler500`), except when the database stayed locked (SQLite, past
    its busy timeout): that is 503 with `Retry-After`, as nothing was written. Django calls
    this while handling the exception, so it is still in `sys.exc_info()`."""
    if not database_busy(sys.exc_info()[1]):
        return defaults.server_error(request)
    if request.path.startswith("/api/"):
        return busy_response()
    response = HttpResponse(_busy_problem().message, status=503, content_type="text/plain")
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response
