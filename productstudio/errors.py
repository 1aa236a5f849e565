"""The one shape of a refused operation: a stable code and a message for a person."""


class CodedError(Exception):
    """A failure with a stable `code` (for the API and logs) and a human `message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"
