"""Token verification (unit, with a fake clock): argon2 runs once per token per cache period,
revocation and expiry are honoured, tokens are stored only as hashes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from maas.clock import FakeClock

from lifecycle import auth
from lifecycle.db import make_engine, utcnow
from lifecycle.errors import Unauthenticated
from lifecycle.schema import metadata


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    metadata.create_all(engine)
    return sessionmaker(engine)


def test_a_verified_token_is_cached_for_its_period(sessions: sessionmaker[Session]) -> None:
    clock, hasher = FakeClock(), CountingHasher()
    verifier = auth.TokenVerifier(30.0, hasher=hasher, timer=clock.monotonic)
    with sessions.begin() as s:
        issued = auth.bootstrap(s, verifier, None)
    assert issued is not None and issued.token.startswith("mlt_" + issued.public_id + "_")
    with sessions() as s:
        for _ in range(5):
            assert verifier.verify(s, issued.token).name == "admin"
        assert hasher.verifications == 1
        clock.advance(31)
        verifier.verify(s, issued.token)
        assert hasher.verifications == 2


def test_revocation_forgets_the_cached_token(sessions: sessionmaker[Session]) -> None:
    verifier = auth.TokenVerifier(30.0, hasher=CountingHasher(), timer=FakeClock().monotonic)
    with sessions.begin() as s:
        issued = auth.bootstrap(s, verifier, "a-chosen-token-of-16+")
    with sessions() as s:
        verifier.verify(s, "a-chosen-token-of-16+")
    with sessions.begin() as s:
        auth.revoke_token(s, verifier, issued.public_id)  # type: ignore[union-attr]
    with sessions() as s, pytest.raises(Unauthenticated, match="revoked"):
        verifier.verify(s, "a-chosen-token-of-16+")


def test_wrong_expired_and_malformed_tokens(sessions: sessionmaker[Session]) -> None:
    verifier = auth.TokenVerifier(0, hasher=CountingHasher())
    with sessions.begin() as s:
        issued = auth.bootstrap(s, verifier, None)
        user = auth.get_user(s, "admin")
        old = auth.issue_token(s, verifier, user, expires_at=utcnow() - dt.timedelta(seconds=1))
    assert issued is not None
    with sessions() as s:
        with pytest.raises(Unauthenticated, match="unknown token"):
            verifier.verify(s, issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B"))
        with pytest.raises(Unauthenticated, match="expired"):
            verifier.verify(s, old.token)
        with pytest.raises(Unauthenticated, match="too long"):
            verifier.verify(s, "x" * 400)
        hashes = [t.hash for t in auth.list_tokens(s, "admin")]
    assert all(h.startswith("$argon2id$") for h in hashes) and issued.token not in "".join(hashes)
    with sessions.begin() as s, pytest.raises(Exception, match="16-300 characters"):
        auth.issue_token(s, verifier, auth.get_user(s, "admin"), token="short")
