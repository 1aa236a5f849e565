"""JSON bodies an attacker may send: too large, nested too deep, or not JSON at all.

Python's `json` recurses once per level of nesting, so a body of 100,000 `[` raises
RecursionError (a 500) instead of a refusal. Each body is therefore measured before it is
parsed: its size against `API_MAX_BODY_BYTES` (from `Content-Length`, before a byte is read,
then by a read that stops one byte past the limit) and its depth against `MAX_JSON_DEPTH`
(a linear scan of the brackets outside strings, with no recursion). Every refusal is a
`BodyError` with a stable code; the API answers it as a 400 problem.

No database here: the API's middleware, its JSON parser and Stripe's webhook share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from itertools import accumulate
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.utils.json import strict_constant

from productstudio.lib.errors import CodedError, Problem

# Far more than any body of the API needs (a batch's item's parameters are 4 levels deep),
# and far fewer than the interpreter's recursion limit.
MAX_JSON_DEPTH = 64

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
# Brackets counted per step: a body far too deep is refused after its first chunk.
_CHUNK = 64 * 1024


class BodyError(CodedError):
    """A request body refused before (or instead of) being parsed."""


def json_depth(raw: bytes, *, stop_above: int | None = None) -> int:
    """How deep the arrays and objects of `raw` nest, counted without parsing it (at least
    `stop_above` + 1 when it stops early). Brackets inside strings don't count, nor any
    after a string that is never closed (the body is not JSON: the parser says so).

    Bytes-level operations only, each linear: a pair of backslashes and an escaped quote
    are dropped left to right (as a JSON reader pairs them), then every other piece between
    quotes is outside the strings. UTF-8 never uses these ASCII bytes inside a multi-byte
    character, so the bytes are scanned undecoded. (A regular expression for the strings
    was tried first: on a string never closed, full of escaped quotes, each of them began a
    new match to the end of the body, quadratic time.)"""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    deepest = level = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = brackets[start : start + _CHUNK]
        levels = list(accumulate(map(_STEP.__getitem__, chunk), initial=level))
        deepest, level = max(deepest, max(levels)), levels[-1]
        if stop_above is not None and deepest > stop_above:
            break
    return deepest


def max_body_bytes() -> int:
    return int(settings.API_MAX_BODY_BYTES)


def _too_large(limit: int) -> BodyError:
    return BodyError(
        "body_too_large", f"The body is larger than {limit} bytes, the most this route takes."
    )


def declared_length(meta: Mapping[str, Any]) -> int:
    """The body's `Content-Length` (0 when absent or not a number, as Django reads it)."""
    try:
        return max(0, int(meta.get("CONTENT_LENGTH") or 0))
    except (TypeError, ValueError):
        return 0


def check_declared_length(meta: Mapping[str, Any]) -> None:
    """Refuse a body whose `Content-Length` is over the limit, before reading any of it."""
    limit = max_body_bytes()
    if declared_length(meta) > limit:
        raise _too_large(limit)


def read_bounded(stream: IO[bytes]) -> bytes:
    """The body, read no further than one byte past the limit (the server's stream already
    stops at `Content-Length`; this also bounds one that would not)."""
    limit = max_body_bytes()
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise _too_large(limit)
    return raw


def check_depth(raw: bytes) -> None:
    if json_depth(raw, stop_above=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise BodyError(
            "json_too_deep",
            f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects.",
        )


# Set in a request's META once its body's depth has been checked: the middleware, the
# idempotency fingerprint and the parser read the same bytes, and one scan is enough.
DEPTH_CHECKED = "productstudio.json_depth_checked"


def check_request_depth(meta: MutableMapping[str, Any], raw: bytes) -> None:
    """`check_depth` of a request's body, at most once per request."""
    if not meta.get(DEPTH_CHECKED):
        check_depth(raw)
        meta[DEPTH_CHECKED] = True


def load_json(
    raw: bytes,
    *,
    encoding: str = "utf-8",
    strict: bool = True,
    meta: MutableMapping[str, Any] | None = None,
) -> Any:
    """`raw` parsed, once its depth is known to be safe (checked here unless `meta`, the
    request's, says it was); `invalid_json` says where it stops being JSON."""
    if meta is None:
        check_depth(raw)
    else:
        check_request_depth(meta, raw)
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as e:
        raise BodyError("invalid_json", f"The body is not {encoding} text: {e}.") from e
    try:
        return json.loads(text, parse_constant=strict_constant if strict else None)
    except json.JSONDecodeError as e:
        raise BodyError(
            "invalid_json",
            f"The body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno} "
            f"(character {e.pos}).",
        ) from e
    except ValueError as e:  # NaN or Infinity (not JSON), a number with too many digits
        raise BodyError("invalid_json", f"The body is not valid JSON: {e}.") from e


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with the size and depth limits, and refusals naming the
    problem."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parser_context = parser_context or {}
        request = parser_context.get("request")
        try:
            if request is not None:
                check_declared_length(request.META)
            raw = read_bounded(stream)
            return load_json(
                raw,
                encoding=parser_context.get("encoding") or settings.DEFAULT_CHARSET,
                strict=self.strict,
                meta=request.META if request is not None else None,
            )
        except BodyError as e:
            raise Problem(e.code, e.message, status=400) from e
