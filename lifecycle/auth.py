"""Users, roles, rights and bearer tokens (docs/lifecycle.md).

* A **right** is one of :data:`RIGHTS`. A **role** is a name (≤ 30 characters), a set of rights
  and a state; an inactive role grants nothing. The built-in role ``administrator`` has every
  right and cannot be changed or removed.
* A **user** has roles and tokens. A token is ``mlt_<public id>_<secret>``: the public id finds
  its one row through a unique index, then argon2 (argon2-cffi) verifies the whole token against
  the stored hash. Only the hash is stored; the token is shown once, when it is made.
  Verified tokens are cached for ``token_cache_seconds`` (cachetools) so that a request does not
  pay argon2's deliberate cost each time; a revocation clears this process's cache at once and
  other processes' caches within that time.
* On an empty database :func:`bootstrap` creates the ``admin`` user with the administrator role
  and a token (``MAAS_LIFECYCLE_ADMIN_TOKEN`` when set, else a new one the caller prints once).

The service functions take a SQLAlchemy session in an open transaction and raise
:mod:`lifecycle.errors` exceptions; they write no audit entries (the API layer does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cachetools import TTLCache
from sqlalchemy import Boolean, ForeignKey, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from lifecycle.db import Base, UTCDateTime, utcnow
from lifecycle.errors import Conflict, InvalidInput, NotFound, Unauthenticated

#: Every right a role may grant (docs/lifecycle.md).
RIGHTS: tuple[str, ...] = (
    "models.create", "models.upload", "models.edit", "models.train", "models.prepare",
    "models.publish", "models.infer", "models.delete", "markups.edit", "datasets.upload",
    "incidents.edit", "admin",
)
ADMIN_ROLE = "administrator"
ADMIN_USER = "admin"
TOKEN_PREFIX = "mlt_"
ROLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\- ]{0,29}$")
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,99}$")
_TOKEN = re.compile(r"^mlt_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,200})$")
#: A token chosen by the operator (MAAS_LIFECYCLE_ADMIN_TOKEN) need not be of our form; it has at least this many characters.
MIN_CHOSEN_TOKEN = 16
MAX_TOKEN = 300


def public_id_of(token: str) -> str:
    """The public id of a token: in the token (``mlt_<id>_…``), else derived from a SHA-256 of it.

    The id only finds the row; argon2 verifies the token itself.
    """
    match = _TOKEN.match(token)
    if match:
        return match.group(1)
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rights: Mapped[list["RoleRight"]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                     order_by="RoleRight.right")


class RoleRight(Base):
    __tablename__ = "role_rights"

    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)
    right: Mapped[str] = mapped_column(String(30), primary_key=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    roles: Mapped[list[Role]] = relationship(secondary="user_roles", lazy="selectin", order_by="Role.name")


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"), primary_key=True)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    hash: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    user: Mapped[User] = relationship(lazy="joined")


@dataclass(frozen=True)
class Principal:
    """Who calls: the user's name and the rights of its active roles."""

    name: str
    rights: frozenset[str]
    token_id: str = ""

    def has(self, right: str) -> bool:
        return right in self.rights


@dataclass(frozen=True)
class IssuedToken:
    public_id: str
    token: str  # shown once, never stored


def user_rights(user: User) -> frozenset[str]:
    """Rights granted by the user's active roles (the administrator role grants every right)."""
    if not user.active:
        return frozenset()
    rights: set[str] = set()
    for role in user.roles:
        if not role.active:
            continue
        if role.builtin and role.name == ADMIN_ROLE:
            rights.update(RIGHTS)
        rights.update(r.right for r in role.rights)
    return frozenset(rights)


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal`: one indexed lookup, argon2, a TTL cache."""

    def __init__(self, cache_seconds: float = 30.0, *, hasher: PasswordHasher | None = None,
                 cache_size: int = 1024, timer: Callable[[], float] = time.monotonic) -> None:
        self.hasher = hasher or PasswordHasher()
        # keyed by a SHA-256 of the token, so the process's memory holds no usable token
        self._cache: TTLCache[bytes, Principal] | None = (
            TTLCache(maxsize=cache_size, ttl=cache_seconds, timer=timer) if cache_seconds > 0 else None)
        self._lock = threading.Lock()

    def hash(self, token: str) -> str:
        return self.hasher.hash(token)

    def forget(self, public_id: str | None = None) -> None:
        """Drop cached principals (of one token, or all: after a change of roles or rights)."""
        if self._cache is None:
            return
        with self._lock:
            if public_id is None:
                self._cache.clear()
            else:
                for key in [k for k, p in self._cache.items() if p.token_id == public_id]:
                    self._cache.pop(key, None)

    def verify(self, session: Session, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).digest()
        if self._cache is not None:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None:
                return cached
        if not token or len(token) > MAX_TOKEN:
            raise Unauthenticated("the bearer token is empty or too long")
        row = session.scalar(select(Token).where(Token.public_id == public_id_of(token)))
        if row is None:
            raise Unauthenticated("unknown token")
        try:
            self.hasher.verify(row.hash, token)
        except (VerifyMismatchError, VerificationError, InvalidHashError) as exc:
            raise Unauthenticated("unknown token") from exc
        if row.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise Unauthenticated("the token has expired")
        if not row.user.active:
            raise Unauthenticated(f"the user {row.user.name!r} is deactivated")
        principal = Principal(row.user.name, user_rights(row.user), row.public_id)
        if self._cache is not None:
            with self._lock:
                self._cache[key] = principal
        return principal


# -- names and validation ------------------------------------------------------------------------

def check_rights(rights: Iterable[str], field: str = "rights") -> list[str]:
    out = sorted(set(rights))
    for i, right in enumerate(out):
        if right not in RIGHTS:
            raise InvalidInput(f"unknown right {right!r}; rights are {', '.join(RIGHTS)}", field=field)
    return out


def _role_name(name: str) -> str:
    if not ROLE_NAME.match(name):
        raise InvalidInput("a role name is 1-30 letters, digits, spaces, '.', '_' or '-'", field="name")
    return name


def _user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise InvalidInput("a user name is 1-100 letters, digits, '.', '_', '@' or '-'", field="name")
    return name


# -- roles ---------------------------------------------------------------------------------------

def get_role(session: Session, name: str) -> Role:
    role = session.scalar(select(Role).where(Role.name == name))
    if role is None:
        raise NotFound(f"no role {name!r}", field="name")
    return role


def list_roles(session: Session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.name)))


def create_role(session: Session, name: str, rights: Iterable[str], active: bool = True) -> Role:
    _role_name(name)
    wanted = check_rights(rights)
    if session.scalar(select(Role.id).where(Role.name == name)) is not None:
        raise Conflict(f"a role {name!r} exists already", field="name")
    role = Role(name=name, active=active, builtin=False, rights=[RoleRight(right=r) for r in wanted])
    session.add(role)
    session.flush()
    return role


def _mutable(role: Role) -> Role:
    if role.builtin:
        raise Conflict(f"the built-in role {role.name!r} cannot be changed or removed", field="name")
    return role


def update_role(session: Session, name: str, *, rights: Iterable[str] | None = None,
                active: bool | None = None) -> Role:
    role = _mutable(get_role(session, name))
    if rights is not None:
        wanted = check_rights(rights)
        role.rights = [RoleRight(right=r) for r in wanted]
    if active is not None:
        role.active = active
    session.flush()
    return role


def delete_role(session: Session, name: str) -> None:
    role = _mutable(get_role(session, name))
    holders = session.scalars(
        select(User.name).join(UserRole, UserRole.user_id == User.id).where(UserRole.role_id == role.id)).all()
    if holders:
        raise Conflict(f"the role {name!r} is held by {', '.join(sorted(holders))}; take it away first",
                       field="name")
    session.delete(role)
    session.flush()


def role_json(role: Role) -> dict[str, object]:
    rights = list(RIGHTS) if role.builtin and role.name == ADMIN_ROLE else [r.right for r in role.rights]
    return {"name": role.name, "rights": rights, "active": role.active, "builtin": role.builtin}


# -- users and tokens ----------------------------------------------------------------------------

def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}", field="name")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def _roles(session: Session, names: Iterable[str]) -> list[Role]:
    roles = []
    for name in sorted(set(names)):
        role = session.scalar(select(Role).where(Role.name == name))
        if role is None:
            raise InvalidInput(f"no role {name!r}", field="roles")
        roles.append(role)
    return roles


def create_user(session: Session, verifier: TokenVerifier, name: str, roles: Iterable[str]) -> tuple[User, IssuedToken]:
    """A new user with the given roles and a first token (returned, shown once)."""
    _user_name(name)
    role_rows = _roles(session, roles)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user {name!r} exists already", field="name")
    user = User(name=name, active=True, roles=role_rows)
    session.add(user)
    session.flush()
    return user, issue_token(session, verifier, user)


def _keep_an_administrator(session: Session, action: str) -> None:
    """Refuse a change that would leave no active user with the administrator role."""
    holders = session.scalar(
        select(func.count(User.id)).join(UserRole, UserRole.user_id == User.id).join(Role, Role.id == UserRole.role_id)
        .where(Role.name == ADMIN_ROLE, User.active.is_(True)))
    if not holders:
        raise Conflict(f"cannot {action}: no active user would hold the role {ADMIN_ROLE!r} any more", field="roles")


def update_user(session: Session, verifier: TokenVerifier, name: str, *, roles: Iterable[str] | None = None,
                active: bool | None = None) -> User:
    user = get_user(session, name)
    if roles is not None:
        user.roles = _roles(session, roles)
    if active is not None:
        user.active = active
    session.flush()
    _keep_an_administrator(session, f"change the user {name!r}")
    verifier.forget()
    return user


def delete_user(session: Session, verifier: TokenVerifier, name: str) -> None:
    user = get_user(session, name)
    session.delete(user)
    session.flush()
    _keep_an_administrator(session, f"delete the user {name!r}")
    verifier.forget()


def issue_token(session: Session, verifier: TokenVerifier, user: User, *, token: str | None = None,
                description: str = "", expires_at: dt.datetime | None = None) -> IssuedToken:
    """A new token of ``user``; ``token`` given: that exact token (the bootstrap one)."""
    if token is None:
        public_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}{public_id}_{secrets.token_urlsafe(32)}"
    else:
        if len(token) < MIN_CHOSEN_TOKEN or len(token) > MAX_TOKEN or any(c.isspace() for c in token):
            raise InvalidInput(f"a chosen token has {MIN_CHOSEN_TOKEN}-{MAX_TOKEN} characters and no spaces",
                               field="token")
        public_id = public_id_of(token)
        if session.scalar(select(Token.id).where(Token.public_id == public_id)) is not None:
            raise Conflict("a token with this public id exists already", field="token")
    session.add(Token(public_id=public_id, user_id=user.id, hash=verifier.hash(token),
                      description=description[:200], expires_at=expires_at))
    session.flush()
    return IssuedToken(public_id, token)


def new_token_value() -> str:
    return f"{TOKEN_PREFIX}{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def list_tokens(session: Session, user_name: str) -> list[Token]:
    user = get_user(session, user_name)
    return list(session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.id)))


def revoke_token(session: Session, verifier: TokenVerifier, public_id: str) -> Token:
    row = session.scalar(select(Token).where(Token.public_id == public_id))
    if row is None:
        raise NotFound(f"no token {public_id!r}", field="token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    verifier.forget(public_id)
    return row


def token_json(row: Token) -> dict[str, object]:
    def iso(t: dt.datetime | None) -> str | None:
        return t.isoformat().replace("+00:00", "Z") if t else None

    return {"id": row.public_id, "user": row.user.name, "description": row.description,
            "created": iso(row.created_at), "expires": iso(row.expires_at), "revoked": iso(row.revoked_at)}


def user_json(user: User) -> dict[str, object]:
    return {"name": user.name, "roles": [r.name for r in user.roles], "active": user.active,
            "rights": sorted(user_rights(user))}


# -- bootstrap -----------------------------------------------------------------------------------

def ensure_admin_role(session: Session) -> Role:
    role = session.scalar(select(Role).where(Role.name == ADMIN_ROLE))
    if role is None:
        role = Role(name=ADMIN_ROLE, active=True, builtin=True, rights=[])
        session.add(role)
        session.flush()
    return role


def bootstrap(session: Session, verifier: TokenVerifier, admin_token: str | None) -> IssuedToken | None:
    """On a database without users: the administrator role, the ``admin`` user and its token.

    Returns the issued token (the caller prints it once when it was generated), or None when
    users exist already.
    """
    role = ensure_admin_role(session)
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    user = User(name=ADMIN_USER, active=True, roles=[role])
    session.add(user)
    session.flush()
    return issue_token(session, verifier, user, token=admin_token or None, description="bootstrap")
