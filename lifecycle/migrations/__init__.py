"""Alembic migrations of the lifecycle database (SQLite and PostgreSQL).

* :func:`upgrade_engine` / :func:`upgrade` bring a database to the newest revision; ``maas_lifecycle
  db upgrade`` and ``serve`` (at start) call it.
* The revisions are in ``versions/``. While the schema is young there is ONE initial revision,
  generated from :data:`lifecycle.schema.metadata`: after adding or changing a table run
  ``python -m lifecycle.migrations.regenerate`` and commit the new ``versions/0001_initial.py``
  (``tests/lifecycle/test_migrations.py`` fails while the revision and the metadata differ).
  Once a release has shipped, new revisions are added on top instead
  (``alembic revision --autogenerate`` with :func:`alembic_config`).
"""

from __future__ import annotations

import fcntl
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine

from lifecycle.db import make_engine

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    cfg.set_main_option("path_separator", "os")
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


#: Alembic's ``context`` is process-global: one upgrade at a time per process.
_PROCESS_LOCK = threading.Lock()


#: The PostgreSQL advisory lock key of upgrades ("maas").
UPGRADE_LOCK = 0x6D616173


@contextmanager
def _database_lock(engine: Engine) -> Iterator[None]:
    """Serialise upgrades of one database across processes (several replicas starting at once):
    a session advisory lock on PostgreSQL, an flock beside the file on SQLite."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": UPGRADE_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": UPGRADE_LOCK})
        return
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.upgrade-lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade_engine(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the database of ``engine`` to ``revision`` (safe when several processes start at
    once); returns the revision it had before (None: empty)."""
    with _PROCESS_LOCK, _database_lock(engine):
        before = current_revision(engine)
        command.upgrade(alembic_config(engine), revision)
        return before


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
