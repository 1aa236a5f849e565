"""Every answer under /api/ that is an error is a problem (application/problem+json), with
`DEBUG` on too, and hostile bodies are refused before anything reads or parses them.

Django answers some errors outside DRF's exception handler: a URL no route matches, an
exception a view did not handle, a body over Django's own limits, an error raised by a
middleware. With `DEBUG` on it answers them with its technical pages (which skip
`handler404` and `handler500`), with a traceback. This middleware:

- refuses, on every API route and before the session, the authentication or the view run,
  a body whose `Content-Length` is over `API_MAX_BODY_BYTES` (unread) and a JSON body that
  nests deeper than `MAX_JSON_DEPTH` (a linear scan, no recursion): 400 `body_too_large`
  and `json_too_deep`. Multipart bodies (a job's photo) keep their own size rules.
- answers an exception a view raised as a problem: 404, 403, 400 for Django's suspicious
  or too-large requests, 503 for a database that stayed locked, and otherwise 500
  `server_error` with a `request_id` that is logged with the traceback.
- turns any other error answer under /api/ that is not a problem yet (Django's 404 and
  500 pages, debug or not) into one, keeping its status and headers.

The portal's pages are left as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from productstudio.lib.context import (
    REQUEST_ID_ENVIRON,
    current_request_id,
    job_id_var,
    request_id_from,
    request_id_var,
    workspace_id_var,
)
from productstudio.lib.errors import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    busy_response,
    database_busy,
    no_route_problem,
    problem_response,
)
from productstudio.lib.parsers import BodyError, check_declared_length, check_request_depth

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# What an error answer that is not a problem yet becomes, by its status.
CODE_OF_STATUS = {
    400: ("bad_request", "The request is not one the API can read."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "The route does not take this HTTP method."),
    406: ("not_acceptable", "The route cannot answer in a content type `Accept` allows."),
    413: ("body_too_large", "The body is larger than the API takes."),
    415: ("unsupported_media_type", "The body's content type is not one the route takes."),
}
# Headers of the answer a problem replaces that it keeps (the others describe its body).
DROPPED_HEADERS = {"content-type", "content-length", "content-disposition", "content-encoding"}


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _server_error(request_id: str, status: int = 500) -> HttpResponse:
    return problem_response(
        Problem(
            "server_error",
            f"The studio failed to answer this request. Retry later; if it keeps failing, "
            f"give the operators the request id {request_id}.",
            status=status,
            extra={"request_id": request_id},
        )
    )


REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Gives each request an id: a sane incoming `X-Request-ID` (a proxy's, a client's)
    or a new one. Every log line written while it is answered carries it (with
    LOG_FORMAT=json), a server error quotes it, and the answer echoes it in
    `X-Request-ID`, so a client's report, the proxy's log and ours meet."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.META[REQUEST_ID_ENVIRON] = request_id
        # A server thread answers one request after another: nothing of the last one's.
        request_token = request_id_var.set(request_id)
        workspace_token = workspace_id_var.set("")
        job_token = job_id_var.set("")
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(request_token)
            workspace_id_var.reset(workspace_token)
            job_id_var.reset(job_token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class ApiProblemMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not is_api(request):
            return self.get_response(request)
        try:
            self._check_body(request)
        except BodyError as e:
            return problem_response(Problem(e.code, e.message, status=400))
        return self._as_problem(request, self.get_response(request))

    def _check_body(self, request: HttpRequest) -> None:
        content_type = request.content_type or ""
        if content_type == "multipart/form-data":
            return  # a photo upload: FETCH_MAX_BYTES and Django's upload limits apply
        check_declared_length(request.META)
        if _is_json(content_type):
            # At most API_MAX_BODY_BYTES: the server's stream stops at Content-Length. Read
            # through `body`, so that DRF parses the same bytes again.
            check_request_depth(request.META, request.body)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        if isinstance(exception, BodyError):
            return problem_response(Problem(exception.code, exception.message, status=400))
        if isinstance(exception, Http404):
            return problem_response(Problem("not_found", "Not found.", status=404))
        if isinstance(exception, PermissionDenied):
            return problem_response(Problem("forbidden", "This request is not allowed."))
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return problem_response(
                Problem(
                    "body_too_large",
                    f"The body's fields (files aside) are larger than {limit} bytes.",
                    status=400,
                )
            )
        if isinstance(exception, SuspiciousOperation):
            # Django's own messages name the limit (too many fields, too many files).
            logger.warning("Refused a suspicious API request: %s", exception)
            return problem_response(Problem("bad_request", str(exception), status=400))
        if database_busy(exception):
            logger.warning("Answered 503: the database stayed locked (%s)", exception)
            return busy_response()
        request_id = current_request_id()
        logger.error(
            "Unhandled exception on %s %s (request id %s)",
            request.method,
            request.path,
            request_id,
            exc_info=exception,
        )
        return _server_error(request_id)

    def _as_problem(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        status = response.status_code
        if status < 400 or response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
            return response
        if status >= 500:
            # Raised outside a view (a middleware): Django has logged its traceback.
            request_id = current_request_id()
            logger.error(
                "API answered %s for %s %s (request id %s)",
                status,
                request.method,
                request.path,
                request_id,
            )
            problem = _server_error(request_id, status)
        elif status == 404 and request.resolver_match is None:
            problem = problem_response(no_route_problem(request))
        else:
            code, detail = CODE_OF_STATUS.get(status, CODE_OF_STATUS[400])
            problem = problem_response(Problem(code, detail, status=status))
        for name, value in response.items():
            if name.lower() not in DROPPED_HEADERS:
                problem[name] = value
        problem.cookies = response.cookies
        return problem
