"""The one initial Alembic revision creates exactly the tables of lifecycle.schema.metadata, on
SQLite and PostgreSQL; ``maas_lifecycle db upgrade`` is idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from lifecycle.cli.service import main
from lifecycle.db import make_engine
from lifecycle.migrations import current_revision, upgrade_engine
from lifecycle.schema import metadata


def test_migration_equals_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade_engine(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == [], "run python -m lifecycle.migrations.regenerate: " + repr(diff[:5])
        assert current_revision(engine) == "0001"
        upgrade_engine(engine)  # a second upgrade changes nothing
        assert current_revision(engine) == "0001"
    finally:
        engine.dispose()


def test_db_upgrade_command(db_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "revision 0001" in result.output
    again = CliRunner().invoke(main, ["db", "upgrade", "--db", db_url])
    assert again.exit_code == 0 and "(was" not in again.output


def test_concurrent_upgrades_of_one_database(db_url: str) -> None:
    """Replicas starting at once: every `db upgrade` process succeeds, the schema is created once."""
    import subprocess
    import sys
    from pathlib import Path

    command = [str(Path(sys.executable).parent / "maas_lifecycle"), "db", "upgrade", "--db", db_url]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert sum("(was empty)" in out for out in outputs) == 1, outputs
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == "0001"
    finally:
        engine.dispose()
