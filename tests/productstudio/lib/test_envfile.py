"""The checkout's `.env`: what the settings read from it, and what `make run` writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from productstudio.lib.envfile import (
    EnvFileError,
    development_env_write,
    load_env_file,
    main,
    parse_env,
    read_env_file,
)


def test_it_reads_names_and_values_skipping_blank_lines_and_comments():
    text = "# local settings\n\nDEBUG=1\n  Q_WORKERS = 4  \nexport SITE_URL=http://127.0.0.1:8001\n"

    assert parse_env(text) == {
        "DEBUG": "1",
        "Q_WORKERS": "4",
        "SITE_URL": "http://127.0.0.1:8001",
    }


def test_quotes_are_taken_off_single_quoted_values_literally_double_quoted_with_escapes():
    text = (
        "A='it has # and \\n in it'\n"
        'B="line one\\nline \\"two\\""\n'
        'C="#F4F4F4"  # a colour\n'
        "D=''\n"
        "E='kept # as is' # a note\n"
    )

    assert parse_env(text) == {
        "A": "it has # and \\n in it",
        "B": 'line one\nline "two"',
        "C": "#F4F4F4",
        "D": "",
        "E": "kept # as is",
    }


def test_a_comment_after_an_unquoted_value_needs_a_space_before_it():
    assert parse_env("A=abc # note\nB=abc#def\n") == {"A": "abc", "B": "abc#def"}


def test_a_later_line_for_the_same_name_wins():
    assert parse_env("DEBUG=0\nDEBUG=1\n") == {"DEBUG": "1"}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("DEBUG=1\nnot a setting\n", 2),
        ("DEBUG=1\nSECRET_KEY='abc\n", 2),
        ('SECRET_KEY="abc" def\n', 1),
    ],
)
def test_a_line_it_cannot_read_is_refused_naming_the_file_and_the_line(text, line):
    with pytest.raises(EnvFileError, match=f"^/srv/studio/.env, line {line}: expected NAME=value"):
        parse_env(text, source="/srv/studio/.env")


def test_a_missing_file_sets_nothing(tmp_path: Path):
    assert read_env_file(tmp_path / ".env") == {}


def test_the_real_environment_wins_even_when_it_sets_a_variable_empty(tmp_path: Path):
    path = tmp_path / ".env"
    path.write_text("DEBUG=1\nSECRET_KEY=from-the-file\nQ_WORKERS=4\n")
    environ = {"DEBUG": "0", "SECRET_KEY": ""}

    added = load_env_file(path, environ)

    assert added == {"Q_WORKERS": "4"}
    assert environ == {"DEBUG": "0", "SECRET_KEY": "", "Q_WORKERS": "4"}


def test_make_runs_file_has_debug_on_and_a_new_secret_readable_by_its_owner_only(tmp_path: Path):
    first, second = tmp_path / "a.env", tmp_path / "b.env"

    assert development_env_write(path=first)
    assert development_env_write(path=second)

    values = read_env_file(first)
    assert values["DEBUG"] == "1"
    assert len(values["SECRET_KEY"]) >= 50
    assert values["SECRET_KEY"] != read_env_file(second)["SECRET_KEY"]
    assert stat.S_IMODE(first.stat().st_mode) == 0o600


def test_an_existing_file_is_never_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / ".env"
    path.write_text("SECRET_KEY=mine\n")

    assert not development_env_write(path=path)
    assert main([str(path)]) == 0

    assert path.read_text() == "SECRET_KEY=mine\n"
    assert "Kept the existing" in capsys.readouterr().out
