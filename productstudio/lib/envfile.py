"""The checkout's `.env`: local settings that every `manage.py` command reads, whatever the shell.

`make run` writes one once (`python -m productstudio.lib.envfile .env`): `DEBUG=1` and a
development secret of this checkout's own, so that a command typed in a new terminal works
as the README shows it. The settings read it with `read_env_file`; a variable of the real
environment always wins over the file.

The format is the common subset of `.env` files (what python-dotenv, Docker Compose and
systemd's `EnvironmentFile` agree on): `NAME=value` lines, an optional `export ` before the
name, blank lines and `#` comments, values optionally in single quotes (taken literally) or
double quotes (with `\\"`, `\\\\` and `\\n`). A line that is none of those stops start-up,
naming the file and the line, rather than being skipped with the setting it meant to set.

Stdlib only: the settings import it before Django is configured.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*?)\s*$")
_DOUBLE_QUOTED_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "$": "$"}


class EnvFileError(ValueError):
    """A line of an env file that cannot be read; the message names the file and line."""


def _after_closing_quote(rest: str, where: str) -> None:
    rest = rest.strip()
    if rest and not rest.startswith("#"):
        raise EnvFileError(f"{where}: unexpected text after the closing quote.")


def _unquote(raw: str, where: str) -> str:
    if raw[:1] == "'":
        end = raw.find("'", 1)
        if end == -1:
            raise EnvFileError(f"{where}: the value's closing ' is missing.")
        _after_closing_quote(raw[end + 1 :], where)
        return raw[1:end]
    if raw[:1] == '"':
        out: list[str] = []
        i = 1
        while i < len(raw):
            char = raw[i]
            if char == "\\" and i + 1 < len(raw):
                following = raw[i + 1]
                out.append(_DOUBLE_QUOTED_ESCAPES.get(following, "\\" + following))
                i += 2
                continue
            if char == '"':
                _after_closing_quote(raw[i + 1 :], where)
                return "".join(out)
            out.append(char)
            i += 1
        raise EnvFileError(f"{where}: the value's closing \" is missing.")
    # Unquoted: a comment starts at a `#` after whitespace (`a#b` is a value).
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse_env(text: str, *, source: str = ".env") -> dict[str, str]:
    """The variables `text` sets, in order; a later line for the same name wins."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}, line {number}"
        match = _LINE.match(line)
        if match is None:
            raise EnvFileError(f"{where}: expected NAME=value, not {stripped[:40]!r}.")
        values[match["name"]] = _unquote(match["value"], where)
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
