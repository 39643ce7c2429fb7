"""What every route depends on: the database session, the caller, its rights, and the service state.

How a router uses it::

    router = APIRouter(prefix="/api/v1/things", tags=["things"])

    @router.post("", status_code=201, name="things.create")      # name = the audit action
    def create(body: ThingIn, session: SessionDep,
               who: Principal = Depends(require("models.edit"))) -> dict:
        thing = things.create(session, body)                     # the logic lives in a service module
        audit.record(session, actor=who.name, action="things.create", object_type="thing",
                     object_name=thing.name, status_after=thing.status)
        return thing_json(thing)                                 # plain JSON, never ORM objects

* :data:`SessionDep` — one SQLAlchemy session per request and ONE transaction: committed when the
  route returns (before the response is sent, so a client never sees an answer whose change is not
  durable), rolled back when it raises. An ``IntegrityError`` at commit becomes a 409, a lost
  database a 503. Return plain dicts: ORM objects are expired by the commit.
* :func:`current_principal` — the :class:`~lifecycle.auth.Principal` of the bearer token (401
  without a valid one). Every read route depends on it (everyone authenticated may read).
* :func:`require` ``(right)`` — the principal if it holds ``right``, else 403 naming the right.
  Refusals (401/403/404/409/422 of a mutating call) are written to the audit trail by the
  exception handler of :mod:`lifecycle.api.app` in a transaction of their own; the route's
  ``name=`` is the action, the path parameters the object. A route that knows more (the object's
  status before a refused call, an object named in the body) calls :func:`audit_context` first.
* :func:`get_state` / :data:`StateDep` — the :class:`ServiceState` of the process (settings, the
  session factory, the token verifier); :func:`store_of` its model store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.auth import Principal, TokenVerifier
from lifecycle.errors import Conflict, Forbidden, Unauthenticated, Unavailable
from lifecycle.settings import LifecycleSettings

if TYPE_CHECKING:
    from maas.store import ModelStore

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """Everything a request may need from its process, built once by ``create_app``."""

    settings: LifecycleSettings
    engine: Engine
    sessions: sessionmaker[Session]
    verifier: TokenVerifier
    #: Filled lazily by modules that need them (the model store, the job pool, …), by name.
    extras: dict[str, Any] = field(default_factory=dict)


def get_state(request: Request) -> ServiceState:
    return request.app.state.lifecycle  # type: ignore[no-any-return]


StateDep = Annotated[ServiceState, Depends(get_state)]


def store_of(state: ServiceState) -> "ModelStore":
    """The process's model store (``--store-uri``), opened on first use and shared (``extras["store"]``)."""
    from maas.errors import MaasError
    from maas.store import open_store

    store = state.extras.get("store")
    if store is None:
        try:
            store = open_store(state.settings.store_uri)
        except MaasError as exc:
            raise Unavailable(f"model store {state.settings.store_uri}: {exc}") from exc
        store = state.extras.setdefault("store", store)
    return store  # type: ignore[no-any-return]


def translate_db_error(exc: DBAPIError) -> Exception:
    """A database error as the lifecycle error a client understands."""
    if isinstance(exc, IntegrityError):
        return Conflict(f"the change conflicts with stored data: {str(exc.orig).splitlines()[0]}")
    if isinstance(exc, OperationalError):
        return Unavailable("the database cannot be reached or is busy; try again")
    return exc


def get_session(request: Request) -> Iterator[Session]:
    session = get_state(request).sessions()
    try:
        yield session
        try:
            session.commit()
        except DBAPIError as exc:
            raise translate_db_error(exc) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: One session and one transaction per request, committed before the response is sent.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("no token: send Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def current_principal(request: Request) -> Principal:
    """The caller (401 when the bearer token is missing, unknown, revoked or expired)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(request)
    state = get_state(request)
    with state.sessions() as session:
        try:
            principal = state.verifier.verify(session, token)
        except OperationalError as exc:
            raise Unavailable("the database cannot be reached; try again") from exc
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(right: str) -> Callable[..., Principal]:
    """A dependency giving the caller when its active roles grant ``right``; else 403 naming it."""

    def dependency(principal: PrincipalDep) -> Principal:
        if not principal.has(right):
            raise Forbidden(right, f"{principal.name!r} lacks the right {right!r} (no active role grants it)")
        return principal

    dependency.__name__ = f"require_{right.replace('.', '_')}"
    return dependency


def audit_context(request: Request, *, object_type: str | None = None, object_name: str | None = None,
                  status_before: str | None = None) -> None:
    """Tell the refusal auditor what the call is about (used when the call is refused)."""
    ctx: dict[str, str | None] = getattr(request.state, "audit", None) or {}
    if object_type is not None:
        ctx["object_type"] = object_type
    if object_name is not None:
        ctx["object_name"] = object_name
    if status_before is not None:
        ctx["status_before"] = status_before
    request.state.audit = ctx
