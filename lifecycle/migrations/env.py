"""Alembic environment: runs migrations on the engine handed over by :mod:`lifecycle.migrations`
(online only: the service always has its database at hand)."""

from __future__ import annotations

from alembic import context

from lifecycle.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through lifecycle.migrations (maas_lifecycle db upgrade)")

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
