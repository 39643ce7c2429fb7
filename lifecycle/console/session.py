"""Browser sessions of the web console: a signed, HttpOnly cookie standing for a verified token.

How it works
  * ``POST /api/v1/session {"token": …}`` verifies the token like a bearer token (argon2) and sets
    the cookie ``maas_session`` (HttpOnly, SameSite=Strict, Path=/, Secure when the request came
    over https). The cookie holds no token: only the user's name, the token's public id, a random
    session id and the time it was issued, signed with the console's secret (itsdangerous). It is
    valid for :data:`SESSION_SECONDS` from sign-in.
  * On every ``/api/`` request without an ``Authorization`` header, :class:`SessionMiddleware`
    checks the cookie's signature and age, then reads the token's row: a revoked or expired token,
    a deactivated user or a changed user ends the session at once. The rights are the user's
    current ones (a role change applies on the next request). The caller becomes the request's
    principal, which every route's ``current_principal`` / ``require`` then uses — the console calls
    the same routes as any API client.
  * CSRF: a mutating request (POST, PUT, PATCH, DELETE) authenticated by the cookie must carry the
    header ``X-CSRF-Token`` equal to the session's CSRF token (an HMAC of the session id, given by
    ``POST``/``GET /api/v1/session``); otherwise it is refused with 403 and the refusal audited.
    SameSite=Strict already keeps other sites' requests from carrying the cookie; the header is the
    second lock. Bearer-token clients are not affected (no cookie is consulted when the header is
    present).
  * ``DELETE /api/v1/session`` clears the cookie and puts the session id on this process's list of
    ended sessions until the cookie would have expired anyway. (With several replicas, a copy of a
    logged-out cookie stays usable on the others until it expires or its token is revoked.)

The secret: ``MAAS_LIFECYCLE_CONSOLE_SECRET`` when set (replicas behind one address must share it),
else ``<data dir>/console-secret``, created on first start with 32 random bytes, mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, MutableMapping

from cachetools import TTLCache
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from lifecycle import audit
from lifecycle.auth import Principal, Token, user_rights
from lifecycle.db import utcnow

log = logging.getLogger(__name__)

COOKIE = "maas_session"
CSRF_HEADER = "x-csrf-token"
SECRET_ENV = "MAAS_LIFECYCLE_CONSOLE_SECRET"
SECRET_FILE = "console-secret"
#: How long a console session lasts from sign-in.
SESSION_SECONDS = 8 * 3600
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The sign-in route itself takes a token in its body, never the cookie.
SIGN_IN_PATH = "/api/v1/session"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def load_secret(data_dir: Path, environ: MutableMapping[str, str] | None = None) -> bytes:
    """The signing secret (see the module's docstring)."""
    env = os.environ if environ is None else environ
    given = env.get(SECRET_ENV)
    if given:
        if len(given) < 16:
            raise ValueError(f"{SECRET_ENV} must have at least 16 characters")
        return given.encode()
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this data directory made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    return value


@dataclass(frozen=True)
class Claims:
    """What a session cookie says (signed)."""

    user: str
    token_id: str
    sid: str
    issued: float


class SessionKeeper:
    """Signs and checks session cookies, derives CSRF tokens, remembers ended sessions."""

    def __init__(self, secret: bytes, *, max_age: int = SESSION_SECONDS,
                 timer: Callable[[], float] = time.time) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="maas-lifecycle-console-session")
        self._csrf_key = hashlib.sha256(b"csrf:" + secret).digest()
        self.max_age = max_age
        self._timer = timer
        self._ended: TTLCache[str, bool] = TTLCache(maxsize=100_000, ttl=max_age, timer=timer)
        self._lock = threading.Lock()

    def issue(self, principal: Principal) -> tuple[str, Claims]:
        claims = Claims(principal.name, principal.token_id, secrets.token_urlsafe(16), self._timer())
        value = self._serializer.dumps({"u": claims.user, "t": claims.token_id, "s": claims.sid})
        return value, claims

    def load(self, cookie: str) -> Claims | None:
        """The claims of a well-signed, unexpired, not ended cookie, else None."""
        if not cookie or len(cookie) > 1000:
            return None
        try:
            data, issued = self._serializer.loads(cookie, max_age=self.max_age, return_timestamp=True)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("u", "t", "s")):
            return None
        with self._lock:
            if data["s"] in self._ended:
                return None
        return Claims(data["u"], data["t"], data["s"], issued.timestamp())

    def end(self, claims: Claims) -> None:
        with self._lock:
            self._ended[claims.sid] = True

    def csrf_token(self, claims: Claims) -> str:
        return hmac.new(self._csrf_key, claims.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, claims: Claims, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token(claims), given or "")

    def expires(self, claims: Claims) -> float:
        return claims.issued + self.max_age


def principal_of(session: Session, claims: Claims) -> Principal | None:
    """The caller a session stands for, when its token and user are still valid."""
    row = session.scalar(select(Token).where(Token.public_id == claims.token_id))
    if row is None or row.revoked_at is not None or row.user.name != claims.user or not row.user.active:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return Principal(row.user.name, user_rights(row.user), row.public_id)


def cookie_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == COOKIE:
                    return val
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == wanted:
            return value.decode("latin-1")
    return None


class SessionMiddleware:
    """Makes a valid session cookie the principal of ``/api/`` requests that have no bearer token,
    and refuses mutating cookie requests without the right CSRF header (403, audited)."""

    def __init__(self, app: ASGIApp, *, keeper: Callable[[], SessionKeeper | None],
                 sessions: Callable[[], sessionmaker[Session] | None]) -> None:
        self.app = app
        self._keeper = keeper
        self._sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        keeper, factory = self._keeper(), self._sessions()
        cookie = cookie_of(scope)
        if (keeper is None or factory is None or cookie is None or _header(scope, b"authorization")
                or (scope["method"] == "POST" and scope["path"] == SIGN_IN_PATH)):
            await self.app(scope, receive, send)
            return
        claims = keeper.load(cookie)
        if claims is None:
            await self.app(scope, receive, send)  # no valid session: the route answers 401
            return
        principal = await run_in_threadpool(self._principal, factory, claims)
        if principal is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] in MUTATING and not keeper.csrf_ok(claims, _header(scope, CSRF_HEADER.encode())):
            await run_in_threadpool(self._audit_csrf, factory, principal, scope)
            await _json(send, 403, {"error": "a request made with the session cookie needs the header "
                                             "X-CSRF-Token of its session", "field": "X-CSRF-Token"})
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["console_session"] = claims
        await self.app(scope, receive, send)

    @staticmethod
    def _principal(factory: sessionmaker[Session], claims: Claims) -> Principal | None:
        with factory() as session:
            return principal_of(session, claims)

    @staticmethod
    def _audit_csrf(factory: sessionmaker[Session], principal: Principal, scope: Scope) -> None:
        try:
            with factory.begin() as session:
                audit.record(session, actor=principal.name, action=f"{scope['method']} {scope['path']}",
                             object_type="session", object_name=principal.name, outcome="refused",
                             detail={"status": 403, "reason": "missing or wrong X-CSRF-Token"})
        except Exception:  # the answer must not depend on the audit write
            log.exception("could not record a refused request in the audit trail")


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
