"""ZooKeeper authentication and ACLs by role (docs/security.md).

**Credentials** of a process come from its environment, never from the command line:
``MAAS_ZK_AUTH_FILE`` names a JSON file, or ``MAAS_ZK_USER``/``MAAS_ZK_PASSWORD`` hold a digest
user. The file::

    {"scheme": "digest", "user": "deployer", "password": "…"}
    {"scheme": "sasl", "mechanism": "GSSAPI", "service": "zookeeper", "principal": "maas/host@REALM"}
    {"scheme": "sasl", "mechanism": "DIGEST-MD5", "user": "…", "password": "…"}

each optionally with ``"tls": {"ca": PATH, "cert": PATH, "key": PATH, "verify": true}`` (also
``MAAS_ZK_TLS_CA``/``_CERT``/``_KEY``), handed to kazoo's own TLS support. Passwords are pydantic
``SecretStr``: no repr, log line or error message shows them. kazoo sends the credentials again
on every new connection, so a process re-authenticates after a session expiry by itself.

**ACLs** follow a policy, the JSON znode ``<config znode>.acl`` that an administrator writes with
``maas_acl apply``: for each role (``admin``, ``controller``, ``runner``, ``deployer``,
``reader``) the ZooKeeper identities that hold it (``digest:user:hash``, ``sasl:principal``,
``ip:10.0.0.0/8``, ``world:anyone``). :data:`PERMISSIONS` is the one table of who may do what
on which kind of znode. Each process sets its kazoo client's default ACL to the one for the
znodes it creates (:func:`use_policy`); without a policy znode, everything is created open, as
before. Every ZooKeeper client of the project connects through :func:`maas.zk.connect`, which
takes its :class:`ZkAccess` from here.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError
from kazoo.protocol.serialization import Auth
from kazoo.security import ACL, Id, Permissions, make_digest_acl_credential
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from maas.errors import ConfigError, describe_validation

log = logging.getLogger(__name__)

AUTH_FILE_ENV = "MAAS_ZK_AUTH_FILE"
USER_ENV, PASSWORD_ENV = "MAAS_ZK_USER", "MAAS_ZK_PASSWORD"
TLS_ENV = {"ca": "MAAS_ZK_TLS_CA", "cert": "MAAS_ZK_TLS_CERT", "key": "MAAS_ZK_TLS_KEY"}
POLICY_SUFFIX = ".acl"


# -- credentials --------------------------------------------------------------------------------------

class ZkTls(BaseModel):
    """TLS to ZooKeeper (its ``secureClientPort``), through kazoo's ``use_ssl``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca: Path | None = Field(None, description="CA bundle verifying the servers (default: the system's)")
    cert: Path | None = Field(None, description="Client certificate, for servers that require one")
    key: Path | None = Field(None, description="The client certificate's key")
    key_password: SecretStr | None = None
    verify: bool = True

    @model_validator(mode="after")
    def _files(self) -> "ZkTls":
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together")
        for name in ("ca", "cert", "key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"tls.{name}: {path} does not exist or is not a file")
        return self


class ZkCredentials(BaseModel):
    """Who a process is to ZooKeeper."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Literal["digest", "sasl"] = "digest"
    user: str | None = Field(None, min_length=1)
    password: SecretStr | None = None
    #: SASL mechanism: ``GSSAPI`` (Kerberos, from the process's ticket cache/keytab) or ``DIGEST-MD5``.
    mechanism: Literal["GSSAPI", "DIGEST-MD5"] = "GSSAPI"
    service: str = "zookeeper"
    principal: str | None = None
    tls: ZkTls | None = None

    @field_validator("user")
    @classmethod
    def _no_colon(cls, value: str | None) -> str | None:
        if value is not None and ":" in value:
            raise ValueError("must not contain ':'")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "ZkCredentials":
        needs_password = self.scheme == "digest" or self.mechanism == "DIGEST-MD5"
        if needs_password and (not self.user or self.password is None or not self.password.get_secret_value()):
            what = "digest" if self.scheme == "digest" else "SASL DIGEST-MD5"
            raise ValueError(f"{what} credentials need 'user' and 'password'")
        return self

    @property
    def identity(self) -> str:
        """The ZooKeeper ACL identity these credentials authenticate as (``scheme:id``)."""
        if self.scheme == "digest":
            assert self.user is not None and self.password is not None
            return "digest:" + make_digest_acl_credential(self.user, self.password.get_secret_value())
        return f"sasl:{self.user if self.mechanism == 'DIGEST-MD5' else (self.principal or '')}"

    @property
    def name(self) -> str:
        """Who, for messages: never the secret."""
        return f"{self.scheme} user {self.user or self.principal or '(ticket cache)'}"


class ZkAccess(BaseModel):
    """A process's ZooKeeper credentials (None: anonymous) and TLS settings (None: plain TCP)."""

    model_config = ConfigDict(frozen=True)

    credentials: ZkCredentials | None = None
    tls: ZkTls | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "ZkAccess":
        env = os.environ if environ is None else environ
        if env.get(AUTH_FILE_ENV):
            access = cls.from_file(Path(env[AUTH_FILE_ENV]))
        elif env.get(USER_ENV) or env.get(PASSWORD_ENV):
            access = cls(credentials=_validated(ZkCredentials, {"user": env.get(USER_ENV),
                                                                "password": env.get(PASSWORD_ENV)},
                                                f"{USER_ENV}/{PASSWORD_ENV}"))
        else:
            access = cls()
        tls_env = {key: env[name] for key, name in TLS_ENV.items() if env.get(name)}
        if tls_env and access.tls is None:
            access = access.model_copy(update={"tls": _validated(ZkTls, tls_env, "MAAS_ZK_TLS_*")})
        return access

    @classmethod
    def from_file(cls, path: Path) -> "ZkAccess":
        source = f"ZooKeeper credentials file {path}"
        try:
            mode = path.stat().st_mode
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read it: {exc.strerror or exc}") from exc
        except ValueError as exc:
            # The message names the position only: the file's text may hold the password.
            raise ConfigError(f"{source}: not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
        if mode & stat.S_IRWXO:
            log.warning("%s is readable by every user of this machine; chmod 600 it", source)
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        credentials = _validated(ZkCredentials, raw, source)
        return cls(credentials=credentials, tls=credentials.tls)

    @property
    def authenticated(self) -> bool:
        return self.credentials is not None

    def describe(self) -> str:
        return self.credentials.name if self.credentials is not None else "no credentials (anonymous)"

    def kazoo_options(self) -> dict[str, Any]:
        """Keyword arguments for ``KazooClient``."""
        options: dict[str, Any] = {}
        c = self.credentials
        if c is not None and c.scheme == "digest":
            assert c.user is not None and c.password is not None
            options["auth_data"] = [("digest", f"{c.user}:{c.password.get_secret_value()}")]
        elif c is not None:
            sasl: dict[str, Any] = {"mechanism": c.mechanism, "service": c.service}
            if c.mechanism == "DIGEST-MD5":
                assert c.password is not None
                sasl.update(username=c.user, password=c.password.get_secret_value())
            elif c.principal:
                sasl["principal"] = c.principal
            options["sasl_options"] = sasl
        if self.tls is not None:
            t = self.tls
            options.update(use_ssl=True, verify_certs=t.verify, ca=_str(t.ca), certfile=_str(t.cert),
                           keyfile=_str(t.key),
                           keyfile_password=t.key_password.get_secret_value() if t.key_password else None)
        return options


class _RedactAuth(logging.Filter):
    """kazoo logs every request it sends at DEBUG, digest passwords included (``Auth(…,
    auth='user:password')``); this filter on kazoo's logger replaces the secret before any
    handler sees the record. kazoo offers no switch for it, hence a filter of our own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, Auth) for a in record.args):
            record.args = tuple(a._replace(auth="<redacted>") if isinstance(a, Auth) else a for a in record.args)
        return True


_REDACT = _RedactAuth()


def protect_kazoo_logs(logger_name: str = "kazoo.client") -> None:
    """Install the redacting filter on kazoo's logger (idempotent)."""
    logger = logging.getLogger(logger_name)
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _validated(model: type[BaseModel], raw: dict[str, Any], source: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation(exc)}") from None  # the input may hold a password


def digest_identity(user: str, password: str) -> str:
    """``digest:user:base64(sha1(user:password))``, the identity a digest user has in ACLs."""
    return "digest:" + make_digest_acl_credential(user, password)


# -- the policy: roles, kinds of znode, and the one table of permissions ----------------------------------

class Role(str, Enum):
    ADMIN = "admin"
    CONTROLLER = "controller"
    RUNNER = "runner"
    DEPLOYER = "deployer"
    READER = "reader"


class Kind(str, Enum):
    """Kinds of znode, by what they hold."""

    ANCESTOR = "ancestor"  # parents of the MaaS roots (/metron, /metron/maas, /maas)
    CONFIG = "config"  # the config znode, its .ext sibling and the .acl policy
    QUEUE = "queue"  # the queue's parent
    QUEUE_ITEM = "queue item"
    STATE = "state"  # everything under the state root: desired state, statuses, election
    SERVICE_ROOT = "service root"
    REGISTRATION = "registration"  # <serviceRoot>/<name> and <serviceRoot>/<name>/<instanceId>


R, W, C, D, A = Permissions.READ, Permissions.WRITE, Permissions.CREATE, Permissions.DELETE, Permissions.ADMIN
ALL = Permissions.ALL

#: Who may do what: ``PERMISSIONS[kind][role]``. ZooKeeper checks CREATE and DELETE on the
#: parent, so "may deploy" is CREATE on the queue and "may remove a registration" is DELETE on
#: its model's znode. Administrators hold every right everywhere (ADMIN: changing ACLs).
PERMISSIONS: dict[Kind, dict[Role, int]] = {
    Kind.ANCESTOR: {Role.ADMIN: ALL, Role.CONTROLLER: R, Role.RUNNER: R, Role.DEPLOYER: R, Role.READER: R},
    Kind.CONFIG: {Role.ADMIN: ALL, Role.CONTROLLER: R, Role.RUNNER: R, Role.DEPLOYER: R, Role.READER: R},
    Kind.QUEUE: {Role.ADMIN: ALL, Role.CONTROLLER: R | D, Role.DEPLOYER: C},
    Kind.QUEUE_ITEM: {Role.ADMIN: ALL, Role.CONTROLLER: R, Role.DEPLOYER: R},
    Kind.STATE: {Role.ADMIN: ALL, Role.CONTROLLER: R | W | C | D, Role.RUNNER: R, Role.DEPLOYER: R,
                 Role.READER: R},
    Kind.SERVICE_ROOT: {Role.ADMIN: ALL, Role.CONTROLLER: R, Role.RUNNER: R | C, Role.DEPLOYER: R, Role.READER: R},
    Kind.REGISTRATION: {Role.ADMIN: ALL, Role.CONTROLLER: R, Role.RUNNER: R | W | C | D, Role.DEPLOYER: R,
                        Role.READER: R},
}

#: The kind of znode each kind of process creates (its kazoo client's default ACL).
CREATES: dict[str, Kind] = {"controller": Kind.STATE, "runner": Kind.REGISTRATION, "deployer": Kind.QUEUE_ITEM}


def _parse_id(text: str) -> Id:
    scheme, sep, ident = text.partition(":")
    if not sep or not scheme or not ident:
        raise ValueError(f"{text!r} is not a ZooKeeper identity 'scheme:id' (e.g. digest:user:hash, sasl:alice)")
    if scheme == "digest" and ident.count(":") != 1:
        raise ValueError(f"{text!r}: a digest identity is digest:user:hash (see maas_acl digest)")
    return Id(scheme, ident)


class AclPolicy(BaseModel):
    """The identities holding each role (the content of the ``.acl`` znode)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    admin: list[str] = Field(min_length=1)
    controller: list[str] = Field(default_factory=list)
    runner: list[str] = Field(default_factory=list)
    deployer: list[str] = Field(default_factory=list)
    reader: list[str] = Field(default_factory=list)

    @field_validator("admin", "controller", "runner", "deployer", "reader")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        for value in values:
            _parse_id(value)
        return values

    def holders(self, role: Role) -> list[str]:
        return list(getattr(self, role.value))

    def acl(self, kind: Kind) -> list[ACL]:
        """The ACL of a znode of this kind: one entry per identity, its roles' rights combined."""
        perms: dict[str, int] = {}
        for role, granted in PERMISSIONS[kind].items():
            for ident in self.holders(role):
                perms[ident] = perms.get(ident, 0) | granted
        return [ACL(p, _parse_id(ident)) for ident, p in sorted(perms.items())]

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str) -> "AclPolicy":
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {describe_validation(exc)}") from exc


def policy_path(config_path: str) -> str:
    return config_path + POLICY_SUFFIX


def read_policy(client: KazooClient, config_path: str) -> AclPolicy | None:
    """The cluster's ACL policy; None when there is none (an open cluster)."""
    from maas.zk import ZK_ERRORS, zk_error

    path = policy_path(config_path)
    try:
        data, _ = client.get(path)
    except NoNodeError:
        return None
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot read the ACL policy {path}", exc) from exc
    return AclPolicy.from_json(data, source=f"ACL policy {path}")


def use_policy(client: KazooClient, config_path: str, creator: str) -> AclPolicy | None:
    """Make ``client`` create its znodes with the ACL the policy gives what ``creator``
    (``controller``, ``runner``, ``deployer``) creates; open when there is no policy."""
    policy = read_policy(client, config_path)
    client.default_acl = policy.acl(CREATES[creator]) if policy is not None else None
    if policy is None and client.auth_data:
        log.warning("no ACL policy at %s: znodes this process creates are open to every client "
                    "(an administrator sets one with maas_acl apply)", policy_path(config_path))
    return policy


# -- applying a policy (administrators) ------------------------------------------------------------------

def layout_kinds(layout: Any, config_paths: Iterable[str]) -> dict[str, Kind]:
    """The znodes MaaS owns and their kinds (descendants take theirs from the root they are under):
    the config znodes given (the config znode and its siblings), and the layout's roots."""
    roots = {path: Kind.CONFIG for path in config_paths}
    roots.update({layout.queue: Kind.QUEUE, layout.state_root: Kind.STATE, layout.models: Kind.STATE,
                  layout.requests: Kind.STATE, layout.statuses: Kind.STATE, f"{layout.state_root}/leader": Kind.STATE,
                  layout.service_root: Kind.SERVICE_ROOT})
    return roots


def _child_kind(kind: Kind) -> Kind:
    return {Kind.QUEUE: Kind.QUEUE_ITEM, Kind.SERVICE_ROOT: Kind.REGISTRATION}.get(kind, kind)


def apply_policy(client: KazooClient, policy: AclPolicy, config_path: str, roots: dict[str, Kind],
                 *, credentials: ZkCredentials | None) -> dict[Kind, int]:
    """Write the policy to its znode and its ACLs on the MaaS znodes (creating the missing layout
    roots), their descendants and their ancestors. Needs an administrator's session; refuses
    credentials the policy does not list as administrator (they would lock themselves out).
    Idempotent: run it again after any change of the policy (rotation). Returns how many znodes
    of each kind were set."""
    from maas.zk import ZK_ERRORS, zk_error

    if credentials is None or credentials.identity not in policy.admin:
        who = f"{credentials.name} ({credentials.identity.split(':')[0]})" if credentials is not None else "anonymous"
        raise ConfigError(f"this process authenticates as {who}, which is not among the policy's administrators: "
                          "applying the policy would lock it out")
    counts: dict[Kind, int] = {}
    done: set[str] = set()

    def set_acl(path: str, kind: Kind) -> None:
        if path not in done:
            client.set_acls(path, policy.acl(kind))
            done.add(path)
            counts[kind] = counts.get(kind, 0) + 1

    roots = {**roots, policy_path(config_path): Kind.CONFIG}
    try:
        for path in sorted({a for path in roots for a in _ancestors(path)} - set(roots)):
            _ensure(client, path, policy.acl(Kind.ANCESTOR))
            set_acl(path, Kind.ANCESTOR)
        _ensure(client, policy_path(config_path), policy.acl(Kind.CONFIG))
        client.set(policy_path(config_path), policy.to_json())
        for path, kind in sorted(roots.items()):
            if kind is Kind.CONFIG and not client.exists(path):
                continue  # absent config znodes mean defaults; their writers create them
            _ensure(client, path, policy.acl(kind))
            set_acl(path, kind)
            for child, child_kind in _descendants(client, path, _child_kind(kind)):
                set_acl(child, child_kind)
    except ZK_ERRORS as exc:
        raise zk_error("cannot apply the ACL policy", exc) from exc
    return counts


def _ancestors(path: str) -> Iterable[str]:
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        yield "/" + "/".join(parts[:i])


def _ensure(client: KazooClient, path: str, acl: list[ACL]) -> None:
    if client.exists(path):
        return
    for ancestor in _ancestors(path):
        if not client.exists(ancestor):
            try:
                client.create(ancestor, b"", acl=acl)
            except NodeExistsError:
                pass
    try:
        client.create(path, b"", acl=acl)
    except NodeExistsError:
        pass


def _descendants(client: KazooClient, path: str, kind: Kind) -> Iterable[tuple[str, Kind]]:
    try:
        children = client.get_children(path)
    except NoNodeError:
        return
    for child in children:
        full = f"{path.rstrip('/')}/{child}"
        yield full, kind
        yield from _descendants(client, full, _child_kind(kind))
