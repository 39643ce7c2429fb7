"""ZooKeeper access: connecting, the znode layout derived from the config, and reading,
writing and watching the config znodes (:mod:`maas.config` says what each holds).

Every client of the project connects through :func:`connect`, which authenticates with the
process's credentials (:mod:`maas.zkauth`: ``MAAS_ZK_AUTH_FILE`` or ``MAAS_ZK_USER``/``…PASSWORD``)
and uses TLS when configured. Kazoo errors are translated here into
:class:`~maas.errors.CoordinationError`, and a refusal by an ACL into
:class:`~maas.errors.AccessDenied` (:func:`zk_error`).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Callable

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, KazooException, NoAuthError, NoNodeError, NodeExistsError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from maas.config import DEFAULT_CONFIG_PATH, MaasConfig, ext_path
from maas.errors import AccessDenied, ConfigError, CoordinationError
from maas.quorum import check_reachable, parse_quorum
from maas.zkauth import ZkAccess, protect_kazoo_logs

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
    A malformed ``quorum`` is a :class:`~maas.errors.ConfigError`; members that certainly have no
    server (unknown host, connection refused on every one) fail at once rather than at ``timeout``.
    """
    parsed = parse_quorum(quorum)
    check_reachable(parsed)
    access = ZkAccess.from_environment() if access is None else access
    protect_kazoo_logs()  # kazoo would log a digest password at DEBUG
    logger = _ClientLogger()
    client = KazooClient(
        logger=logger,
        hosts=quorum,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=2.0),
        command_retry=KazooRetry(max_tries=5, delay=0.1, max_delay=2.0),
        **access.kazoo_options(),
    )
    try:
        client.start(timeout=timeout)
        if access.credentials is not None and access.credentials.scheme == "sasl":
            # kazoo reports CONNECTED before the SASL exchange ends; a first call waits for its
            # outcome, so refused credentials fail here rather than at some later call.
            client.exists("/")
    except ZK_ERRORS as exc:
        client.stop()
        client.close()
        if isinstance(exc, (NoAuthError, AuthFailedError)):
            raise zk_error(f"cannot connect to ZooKeeper at {quorum} ({access.describe()})", exc) from exc
        raise CoordinationError(
            f"cannot connect to ZooKeeper at {quorum} within {timeout:g}s ({access.describe()}; {describe(exc)}): "
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
    def pending_index(self) -> str:
        """Index of the non-terminal requests: ``<pending_index>/<requestId>`` (empty znodes)."""
        return f"{self.state_root}/pending"

    def pending_request(self, request_id: str) -> str:
        return f"{self.pending_index}/{request_id}"

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

    @property
    def installation(self) -> str:
        """The installation id: a random id written once, naming this MaaS's resources elsewhere
        (the Kubernetes launcher's pod label)."""
        return f"{self.state_root}/installation"

    def ensure(self, client: KazooClient) -> None:
        for path in (self.queue, self.service_root, self.models, self.requests, self.pending_index, self.statuses):
            client.ensure_path(path)


def installation_id(client: KazooClient, layout: Layout) -> str:
    """This installation's id (``<stateRoot>/installation``), created by the first caller."""
    try:
        try:
            client.create(layout.installation, uuid.uuid4().hex.encode(), makepath=True)
        except NodeExistsError:
            pass
        data, _ = client.get(layout.installation)
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot read the installation id {layout.installation}", exc) from exc
    value = data.decode("ascii", "replace").strip()
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?", value):
        raise ConfigError(f"{layout.installation} holds {value!r}, which is not a valid installation id")
    return value


def _get_optional(client: KazooClient, path: str) -> tuple[bytes | None, int]:
    """A znode's data and version; ``(None, -1)`` when it is absent."""
    try:
        data, stat = client.get(path)
    except NoNodeError:
        return None, -1
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot read config znode {path}", exc) from exc
    return data, stat.version


def cluster_configured(client: KazooClient, path: str = DEFAULT_CONFIG_PATH) -> bool:
    """Whether a controller of this project has configured the cluster at ``path``: the config
    znode exists and so does its ext znode, or it is an old-style config znode holding our keys
    itself (what controllers wrote before the split; :func:`read_config` still reads it). A config
    znode with Metron's keys alone and no ext znode names no store of ours, so it does not count."""
    main, _ = _get_optional(client, path)
    if main is None:
        return False
    ext, _ = _get_optional(client, ext_path(path))
    return ext is not None or not MaasConfig.is_metron_only(main)


def read_config(client: KazooClient, path: str = DEFAULT_CONFIG_PATH) -> MaasConfig:
    """The merged content of the config znode and its ext znode; defaults for what is absent."""
    main, _ = _get_optional(client, path)
    ext, _ = _get_optional(client, ext_path(path))
    return MaasConfig.from_znodes(main, ext, config_source=f"config znode {path}",
                                  ext_source=f"config znode {ext_path(path)}")


def publish_config(client: KazooClient, config: MaasConfig, path: str = DEFAULT_CONFIG_PATH) -> None:
    """Write ``config``: our keys to the ext znode, then Metron's keys alone to the config znode
    (in this order, so a reader never sees our keys in neither)."""
    main, ext = config.znode_payloads()
    _write(client, ext_path(path), ext)
    _write(client, path, main)


def _write(client: KazooClient, path: str, data: bytes) -> None:
    try:
        try:
            client.create(path, data, makepath=True)
        except NodeExistsError:
            client.set(path, data)
    except ZK_ERRORS as exc:
        raise zk_error(f"cannot write config znode {path}", exc) from exc


def ensure_config(
    client: KazooClient,
    path: str = DEFAULT_CONFIG_PATH,
    *,
    overrides: dict[str, object] | None = None,
    write: bool = False,
) -> MaasConfig:
    """What a starting controller does with the config znodes; returns the config in force.

    - ``write``: the znodes' content (with ``overrides`` applied) replaces what they held;
    - else each absent znode is created (the ext znode with ``overrides`` applied), and our
      keys found in an old-style config znode move to the ext znode, so Metron's strict
      readers can parse it;
    - else an override that disagrees with the znodes is an error naming both values: two
      controllers never run silently with different settings.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    main, _ = _get_optional(client, path)
    ext, _ = _get_optional(client, ext_path(path))
    current = MaasConfig.from_znodes(main, ext, config_source=f"config znode {path}",
                                     ext_source=f"config znode {ext_path(path)}")
    wanted = current.with_overrides(**overrides)
    if write:
        publish_config(client, wanted, path)
        log.info("wrote the config znodes %s and %s", path, ext_path(path))
        return wanted
    legacy = main is not None and not MaasConfig.is_metron_only(main)  # our keys in the config znode
    if ext is None and not legacy:
        _write(client, ext_path(path), wanted.znode_payloads()[1])
        log.info("created %s", ext_path(path))
        current = wanted
    else:
        conflicts = current.differences(overrides)
        if conflicts:
            raise ConfigError(
                f"the config znodes {path}(.ext) say {'; '.join(conflicts)} (znode → flag); start with "
                "--write-config to replace them, or drop the flag"
            )
        if ext is None:  # an old-style config znode: its keys of ours move to the ext znode
            _write(client, ext_path(path), current.znode_payloads()[1])
            log.info("moved our keys from %s to %s", path, ext_path(path))
    if main is None or not MaasConfig.is_metron_only(main):
        _write(client, path, current.znode_payloads()[0])
        log.info("%s %s with Metron's keys only", "created" if main is None else "rewrote", path)
    return current


class ConfigWatch:
    """Calls ``on_change(config)`` whenever the config znode or its ext znode changes (kazoo
    data watches, re-armed by kazoo). A content that does not validate is logged and skipped."""

    def __init__(self, client: KazooClient, path: str, on_change: Callable[[MaasConfig], None]) -> None:
        self.client = client
        self.path = path
        self.on_change = on_change
        self._data: dict[str, bytes | None] = {}
        self._armed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._armed:
                return
            self._armed = True
        for znode in (self.path, ext_path(self.path)):
            self.client.DataWatch(znode, self._make_handler(znode))

    def _make_handler(self, znode: str) -> Callable[[bytes | None, object], None]:
        def handler(data: bytes | None, _stat: object) -> None:
            with self._lock:
                first = znode not in self._data
                changed = first or self._data[znode] != data
                self._data[znode] = data
                if first or not changed:
                    return
                main, ext = self._data.get(self.path), self._data.get(ext_path(self.path))
            try:
                config = MaasConfig.from_znodes(main, ext, config_source=f"config znode {self.path}",
                                                ext_source=f"config znode {ext_path(self.path)}")
            except ConfigError as exc:
                log.error("ignoring the changed configuration: %s", exc)
                return
            try:
                self.on_change(config)
            except Exception:  # a watch callback runs on kazoo's thread: never let it die
                log.exception("applying the changed configuration failed")

        return handler
