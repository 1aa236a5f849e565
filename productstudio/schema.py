"""How the OpenAPI schema describes what every operation of the API shares: the problem
shape of its errors (as `application/problem+json`), the `Idempotency-Key` header on POSTs,
and the answers any operation may give (401, 429, 500; 400 for a body too large, too deep
or not JSON; 409 and 422 for a reused key)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from productstudio.idempotency import HEADER, MAX_KEY_LENGTH
from productstudio.lib.errors import PROBLEM_CONTENT_TYPE

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        f"Up to {MAX_KEY_LENGTH} characters, unique per operation you mean to do once "
        "(a UUID is good). A retry with the same key and the same body gets the first answer "
        "again, with `Idempotent-Replayed: true`; with a different body, 422 "
        "`idempotency_mismatch`; while the first is still running, 409 "
        "`idempotency_in_progress`. Keys are kept 24 hours, per workspace. Refusals before "
        "anything ran (400, 401, 403, 429) and server errors (500, 503) are not kept, so the "
        "same key can be retried."
    ),
)


# What each error status means, whichever operation answers it (`code` is in the body).
ERROR_DESCRIPTIONS = {
    "400": "`validation_error`: the request is not valid; `errors` names each field at fault "
    "(a product photo that can't be fetched or read has its own code: `dns_failed`, "
    "`not_an_image`…, listed in the API's description). A body that is not JSON is "
    "`invalid_json`, one nested deeper than 64 levels `json_too_deep`, one larger than "
    "`API_MAX_BODY_BYTES` `body_too_large`.",
    "401": "`not_authenticated`: no API key, or one that is invalid or revoked.",
    "402": "`insufficient_credits`: the workspace has too few credits; `buy_url` is where to "
    "buy more. Nothing was created and nothing was charged.",
    "403": "`forbidden`: the key's workspace may not do this (a system preset, for one).",
    "404": "`not_found`: no such object in the caller's workspace.",
    "409": "`not_cancelable` (the job is past canceling), `not_rerunnable` (its photo is no "
    "longer kept), `endpoint_disabled` (a disabled webhook endpoint) or "
    "`idempotency_in_progress` (a request with this Idempotency-Key is still running).",
    "410": "`url_expired`: the signed link has expired; get a fresh one.",
    "422": "`model_unavailable` (this engine can't run the model) or `idempotency_mismatch` "
    "(the Idempotency-Key was first used with another request).",
    "429": "`rate_limited`: too many requests for this key; retry after `Retry-After` seconds.",
    "500": "`server_error`: a fault of the studio; `request_id` names it in the operators' log.",
}


# The path parameters of every route, by name (drf-spectacular finds no model to describe
# them from in a function view).
PATH_PARAMETERS = {
    "job_id": "The job's `id`.",
    "batch_id": "The batch's `id`.",
    "asset_id": "The asset's `id`.",
    "preset_id": "The preset's `id`.",
    "endpoint_id": "The webhook endpoint's `id`.",
    "slug": "The model's `slug` (GET /api/v1/models lists them).",
}


class ApiSchema(AutoSchema):
    def _is_api(self) -> bool:
        return self.path.startswith("/api/v1/")

    def _resolve_path_parameters(self, variables: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if not parameter.get("description"):
                parameter["description"] = PATH_PARAMETERS.get(parameter["name"], "")
        return parameters

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._is_api() and self.method == "POST":
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _success(self, code: str) -> str:
        if code == "201":
            return "Created."
        if code == "204":
            return "Done: nothing to return."
        if self.method == "GET":
            if "{" in self.path:
                return "Found."
            return "One page of the list, newest first; `next` is the following page."
        return "Done."

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        if not self._is_api() or direction != "response":
            return responses
        from productstudio.lib.errors import ProblemSerializer

        for code, response in responses.items():
            content = response.get("content", {})
            if int(code) >= 400 and "application/json" in content:
                content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
        shared = ["401", "429", "500"]
        if self.method in ("POST", "PUT", "PATCH"):
            shared.append("400")  # a body too large, too deep or not JSON
        if self.method == "POST":
            shared += ["409", "422"]
        for code in shared:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    ProblemSerializer, code, [PROBLEM_CONTENT_TYPE], direction
                )
        for code, response in responses.items():
            if not response.get("description"):
                response["description"] = ERROR_DESCRIPTIONS.get(code) or self._success(code)
        return dict(sorted(responses.items()))
