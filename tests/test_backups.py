"""The README's backup and restore commands (Deploying → Backups), run as written against a
real PostgreSQL: a studio's database dumped with `pg_dump` and restored with `pg_restore`
into an empty database holds the same workspaces, jobs and ledger, and the restored copy
migrates as a deploy would (nothing left to apply)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cluster import Setup
from tests.test_readme import SYSTEM_PATH, readme_block

DATABASE_URL = os.environ.get("DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres"),
    reason="pg_dump needs PostgreSQL: the PostgreSQL run of the suite runs this",
)

HEADING = "### Backups"


def _bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-e"],
        input=script,
        cwd=cwd,
        env={"PATH": SYSTEM_PATH, "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def test_the_backup_and_restore_commands_bring_back_the_same_studio(tmp_path: Path) -> None:
    for tool in ("pg_dump", "pg_restore", "psql"):
        assert shutil.which(tool, path=SYSTEM_PATH), f"{tool}: .ci/run installs PostgreSQL"
    source = Setup.create(DATABASE_URL, {})
    restored = Setup.create(DATABASE_URL, {})  # migrated: restore goes into an empty one
    try:
        source.cli("submit", "BACKUP", "backup@example.com", "3")
        before = source.cli("credits", "backup@example.com")
        # An empty database for the restore, as the README says to make one.
        import psycopg

        with psycopg.connect(restored.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{restored.pg_dbname}"')
            conn.execute(f'CREATE DATABASE "{restored.pg_dbname}"')

        _bash(readme_block(HEADING, "pg_dump"), tmp_path, DATABASE_URL=source.database_url)
        dumps = list(tmp_path.glob("productstudio-*.dump"))
        assert len(dumps) == 1, dumps
        _bash(
            readme_block(HEADING, "pg_restore"),
            tmp_path,
            DUMP=dumps[0].name,
            RESTORE_DATABASE_URL=restored.database_url,
        )

        assert restored.cli("credits", "backup@example.com") == before
        # The planner's statistics gathered (a restore alone leaves pg_stats empty).
        assert restored.sql_value("SELECT COUNT(*) FROM pg_stats WHERE tablename = 'jobs_job'")
        assert "No migrations to apply" in restored.manage("migrate", "--noinput")
    finally:
        source.drop()
        restored.drop()
