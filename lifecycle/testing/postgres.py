"""A real PostgreSQL for tests, from Debian's ``postgresql`` package (README.md "Testing").

:class:`LocalPostgres` runs ``initdb`` and ``pg_ctl`` in a temporary directory, listening on
127.0.0.1 on a free port only (its Unix socket in that directory), with durability switched off
since test data is thrown away. PostgreSQL refuses to run as root, so when the tests run as root
the server runs as the unprivileged system user ``nobody`` (override with ``MAAS_TEST_PG_USER``),
owning the temporary directory. The superuser is ``postgres`` with ``trust`` authentication on
loopback.

As a pytest plugin (``pytest_plugins = ["lifecycle.testing.postgres"]``) it provides:

- ``pg_server``: the session's server, started on first use and stopped at the end;
- ``pg_url``: ``postgresql://postgres@127.0.0.1:PORT/<fresh database>``, dropped after the test;
- ``db_url``: parametrized over ``sqlite`` (a file in the test's ``tmp_path``) and
  ``postgresql`` (``pg_url``), so a test taking it runs on both databases.

If PostgreSQL is not installed the tests that need it fail with a message saying how to
install it (``apt-get install -y postgresql``).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

INSTALL_HINT = "PostgreSQL is not installed: apt-get install -y postgresql (Debian's package, /usr/lib/postgresql/*/bin)"


class PostgresNotInstalled(RuntimeError):
    pass


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``."""
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").exists():
            try:
                candidates.append((int(bindir.parent.name.split(".")[0]), bindir))
            except ValueError:
                candidates.append((0, bindir))
    if not candidates:
        raise PostgresNotInstalled(INSTALL_HINT)
    return max(candidates)[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """One PostgreSQL cluster in a temporary directory, run by an unprivileged user."""

    superuser = "postgres"

    def __init__(self, *, run_as: str | None = None) -> None:
        self.bindir = postgres_bin_dir()
        if run_as is None and os.geteuid() == 0:
            run_as = os.environ.get("MAAS_TEST_PG_USER", "nobody")
        self.run_as = run_as
        # Not under pytest's tmp_path: that is private to root (0700) and the server user must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="maas-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = 0
        self._started = False
        if self.run_as is not None:
            pw = pwd.getpwnam(self.run_as)
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            os.chown(self.dir, self._uid, self._gid)
        os.chmod(self.dir, 0o700)

    # -- running the package's programs as the server user ------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(self.dir), "TZ": "UTC"}
        if self.run_as is not None:
            kwargs.update(user=self._uid, group=self._gid, extra_groups=[])
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]], cwd=self.dir, env=env, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=120, **kwargs,
        )
        if check and proc.returncode != 0:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}")
        return proc

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def start(self, attempts: int = 3) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        last: Exception | None = None
        for _ in range(attempts):  # a free port can be taken by someone else before we bind it
            self.port = free_port()
            opts = (f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c synchronous_commit=off "
                    f"-c full_page_writes=off -c max_connections=200 -c timezone=UTC")
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", opts, "start")
                self._started = True
                self._wait_ready()
                return
            except RuntimeError as exc:
                last = exc
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, name: str | None = None) -> str:
        name = name or f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
            self._started = False

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    try:
        server = LocalPostgres()
    except PostgresNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    atexit.register(server.cleanup)  # also when the session is interrupted before its teardown
    try:
        server.start()
    except BaseException:
        server.cleanup()
        raise
    yield server
    server.cleanup()
    atexit.unregister(server.cleanup)


@pytest.fixture
def pg_url(pg_server: LocalPostgres) -> Iterator[str]:
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lifecycle.db'}"
    return str(request.getfixturevalue("pg_url"))
