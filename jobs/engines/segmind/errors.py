"""Segmind's errors: `SegmindError`, the stable codes, the sentences a shop owner reads,
and which codes are worth retrying (Segmind's error table is in `docs/segmind.md`)."""

from __future__ import annotations

from typing import Any, Final

from productstudio.lib.errors import CodedError

# Codes worth another try: the same request may well succeed a little later.
RETRYABLE_CODES: Final = frozenset(
    {"provider_rate_limited", "provider_unavailable", "provider_timeout", "provider_connection"}
)

_SENTENCES: Final = {
    "provider_bad_request": (
        "Segmind refused the request as invalid, so the image could not be made."
    ),
    "provider_unauthorized": (
        "Segmind did not accept ProductStudio's API key, so the image could not be made."
    ),
    "provider_forbidden": (
        "Segmind's account is not allowed to use this model, so the image could not be made."
    ),
    "provider_not_found": (
        "Segmind does not offer this model or workflow, so the image could not be made."
    ),
    "result_expired": (
        "Segmind no longer holds this result (it keeps results for one hour), "
        "so the image has to be made again."
    ),
    "provider_insufficient_credits": (
        "Segmind's account is out of credit, so the image could not be made. "
        "No credit was taken from you."
    ),
    "provider_failed": "Segmind could not make the image and gave no reason.",
    "provider_rate_limited": (
        "Segmind is receiving too many requests right now, so the image could not be made yet."
    ),
    "provider_unavailable": (
        "Segmind is temporarily unavailable, so the image could not be made yet."
    ),
    "provider_timeout": "Segmind took too long to answer, so the image could not be made yet.",
    "provider_connection": (
        "The connection to Segmind failed, so the image could not be made yet."
    ),
    "provider_bad_response": (
        "Segmind sent an answer ProductStudio could not read, so the image could not be made."
    ),
}

# Segmind's error table (docs/segmind.md); 404 depends on the call (client._response_error).
_STATUS_CODES = {
    400: "provider_bad_request",
    401: "provider_unauthorized",
    403: "provider_forbidden",
    406: "provider_insufficient_credits",
    408: "provider_timeout",
    422: "provider_failed",
    429: "provider_rate_limited",
}


class SegmindError(CodedError):
    """A refused or failed Segmind call.

    `message` is a sentence for a shop owner (with Segmind's own words where it gave
    some), `provider_message` is Segmind's text alone, `status` the HTTP status if there
    was an answer, and `retryable` says whether the same call may succeed later; then
    `retry_after` is the wait Segmind asked for, in seconds, if it asked.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        provider_message: str = "",
    ) -> None:
        super().__init__(code, message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.provider_message = provider_message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle through their args by default, which would drop everything
        # but the message; workers hand errors across processes.
        return (
            type(self),
            (
                self.code,
                self.message,
                self.status,
                self.retryable,
                self.retry_after,
                self.provider_message,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.code!r}, {self.message!r}, status={self.status!r}, "
            f"retryable={self.retryable!r})"
        )


def _error(
    code: str,
    provider_message: str = "",
    *,
    status: int | None = None,
    retry_after: float | None = None,
    sentence: str | None = None,
) -> SegmindError:
    message = sentence or _SENTENCES[code]
    if provider_message:
        if code == "provider_failed":
            message = f"Segmind could not make the image: {_as_sentence(provider_message)}"
        elif code not in ("provider_timeout", "provider_connection"):
            message = f'{message} Segmind said: "{provider_message}"'
    return SegmindError(
        code,
        message,
        status=status,
        retryable=code in RETRYABLE_CODES,
        retry_after=retry_after,
        provider_message=provider_message,
    )


def _as_sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
