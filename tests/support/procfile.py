"""The one-machine process list, `docs/deploy/Procfile`, and the systemd units beside it, read
as commands, so tests run exactly what an operator runs and hold the two lists equal.

A Procfile line is a shell command; here it is split into commands (at `&&`), each an
environment (leading `env NAME=value` or `NAME=value` words) and its argument list. A unit's
`ExecStart=` lines are read the same way, with its `Environment=` lines as the environment
and its executable's directory (the deployment's virtualenv) set apart, so a Procfile
command and a unit's can be compared word for word.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"
PROCFILE = DEPLOY / "Procfile"
SYSTEMD = DEPLOY / "systemd"
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One program run: its extra environment and its words (`argv[0]` a bare name)."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.env)


def _command(words: list[str], env: dict[str, str]) -> Command:
    if words and words[0] == "env":
        words = words[1:]
    env = dict(env)
    while words and _ASSIGNMENT.match(words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words, "a command with no program"
    return Command(argv=tuple(words), env=tuple(sorted(env.items())))


def parse_shell_line(line: str) -> list[Command]:
    """The commands of a Procfile line, in order (`a && b` is two)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="&|;<>()")
    lexer.whitespace_split = True
    commands: list[Command] = []
    words: list[str] = []
    for token in lexer:
        if token == "&&":
            commands.append(_command(words, {}))
            words = []
        elif token and set(token) <= set("&|;<>()"):
            raise AssertionError(f"only `&&` may join a Procfile line's commands: {line!r}")
        else:
            words.append(token)
    commands.append(_command(words, {}))
    return commands


def procfile_lines(path: Path = PROCFILE) -> dict[str, str]:
    """The Procfile's processes: name → its shell line, as written."""
    lines: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        name, sep, command = raw.partition(":")
        assert sep and re.fullmatch(r"[a-z][a-z0-9_-]*", name), f"not a Procfile line: {raw!r}"
        assert name not in lines, f"the Procfile names {name!r} twice"
        lines[name] = command.strip()
    return lines


def procfile_commands(path: Path = PROCFILE) -> dict[str, list[Command]]:
    return {name: parse_shell_line(line) for name, line in procfile_lines(path).items()}


@dataclass(frozen=True)
class Unit:
    """What a systemd unit runs: its ExecStart commands (with the bare program names) and
    the directory each program was named in."""

    name: str
    commands: list[Command]
    program_dirs: set[str]
    settings: dict[str, list[str]]


def read_unit(path: Path) -> Unit:
    settings: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a setting: {raw!r}"
        settings.setdefault(key.strip(), []).append(value.strip())
    env: dict[str, str] = {}
    for assignment in settings.get("Environment", []):
        for word in shlex.split(assignment):
            name, _, value = word.partition("=")
            env[name] = value
    commands: list[Command] = []
    dirs: set[str] = set()
    for exec_start in settings.get("ExecStart", []):
        words = shlex.split(exec_start)
        program = Path(words[0])
        assert program.is_absolute(), f"{path.name}: systemd needs an absolute path: {words[0]}"
        dirs.add(str(program.parent))
        commands.append(_command([program.name, *words[1:]], env))
    return Unit(name=path.name, commands=commands, program_dirs=dirs, settings=settings)
