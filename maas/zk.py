"""ZooKeeper access: connecting, the znode layout derived from the config, and reading or
publishing the config znode.

Kazoo errors are translated here into :class:`~maas.errors.CoordinationError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError, NodeExistsError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from maas.config import DEFAULT_CONFIG_PATH, MaasConfig
from maas.errors import CoordinationError
from maas.quorum import check_reachable, parse_quorum

log = logging.getLogger(__name__)

#: Errors that mean "ZooKeeper trouble" when they escape a kazoo call.
ZK_ERRORS: tuple[type[BaseException], ...] = (KazooException, KazooTimeoutError)


def describe(exc: BaseException) -> str:
    """A readable cause for a kazoo error (many have an empty message)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect(
    quorum: str,
    *,
    timeout: float = 15.0,
    session_timeout: float = 10.0,
) -> KazooClient:
    """Start a kazoo client on ``quorum`` (``host:port[,host:port…][/chroot]``).

    Connection retries are unbounded (kazoo reconnects by itself); command retries are bounded.
    A malformed ``quorum`` is a :class:`~maas.errors.ConfigError`; members that certainly have no
    server (unknown host, connection refused on every one) fail at once rather than at ``timeout``.
    """
    parsed = parse_quorum(quorum)
    check_reachable(parsed)
    logger = _ClientLogger()
    client = KazooClient(
        logger=logger,
        hosts=quorum,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=2.0),
        command_retry=KazooRetry(max_tries=5, delay=0.1, max_delay=2.0),
    )
    try:
        client.start(timeout=timeout)
    except ZK_ERRORS as exc:
        client.close()
        raise CoordinationError(
            f"cannot connect to ZooKeeper at {quorum} within {timeout:g}s ({describe(exc)}): "
            f"is ZooKeeper running at {parsed.member_names()}?"
        ) from exc
    finally:
        logger.connecting = False
    return client


class _ClientLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """kazoo's logger for one client, quiet about each failed attempt while :func:`connect` waits
    for the first session (the outcome is reported once); later disconnections are logged."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("kazoo.client"), {})
        self.connecting = True

    def isEnabledFor(self, level: int) -> bool:
        return (level > logging.WARNING or not self.connecting) and self.logger.isEnabledFor(level)


@dataclass(frozen=True)
class Layout:
    """Where everything lives in ZooKeeper (docs/contracts.md)."""

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
        raise CoordinationError(f"cannot read config znode {path}: {describe(exc)}") from exc
    return MaasConfig.from_json(data, source=f"config znode {path}")


def publish_config(client: KazooClient, config: MaasConfig, path: str = DEFAULT_CONFIG_PATH) -> None:
    """Write ``config`` to the config znode, creating it if needed."""
    data = config.to_json()
    try:
        try:
            client.create(path, data, makepath=True)
        except NodeExistsError:
            client.set(path, data)
    except ZK_ERRORS as exc:
        raise CoordinationError(f"cannot write config znode {path}: {describe(exc)}") from exc
