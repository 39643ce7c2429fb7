"""Fixtures of the lifecycle tests: every database test runs on SQLite and on a real PostgreSQL
(DESIGN.md §9), through the ``db_url`` fixture."""

# The harness plugin (lifecycle.testing.postgres: pg_server, pg_url, db_url) is registered in
# tests/conftest.py: pytest accepts pytest_plugins only in the top-level conftest.
