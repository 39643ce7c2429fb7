"""The PostgreSQL harness: a real server, a fresh database per test, both databases through db_url."""

from __future__ import annotations

import os
import pwd

import pytest
from sqlalchemy import text

from lifecycle.db import make_engine
from lifecycle.testing.postgres import LocalPostgres


@pytest.mark.pg
def test_server_runs_unprivileged_on_loopback(pg_server: LocalPostgres, pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_setting('listen_addresses')")).scalar() == "127.0.0.1"
        assert int(conn.execute(text("SELECT current_setting('port')")).scalar()) == pg_server.port
        assert conn.execute(text("SELECT current_setting('TimeZone')")).scalar() == "UTC"
    engine.dispose()
    if os.geteuid() == 0:
        assert pwd.getpwuid(pg_server.data.stat().st_uid).pw_name == pg_server.run_as != "root"


@pytest.mark.pg
def test_each_test_gets_a_fresh_database(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        assert names == []
        conn.execute(text("CREATE TABLE marker (x int)"))  # the next test must not see it
    engine.dispose()


@pytest.mark.pg
def test_fresh_database_again(pg_url: str) -> None:
    test_each_test_gets_a_fresh_database(pg_url)


def test_db_url_covers_both_databases(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x integer)"))
        conn.execute(text("INSERT INTO t VALUES (41), (1)"))
        assert conn.execute(text("SELECT sum(x) FROM t")).scalar() == 42
    assert engine.dialect.name in {"sqlite", "postgresql"}
    assert db_url.split(":", 1)[0] == engine.dialect.name
    engine.dispose()


def test_missing_installation_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle.testing import postgres

    monkeypatch.setattr(postgres.glob, "glob", lambda _pattern: [])
    with pytest.raises(postgres.PostgresNotInstalled, match="apt-get install -y postgresql"):
        postgres.postgres_bin_dir()
