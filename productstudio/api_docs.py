"""The API's description at /api/docs/: how to authenticate, page, retry and verify
webhooks, and every stable error `code` with its status and meaning.

Plain Python with no Django import: the settings read `DESCRIPTION` while Django is
still loading. A problem's `type` is `/api/docs/#error-<code>`, so each code gets an
anchor of that name in the page.
"""

from __future__ import annotations

# Every `code` a refused request may answer, with its HTTP status and what it means.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "validation_error": (
        400,
        "The request is not valid: `errors` names each field at fault (`items.3.image_url` "
        "for an item of a list; `request` when the body is not a JSON object). Also a bad "
        "`cursor` or `limit`, an empty or unknown filter, an `Idempotency-Key` too long.",
    ),
    "invalid_json": (
        400,
        "The body is not valid JSON (or not UTF-8): `detail` says where, by line, column "
        "and character.",
    ),
    "json_too_deep": (400, "The JSON body nests deeper than 64 levels of arrays and objects."),
    "body_too_large": (
        400,
        "The body is larger than the route takes: 1 MiB for JSON by default "
        "(`API_MAX_BODY_BYTES`); a multipart upload's photo has its own limit (`too_large`).",
    ),
    "parse_error": (400, "The multipart body could not be read."),
    "bad_request": (400, "The request could not be read (too many form fields, say)."),
    "invalid_url": (400, "`image_url` is not a web address we can fetch."),
    "unsupported_scheme": (400, "`image_url` does not start with http:// or https://."),
    "host_not_allowed": (400, "`image_url` points to a private network."),
    "dns_failed": (400, "`image_url`'s host name does not resolve."),
    "connect_failed": (400, "`image_url`'s server could not be reached, or broke off."),
    "http_error": (400, "`image_url`'s server answered an error, or sent a damaged file."),
    "timeout": (400, "`image_url`'s server took too long to answer."),
    "too_many_redirects": (400, "`image_url` redirected too many times."),
    "too_large": (400, "The product photo (`image_url` or `image`) is larger than allowed."),
    "empty": (400, "The product photo is an empty file."),
    "not_an_image": (400, "The product photo is not a picture we can read, or is damaged."),
    "format_not_allowed": (400, "The product photo's format is not JPEG, PNG or WEBP."),
    "too_many_pixels": (400, "The product photo has more pixels than allowed."),
    "image_too_small": (
        400,
        "The product photo is too small to work on (`detail` gives the least size). Refused "
        "before any job exists, as a job that meets it later fails with it.",
    ),
    "empty_image": (
        400,
        "The product photo is blank (one flat colour, or fully transparent): no product "
        "to work on. Refused before any job exists, as a job that meets it later fails "
        "with it.",
    ),
    "not_authenticated": (
        401,
        "No API key, or one that is invalid or revoked (`Authorization: Bearer ps_...`).",
    ),
    "insufficient_credits": (
        402,
        "The workspace has too few available credits for the job or batch; `buy_url` is "
        "where to buy more. Nothing was created and nothing was charged.",
    ),
    "forbidden": (403, "The workspace may not do this: a system preset is read-only."),
    "not_found": (
        404,
        "No such object in the caller's workspace (another workspace's objects are not "
        "found either), no such route, or a download link we did not sign.",
    ),
    "method_not_allowed": (405, "The route does not take this HTTP method."),
    "not_acceptable": (406, "The route cannot answer in a content type `Accept` allows."),
    "not_cancelable": (409, "The job is already running or finished: it can't be canceled."),
    "not_rerunnable": (409, "The job's product photo is no longer kept: create a new job."),
    "endpoint_disabled": (409, "The webhook endpoint is disabled: it can't be sent a test."),
    "idempotency_in_progress": (
        409,
        "A request with this `Idempotency-Key` is still running: retry when it has finished.",
    ),
    "url_expired": (410, "The download link has expired: get the asset again for a new one."),
    "unsupported_media_type": (
        415,
        "The body's content type is not one the route takes (JSON; multipart too for "
        "`POST /api/v1/jobs`).",
    ),
    "model_unavailable": (422, "The workspace's engine can't run this model."),
    "idempotency_mismatch": (
        422,
        "This `Idempotency-Key` was first used with another request: use a new key.",
    ),
    "rate_limited": (
        429,
        "Too many requests for this key: retry after `Retry-After` seconds.",
    ),
    "server_error": (
        500,
        "A fault of the studio: the answer has a `request_id`, logged with the fault; give it "
        "to the operators if retrying does not help.",
    ),
    "temporarily_unavailable": (
        503,
        "The studio's database was too busy to answer; nothing was changed. Retry after "
        "`Retry-After` seconds (with the same `Idempotency-Key`, if the request had one).",
    ),
}

# Why a job failed (its `error.code`) or waits (its `waiting.code`): not an answer to a
# request, but the outcome of the work. A failed job is never charged.
JOB_ERROR_CODES: dict[str, str] = {
    "provider_insufficient_credits": (
        "Segmind's account is out of credit: every job that meets it waits, the first one "
        "included (`waiting_for_provider`, with this code and the same message in "
        "`waiting`), keeping its credits held. Cancel it (`POST /api/v1/jobs/<id>/cancel`) "
        "to have them back; it fails with this code, its credits back, when it gives up."
    ),
    "provider_bad_request": "Segmind refused the request as invalid.",
    "provider_unauthorized": "Segmind did not accept the API key.",
    "provider_forbidden": "Segmind's account may not use this model.",
    "provider_not_found": "Segmind does not offer this model any more.",
    "provider_failed": "Segmind could not make the image (its reason is in `message`).",
    "provider_rate_limited": "Segmind received too many requests (retried first).",
    "provider_unavailable": "Segmind was unavailable (retried first).",
    "provider_timeout": "Segmind took too long to answer (retried first).",
    "provider_connection": "The connection to Segmind failed (retried first).",
    "provider_bad_response": "Segmind sent an answer we could not read.",
    "provider_not_configured": "Segmind is not set up on this studio.",
    "own_key_missing": "The workspace's own Segmind key can no longer be read.",
    "result_expired": "Segmind no longer held the result.",
    "model_unavailable": "The model is no longer offered.",
    "missing_input": "The job's product photo is no longer stored.",
    "empty_image": "The local engine found no product in the photo: it looks blank.",
    "image_too_small": "The photo is too small for the local engine.",
    "unsupported_image": "The local engine can't read this kind of image.",
    "worker_lost": "The worker running the job stopped; the job was not finished.",
    "internal_error": "Something went wrong on our side.",
}


def _error_rows() -> str:
    # The anchor's id is the problem's `type` fragment: /api/docs/#error-<code>.
    return "\n".join(
        f'| <a id="error-{code}"></a>`{code}` | {status} | {meaning} |'
        for code, (status, meaning) in sorted(ERROR_CODES.items(), key=lambda i: (i[1][0], i[0]))
    )


def _job_error_rows() -> str:
    return "\n".join(f"| `{code}` | {meaning} |" for code, meaning in JOB_ERROR_CODES.items())


DESCRIPTION = f"""Product photos for small shops: models, jobs and their results.

## Authentication
Every route but an asset's download link takes a workspace's API key:
`Authorization: Bearer ps_...`. Without one, or with a revoked one: 401 `not_authenticated`.
Another workspace's objects answer 404, as if they did not exist.

## Lists and pagination
Lists are pages, newest first: `{{"next", "previous", "results"}}`. `limit` sets the items
per page (1 to 100, default 20); to go on, follow `next` (or `previous`), whose `cursor`
parameter says where. A cursor is opaque: don't build one. `next` is null on the last page.
The models catalog is a single page.

## Retrying safely: `Idempotency-Key`
Send an `Idempotency-Key` header (up to 255 characters; a UUID is good) with a POST you
mean to do once. A retry with the same key and body gets the first answer again, with the
header `Idempotent-Replayed: true`; with another body, 422 `idempotency_mismatch`; while
the first request still runs, 409 `idempotency_in_progress`. Keys are kept 24 hours, per
workspace. Answers that say nothing happened (refusals before the operation ran, and server
errors) are not kept: the same key may be sent again.

## Rate limits
Each API key may make so many reads (GET) and writes (POST, PATCH, DELETE) a minute.
Past that: 429 `rate_limited` with a `Retry-After` header, in seconds. Many requests with a
wrong key from one address lock that address for a while: every request from it, with any
key, gets 429 `rate_limited` with `Retry-After` until the lock ends.

## Webhooks
Events are POSTed as JSON `{{"type", "timestamp", "data"}}`, signed per Standard Webhooks:
`webhook-id` (the same on every retry: skip ids you have seen), `webhook-timestamp` (unix
seconds: refuse old ones) and `webhook-signature`: `v1,` then the base64 HMAC-SHA256 of
`{{webhook-id}}.{{webhook-timestamp}}.{{body}}`, keyed with the base64-decoded part of the
`whsec_` secret. Answer 2xx; anything else is retried with backoff for up to a day.

## Errors
Every error is `application/problem+json`: `type` (a link to its code below), `title`,
`status`, `detail` (for a person), `code` (stable: test this one), and `errors` (each
field at fault) when there are some. `insufficient_credits` adds `buy_url`.

| code | status | meaning |
| --- | --- | --- |
{_error_rows()}

## Why a job failed
A job that fails has `error: {{"code", "message"}}`; nothing is charged for it. Its
`code` is one of these (or one of the product photo's codes above):

| code | meaning |
| --- | --- |
{_job_error_rows()}
"""
