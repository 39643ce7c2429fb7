"""Routes of users, roles and tokens (docs/lifecycle.md); the logic is in :mod:`lifecycle.auth`.

Reading needs a valid token; every change needs the right ``admin``, except that any user may
list and revoke its own tokens and read itself (``GET /api/v1/whoami``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from lifecycle import audit, auth
from lifecycle.api.deps import PrincipalDep, SessionDep, StateDep, audit_context, require
from lifecycle.auth import Principal
from lifecycle.errors import Forbidden

router = APIRouter(prefix="/api/v1", tags=["administration"])
Admin = Annotated[Principal, Depends(require("admin"))]


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=30)
    rights: list[str] = Field(default_factory=list, max_length=len(auth.RIGHTS))
    active: bool = True


class RolePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rights: list[str] | None = Field(None, max_length=len(auth.RIGHTS))
    active: bool | None = None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    roles: list[str] = Field(default_factory=list, max_length=100)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: list[str] | None = Field(None, max_length=100)
    active: bool | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field("", max_length=200)


@router.get("/whoami", name="users.whoami")
def whoami(who: PrincipalDep) -> dict[str, object]:
    return {"name": who.name, "rights": sorted(who.rights), "token": who.token_id}


@router.get("/roles", name="roles.list")
def list_roles(session: SessionDep, _: PrincipalDep) -> dict[str, object]:
    return {"roles": [auth.role_json(r) for r in auth.list_roles(session)]}


@router.get("/roles/{name}", name="roles.show")
def show_role(name: str, session: SessionDep, _: PrincipalDep) -> dict[str, object]:
    return auth.role_json(auth.get_role(session, name))


@router.post("/roles", status_code=201, name="roles.create")
def create_role(body: RoleIn, request: Request, session: SessionDep, state: StateDep, who: Admin) -> dict[str, object]:
    audit_context(request, object_name=body.name)
    role = auth.create_role(session, body.name, body.rights, body.active)
    audit.record(session, actor=who.name, action="roles.create", object_type="role", object_name=role.name,
                 detail={"rights": [r.right for r in role.rights], "active": role.active})
    return auth.role_json(role)


@router.put("/roles/{name}", name="roles.update")
@router.patch("/roles/{name}", name="roles.update")
def update_role(name: str, body: RolePatch, session: SessionDep, state: StateDep, who: Admin) -> dict[str, object]:
    role = auth.update_role(session, name, rights=body.rights, active=body.active)
    state.verifier.forget()
    audit.record(session, actor=who.name, action="roles.update", object_type="role", object_name=name,
                 detail={"rights": [r.right for r in role.rights], "active": role.active})
    return auth.role_json(role)


@router.delete("/roles/{name}", status_code=204, name="roles.delete")
def delete_role(name: str, session: SessionDep, state: StateDep, who: Admin) -> None:
    auth.delete_role(session, name)
    state.verifier.forget()
    audit.record(session, actor=who.name, action="roles.delete", object_type="role", object_name=name)


@router.get("/users", name="users.list")
def list_users(session: SessionDep, _: PrincipalDep) -> dict[str, object]:
    return {"users": [auth.user_json(u) for u in auth.list_users(session)]}


@router.get("/users/{name}", name="users.show")
def show_user(name: str, session: SessionDep, _: PrincipalDep) -> dict[str, object]:
    return auth.user_json(auth.get_user(session, name))


@router.post("/users", status_code=201, name="users.create")
def create_user(body: UserIn, request: Request, session: SessionDep, state: StateDep, who: Admin) -> dict[str, object]:
    audit_context(request, object_name=body.name)
    user, issued = auth.create_user(session, state.verifier, body.name, body.roles)
    audit.record(session, actor=who.name, action="users.create", object_type="user", object_name=user.name,
                 detail={"roles": [r.name for r in user.roles], "token_id": issued.public_id})
    return {**auth.user_json(user), "token": issued.token, "token_id": issued.public_id}


@router.put("/users/{name}", name="users.update")
@router.patch("/users/{name}", name="users.update")
def update_user(name: str, body: UserPatch, session: SessionDep, state: StateDep, who: Admin) -> dict[str, object]:
    user = auth.update_user(session, state.verifier, name, roles=body.roles, active=body.active)
    audit.record(session, actor=who.name, action="users.update", object_type="user", object_name=name,
                 detail={"roles": [r.name for r in user.roles], "active": user.active})
    return auth.user_json(user)


@router.delete("/users/{name}", status_code=204, name="users.delete")
def delete_user(name: str, session: SessionDep, state: StateDep, who: Admin) -> None:
    auth.delete_user(session, state.verifier, name)
    audit.record(session, actor=who.name, action="users.delete", object_type="user", object_name=name)


@router.get("/users/{name}/tokens", name="tokens.list")
def list_tokens(name: str, session: SessionDep, who: PrincipalDep) -> dict[str, object]:
    if name != who.name and not who.has("admin"):
        raise Forbidden("admin", f"{who.name!r} may list only its own tokens without the right 'admin'")
    return {"tokens": [auth.token_json(t) for t in auth.list_tokens(session, name)]}


@router.post("/users/{name}/tokens", status_code=201, name="tokens.create")
def create_token(name: str, body: TokenIn, session: SessionDep, state: StateDep, who: Admin) -> dict[str, object]:
    user = auth.get_user(session, name)
    issued = auth.issue_token(session, state.verifier, user, description=body.description)
    audit.record(session, actor=who.name, action="tokens.create", object_type="user", object_name=name,
                 detail={"token_id": issued.public_id})
    return {"id": issued.public_id, "user": name, "token": issued.token}


@router.delete("/tokens/{token_id}", name="tokens.revoke")
def revoke_token(token_id: str, session: SessionDep, state: StateDep, who: PrincipalDep) -> dict[str, object]:
    row = auth.revoke_token(session, state.verifier, token_id)
    if row.user.name != who.name and not who.has("admin"):
        raise Forbidden("admin", f"{who.name!r} may revoke only its own tokens without the right 'admin'")
    audit.record(session, actor=who.name, action="tokens.revoke", object_type="token", object_name=token_id,
                 detail={"user": row.user.name})
    return auth.token_json(row)
