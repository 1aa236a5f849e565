"""The checkout's `.env`: local settings that every `manage.py` command reads, whatever the shell.

`make run` writes one once (`python -m productstudio.lib.envfile .env`): `DEBUG=1` and a
development secret of this checkout's own, so that a command typed in a new terminal works
as the README shows it. The settings read it with `read_env_file`; a variable of the real
environment always wins over the file.

The format is python-dotenv's, read with its parser: `NAME=value` lines, an optional
`export `, blank lines and `#` comments, single quotes taken literally, double quotes with
escapes. A line it cannot read stops start-up, naming the file and the line, rather than
being skipped (python-dotenv's own loader only logs it) with the setting it meant to set.

Django-free: the settings import it before Django is configured.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
from pathlib import Path

from dotenv.parser import parse_stream


class EnvFileError(ValueError):
    """A line of an env file that cannot be read; the message names the file and line."""


def parse_env(text: str, *, source: str = ".env") -> dict[str, str]:
    """The variables `text` sets; a later line for the same name wins. A variable named
    without a value (`NAME` alone) sets the empty string."""
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            shown = binding.original.string.strip()[:40]
            raise EnvFileError(f"{source}, line {line}: expected NAME=value, not {shown!r}.")
        if binding.key is not None:
            values[binding.key] = binding.value or ""
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of the env file at `path`, or none if there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_env(text, source=str(path))


def load_env_file(path: Path, environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """Put the file's variables into `environ`, except those it has already (the real
    environment wins, even when it sets a variable to empty); the ones it put there."""
    added = {name: value for name, value in read_env_file(path).items() if name not in environ}
    environ.update(added)
    return added


def development_env_text() -> str:
    """A new `.env` for a local studio: DEBUG on and a secret of its own."""
    return (
        "# Local settings of this checkout, written once by `make run` (never committed:\n"
        "# .gitignore). Every manage.py command reads them; the real environment wins.\n"
        "# Production sets its variables in its own environment instead (README, Settings).\n"
        "DEBUG=1\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    )


def development_env_write(*, path: Path) -> bool:
    """Write a development `.env` at `path` unless one exists (it is never replaced);
    whether it was written. Readable by its owner only: it holds a secret."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(development_env_text())
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m productstudio.lib.envfile PATH", file=sys.stderr)
        return 2
    path = Path(argv[0])
    if development_env_write(path=path):
        print(f"Wrote {path}: DEBUG=1 and a development SECRET_KEY for manage.py commands.")
    else:
        print(f"Kept the existing {path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
