"""`Idempotency-Key` on the API's POSTs, with Stripe's semantics.

A key is scoped to the caller's workspace and kept IDEMPOTENCY_KEY_HOURS. It is reserved in
a short transaction of its own before the request runs, and its answer is recorded in
another one after: the request's work (which fetches photos and checks URLs over the
network) runs between them, in the services' own short transactions, so no database lock is
held while a photo downloads. A retry with the same key:

- and the same request (method, path and body, compared by content: JSON key order and
  multipart boundaries don't matter) gets the first answer again, with
  `Idempotent-Replayed: true`;
- and a different request gets 422 `idempotency_mismatch`;
- while the first is still running gets 409 `idempotency_in_progress`.

Answers that say nothing happened are not kept, and the reservation is released so the key
can be sent again: refusals before the operation ran (400, 401, 403, 405, 413, 415, 429)
and server errors (each service commits all of its work or none of it; a bug raised after
a service committed, while the answer is written, would let a retry do the work again).

A process that dies after the work committed and before its answer was recorded leaves the
key reserved: retries get 409 until IDEMPOTENCY_LOCK_SECONDS have passed, then a retry runs
the request again (the first run's job may then exist twice; the window is the few
milliseconds between the service's commit and the recording).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from accounts import services
from accounts.authentication import request_workspace
from accounts.models import IdempotencyKey
from productstudio.lib.errors import PROBLEM_CONTENT_TYPE, STATUS_OF_CODE, problem_body
from productstudio.lib.parsers import BodyError, check_request_depth

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
API_PREFIX = "/api/v1/"
# Answers to requests that never ran: the key stays free.
NOT_KEPT = {400, 401, 403, 405, 413, 415, 429}
KEPT_HEADERS = ("Content-Type", "Location", "Retry-After")


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST" or not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            return _problem(
                "validation_error",
                f"{HEADER}: must be 1 to {MAX_KEY_LENGTH} characters.",
                errors={HEADER: f"must be 1 to {MAX_KEY_LENGTH} characters"},
            )
        tenant = request_workspace(request)
        if tenant is None:
            return self.get_response(request)  # the view answers 401 or 404
        try:
            record = services.idempotency_begin(
                tenant=tenant,
                key=key,
                request_line=f"{request.method} {request.get_full_path()}"[:300],
                fingerprint=_fingerprint(request),
            )
        except services.IdempotencyError as e:
            return _problem(e.code, e.message)
        if record.is_complete:
            return _replay(record)
        return self._run(request, record)

    def _run(self, request: HttpRequest, record: IdempotencyKey) -> HttpResponse:
        kept = False
        try:
            response = self.get_response(request)
            status = response.status_code
            if status < 500 and status not in NOT_KEPT and not response.streaming:
                headers = {h: response[h] for h in KEPT_HEADERS if response.has_header(h)}
                kept = services.idempotency_finish(
                    record=record, status=status, body=response.content, headers=headers
                )
                if not kept:
                    # It ran longer than IDEMPOTENCY_LOCK_SECONDS and a retry took the key
                    # over; its work is committed, so the client gets its true answer.
                    logger.warning(
                        "Idempotency-Key %r of tenant %s was taken over while its request ran",
                        record.key,
                        record.tenant_id,
                    )
                    kept = True  # nothing of ours left to release
        finally:
            if not kept:
                services.idempotency_release(record=record)
        return response


def _fingerprint(request: HttpRequest) -> str:
    """A digest of what the request asks for, the same for any encoding of the same ask."""
    digest = hashlib.sha256()
    content_type = request.content_type or ""
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        fields = sorted((name, sorted(values)) for name, values in request.POST.lists())
        files = []
        for name, uploads in sorted(request.FILES.lists()):
            for upload in uploads:
                content = hashlib.sha256()
                for chunk in upload.chunks():
                    content.update(chunk)
                upload.seek(0)
                files.append([name, upload.name, content.hexdigest()])
        digest.update(json.dumps([content_type, fields, sorted(files)]).encode())
    else:
        body = request.body  # at most API_MAX_BODY_BYTES (ApiProblemMiddleware)
        try:
            # A body too deep for json.loads (whatever its content type) is digested as is.
            check_request_depth(request.META, body)
            parsed: Any = json.loads(body) if body else None
        except (BodyError, ValueError):
            digest.update(body)
        else:
            canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
            digest.update(canonical.encode())
    return digest.hexdigest()


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body), status=record.response_status or 200)
    for name, value in record.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    patch_vary_headers(response, ("Authorization",))
    return response


def _problem(code: str, detail: str, errors: dict[str, str] | None = None) -> HttpResponse:
    status = STATUS_OF_CODE[code]
    body = problem_body(code, detail, status=status, errors=errors)
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
