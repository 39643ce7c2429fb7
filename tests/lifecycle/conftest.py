"""Fixtures of the lifecycle tests: every database test runs on SQLite and on a real PostgreSQL
(README.md, "Testing"), through the ``db_url`` fixture."""

# The harness plugin (lifecycle.testing.postgres: pg_server, pg_url, db_url) is registered in
# tests/conftest.py: pytest accepts pytest_plugins only in the top-level conftest.

from __future__ import annotations  # noqa: E402

from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402

import pytest  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from lifecycle.api.app import create_app  # noqa: E402
from lifecycle.settings import LifecycleSettings  # noqa: E402

#: argon2 at its lowest cost: the tests check who may do what, not how slow guessing a token is.
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
#: The bootstrap administrator token of every test service.
ADMIN_TOKEN = "test-admin-token-0123456789"


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_app(db_url: str, tmp_path: Path) -> Callable[..., FastAPI]:
    """Builds a lifecycle app on the test database (settings overridable: ``make_app(four_eyes=True)``)."""

    def make(**overrides: Any) -> FastAPI:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "db": db_url, "workers": 0,
                                  "admin_token": ADMIN_TOKEN, **overrides}
        return create_app(LifecycleSettings(**values), hasher=CHEAP_ARGON2)

    return make


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    """A TestClient of a fresh service, sending the administrator's token by default."""
    with TestClient(make_app(), headers=auth_header(ADMIN_TOKEN)) as c:
        yield c


from lifecycle.testing.mosquitto import mosquitto  # noqa: E402,F401  (the session's MQTT broker fixture)
