"""The one check for request fields nobody asked for: a typo in a field's name must be
refused, naming the field, never ignored silently (a forgotten `webhook_url` would lose
the caller's notifications without a word)."""

from collections.abc import Collection, Mapping
from typing import Any

from productstudio.lib.errors import Problem

UNKNOWN_FIELD = "unknown field"


def unknown_fields(data: Mapping[str, Any], known: Collection[str]) -> list[str]:
    """The names in `data` that `known` does not list, sorted."""
    return sorted(set(data) - set(known))


def unknown_fields_refuse(data: Mapping[str, Any], known: Collection[str]) -> None:
    """Raise a 400 `validation_error` naming each field of `data` not in `known`."""
    unknown = unknown_fields(data, known)
    if unknown:
        errors = dict.fromkeys(unknown, UNKNOWN_FIELD)
        raise Problem("validation_error", f"{unknown[0]}: {UNKNOWN_FIELD}.", errors=errors)
