"""Settings come from the environment, with safe defaults."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# Variables of the test run itself, which a freshly started process would not have.
_NOT_INHERITED = {"PYTEST_VERSION", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def _clean_env(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    # No .env unless a test gives one: a checkout where `make run` ran has its own.
    return {**clean, "ENV_FILE": "", **env}


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = _clean_env(**env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings_value(expr: str, **env: str) -> str:
    result = _python(f"import productstudio.settings as s; print({expr})", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"Q_WORKERS": "8"},
        {"Q_WORKERS": "1", "Q_TIMEOUT": "600"},
        {"Q_WORKERS": "4", "Q_QUEUE_LIMIT": "64", "Q_TIMEOUT": "30"},
    ],
)
def test_q2_retry_exceeds_its_timeout_plus_the_longest_queue_wait(env):
    values = _settings_value(
        "s.Q_CLUSTER['retry'], s.Q_CLUSTER['timeout'], s.Q_CLUSTER['queue_limit'], "
        "s.Q_CLUSTER['workers']",
        DEBUG="1",
        **env,
    )
    retry, timeout, queue_limit, workers = (int(v) for v in values.split())
    # A prefetched task waits behind up to queue_limit tasks shared by the workers.
    longest_wait = -(-queue_limit // workers) * timeout
    assert retry > timeout + longest_wait


def test_the_settings_module_in_use_also_has_a_safe_retry(settings):
    q = settings.Q_CLUSTER
    assert q["retry"] > q["timeout"] + -(-q["queue_limit"] // q["workers"]) * q["timeout"]


def test_sqlite_runs_in_wal_mode_with_immediate_transactions(tmp_path):
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='productstudio.settings';"
        "django.setup(); from django.db import connection;"
        "c=connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]);"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])"
    )
    result = _python(code, DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE"]


def test_a_postgres_url_uses_psycopg():
    engine = _settings_value(
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME']",
        DEBUG="1",
        DATABASE_URL="postgres://u:p@127.0.0.1:5432/studio",
    )
    assert engine == "django.db.backends.postgresql studio"


def test_a_postgres_connection_gives_up_after_a_few_seconds_unless_the_url_says_otherwise():
    expr = "s.DATABASES['default']['OPTIONS']['connect_timeout']"
    url = "postgres://u:p@127.0.0.1:5432/studio"
    assert _settings_value(expr, DEBUG="1", DATABASE_URL=url) == "5"
    assert _settings_value(expr, DEBUG="1", DATABASE_URL=f"{url}?connect_timeout=30") == "30"


def test_redis_url_switches_django_q2_to_redis():
    value = _settings_value(
        "s.Q_CLUSTER.get('redis'), 'orm' in s.Q_CLUSTER",
        DEBUG="1",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert value == "redis://127.0.0.1:6379/3 False"
    assert _settings_value("s.Q_CLUSTER.get('orm')", DEBUG="1") == "default"


def test_segmind_base_defaults_to_segmind_and_can_be_pointed_elsewhere():
    assert _settings_value("s.SEGMIND_API_BASE", DEBUG="1") == "https://api.segmind.com"
    moved = _settings_value(
        "s.SEGMIND_API_BASE", DEBUG="1", SEGMIND_API_BASE="http://127.0.0.1:9100/"
    )
    assert moved == "http://127.0.0.1:9100"


def test_without_debug_a_secret_key_is_required():
    result = _python("import productstudio.settings", DEBUG="0", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def _without(*names: str) -> dict[str, str]:
    """The test run's environment less `names` (and what a new process would not have)."""
    return {k: v for k, v in _clean_env().items() if k not in names}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_without_an_env_file_still_refuses_to_start_without_a_secret(tmp_path):
    env = {**_without("DEBUG", "SECRET_KEY"), "ENV_FILE": str(tmp_path / "no-such.env")}

    result = _run(["-c", "import productstudio.settings"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert "run `make run` once" in result.stderr


def test_a_local_env_file_gives_debug_and_the_secret_to_a_new_shell(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY=the-checkouts-own-secret\n")
    env = {**_without("DEBUG", "SECRET_KEY"), "ENV_FILE": str(env_file)}

    result = _run(["-c", "import productstudio.settings as s; print(s.DEBUG, s.SECRET_KEY)"], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "the-checkouts-own-secret"]


def test_the_checkouts_own_env_file_is_read_by_default():
    env = {**_without("ENV_FILE"), "DEBUG": "1"}
    result = _run(["-c", "import productstudio.settings as s; print(s.ENV_FILE)"], env)
    assert result.stdout.strip() == str(ROOT / ".env"), result.stderr


def test_the_real_environment_wins_over_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY=from-the-file\nSITE_URL=http://127.0.0.1:8001\n")

    values = _settings_value(
        "s.DEBUG, s.SECRET_KEY, s.SITE_URL",
        ENV_FILE=str(env_file),
        DEBUG="0",
        SECRET_KEY="from-the-environment",
    )

    assert values.split() == ["False", "from-the-environment", "http://127.0.0.1:8001"]


def test_a_line_of_the_env_file_that_cannot_be_read_stops_start_up_naming_it(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY is this\n")

    result = _python("import productstudio.settings", ENV_FILE=str(env_file))

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {env_file}, line 2: expected NAME=value" in result.stderr


def test_under_pytest_no_env_file_is_read(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=from-the-file\nQ_WORKERS=7\n")

    values = _settings_value(
        "s.Q_WORKERS, s.SECRET_KEY == s._DEV_SECRET_KEY",
        ENV_FILE=str(env_file),
        PYTEST_VERSION="8",
    )

    assert values.split() == ["2", "True"]


def test_a_management_command_without_settings_stops_with_one_clear_line(tmp_path):
    env = {**_without("DEBUG", "SECRET_KEY"), "ENV_FILE": ""}

    result = _run(["manage.py", "api_key_create", "demo-shop"], env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("manage.py stopped: SECRET_KEY must be set when DEBUG is off.")
    assert "Traceback" not in result.stderr


def test_email_goes_to_the_console_by_default():
    backend = _settings_value("s.EMAIL_BACKEND", DEBUG="1")
    assert backend == "django.core.mail.backends.console.EmailBackend"


def test_check_deploy_is_clean_with_production_values(tmp_path):
    env = {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "studio.example.com",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "SECURE_HSTS_PRELOAD": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_every_setting_read_from_the_environment_is_in_the_readme():
    import re

    names = set(
        re.findall(
            r'env(?:_[a-z_]+)?\("([A-Z_]+)"',
            (ROOT / "productstudio/settings.py").read_text(),
        )
    )
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert missing == []


def test_an_unparsable_segmind_rate_limit_is_refused_at_start_up_naming_the_setting():
    result = _python("import productstudio.settings", DEBUG="1", SEGMIND_RATE_LIMIT="fast")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SEGMIND_RATE_LIMIT" in result.stderr


def test_segmind_rate_limits_read_per_minute_per_second_or_per_n_seconds():
    assert _settings_value("s.SEGMIND_RATE_LIMIT", DEBUG="1") == "50/min"
    assert _settings_value("s.SEGMIND_RATE_LIMIT", DEBUG="1", SEGMIND_RATE_LIMIT="20/6s") == "20/6s"
    assert _settings_value("s.SEGMIND_RATE_LIMIT_COUNTS_POLLS", DEBUG="1") == "False"
