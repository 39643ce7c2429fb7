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

from pathlib import Path

from alembic import command
from alembic.config import Config
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


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database of ``engine`` to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


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
