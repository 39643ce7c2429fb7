"""ZooKeeper access: connecting, the znode layout derived from the config, and reading or
publishing the config znode.

Every client of the project connects through :func:`connect`, which authenticates with the
process's credentials (:mod:`maas.zkauth`: ``MAAS_ZK_AUTH_FILE`` or ``MAAS_ZK_USER``/``…PASSWORD``)
and uses TLS when configured. Kazoo errors are translated here into
:class:`~maas.errors.CoordinationError`, and a refusal by an ACL into
:class:`~maas.errors.AccessDenied` (:func:`zk_error`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, KazooException, NoAuthError, NoNodeError, NodeExistsError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from maas.config import DEFAULT_CONFIG_PATH, MaasConfig
from maas.errors import AccessDenied, ConfigError, CoordinationError
from maas.zkauth import ZkAccess

log = logging.getLogger(__name__)

#: Errors that mean "ZooKeeper trouble" when they escape a kazoo call.
ZK_ERRORS: tuple[type[BaseException], ...] = (KazooException, KazooTimeoutError)


def describe(exc: BaseException) -> str:
    """A readable cause for a kazoo error (many have an empty message)."""
    if isinstance(exc, NoAuthError):
        return ("not authorized: the znode's ACL does not grant this process's ZooKeeper identity the right "
                "(check MAAS_ZK_AUTH_FILE and the ACL policy; docs/security.md)")
    if isinstance(exc, AuthFailedError):
        return "ZooKeeper refused this process's credentials (docs/security.md)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def zk_error(what: str, exc: BaseException) -> CoordinationError:
    """The project's error for a failed ZooKeeper call: :class:`AccessDenied` when an ACL or the
    server refused this process, else :class:`CoordinationError`."""
    kind = AccessDenied if isinstance(exc, (NoAuthError, AuthFailedError)) else CoordinationError
    return kind(f"{what}: {describe(exc)}")


def connect(
    quorum: str,
    *,
    timeout: float = 15.0,
    session_timeout: float = 10.0,
    access: ZkAccess | None = None,
) -> KazooClient:
    """Start a kazoo client on ``quorum`` (``host:port[,host:port…][/chroot]``), authenticated
    with ``access`` (default: the process's credentials from its environment).

    Connection retries are unbounded (kazoo reconnects by itself, and sends the credentials again
    on every new connection); command retries are bounded.
    """
    access = ZkAccess.from_environment() if access is None else access
    client = KazooClient(
        hosts=quorum,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=2.0),
        command_retry=KazooRetry(max_tries=5, delay=0.1, max_delay=2.0),
        **access.kazoo_options(),
    )
    try:
        client.start(timeout=timeout)
    except ZK_ERRORS as exc:
        client.close()
        raise zk_error(f"cannot connect to ZooKeeper at {quorum} ({access.describe()})", exc) from exc
    return client


@dataclass(frozen=True)
class Layout:
    """Where everything lives in ZooKeeper (DESIGN.md §2)."""

    queue: str
    service_root: str
    state_root: str

    @classmethod
    def from_config(cls, config: MaasConfig) -> "Layout":
        return cls(queue=config.queue_path, service_root=config.service_root, state_root=config.state_root)

    @property
    def models(self) -> str:
        """Desired state: ``<models>/<name>/<version>``."""
        return f"{self.state_root}/models"

    @property
    def requests(self) -> str:
        """Request statuses: ``<requests>/<requestId>``."""
        return f"{self.state_root}/requests"

    @property
    def statuses(self) -> str:
        """Model statuses: ``<statuses>/<name>/<version>``."""
        return f"{self.state_root}/status"

    def status(self, name: str, version: str) -> str:
        return f"{self.statuses}/{name}/{version}"

    def model(self, name: str, version: str) -> str:
        return f"{self.models}/{name}/{version}"

    def request(self, request_id: str) -> str:
        return f"{self.requests}/{request_id}"

    def service(self, name: str) -> str:
        return f"{self.service_root}/{name}"

    def registration(self, name: str, instance_id: str) -> str:
        return f"{self.service_root}/{name}/{instance_id}"

    def ensure(self, client: KazooClient) -> None:
        for path in (self.queue, self.service_root, self.models, self.requests, self.statuses):
            client.ensure_path(path)


def read_config(client: KazooClient, path: str = DEFAULT_CONFIG_PATH) -> MaasConfig:
    """The config znode's content; defaults when it is absent."""
    try:
        data, _ = client.get(path)
    except NoNodeError:
        return MaasConfig()
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot read config znode {path}", exc) from exc
    return MaasConfig.from_json(data, source=f"config znode {path}")


def publish_config(client: KazooClient, config: MaasConfig, path: str = DEFAULT_CONFIG_PATH) -> None:
    """Write ``config`` to the config znode, creating it if needed; no write when it holds that
    config already (so a process that may only read it can start with the cluster's settings)."""
    data = config.to_json()
    try:
        try:
            current, _ = client.get(path)
            if MaasConfig.from_json(current, source=f"config znode {path}") == config:
                return
        except (NoNodeError, ConfigError):
            pass
        try:
            client.create(path, data, makepath=True)
        except NodeExistsError:
            client.set(path, data)
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot write config znode {path}", exc) from exc
