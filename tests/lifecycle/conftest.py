"""Fixtures of the lifecycle tests: every database test runs on SQLite and on a real PostgreSQL
(README.md, "Testing"), through the ``db_url`` fixture."""
