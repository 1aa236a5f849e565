"""The local engine's error: what went wrong, for the caller to show to the user."""

from __future__ import annotations


class EngineError(Exception):
    """A failure the caller can show to the user: ``code`` is stable, ``message`` is prose."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
