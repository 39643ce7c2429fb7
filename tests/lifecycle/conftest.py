"""Fixtures of the lifecycle tests: every database test runs on SQLite and on a real PostgreSQL
(DESIGN.md §9), through the ``db_url`` fixture."""
