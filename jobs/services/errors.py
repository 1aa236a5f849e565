"""What a refused job operation raises (`JobError`) and the message an unexpected failure shows."""

from __future__ import annotations

from productstudio.lib.errors import CodedError

INTERNAL_ERROR_MESSAGE = (
    "Something went wrong while making this image. Try again; if it keeps failing, contact support."
)


class JobError(CodedError):
    """A refused submission: `field` names the input at fault, when there is one."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(code, message)
        self.field = field
        self.errors: dict[str, str] = {field: message} if field else {}
