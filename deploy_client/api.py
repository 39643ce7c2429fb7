"""Python API for submitting deployment requests, uploading payloads and listing endpoints.

Writes (uploads, requests) need a cluster a controller has configured: its config znode names the
store and the queue. Without it, :class:`~maas.errors.ClusterNotConfigured` says so, rather than
uploading to built-in defaults nobody reads.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoNodeError, OperationTimeoutError, SessionExpiredError
from kazoo.recipe.queue import Queue
from pydantic import ValidationError

from maas.config import DEFAULT_CONFIG_PATH, MaasConfig, ext_path
from maas.controller.desired import DesiredModel
from maas.discovery import version_key
from maas.errors import (ClusterNotConfigured, CoordinationError, PayloadError, RequestError, RequestFailed,
                         describe_validation)
from maas.leadership import LeaderInfo, current_leader
from maas.model_status import ModelStatus
from maas.payload import find_script
from maas.registration import Endpoint
from maas.request import Action, ModelRequest, RequestState, RequestStatus
from maas.retry import Backoff, retry, wait_until
from maas.store import Progress, UploadResult, open_store
from maas.store.allowed import resolve_allowed
from maas.zk import ZK_ERRORS, Layout, cluster_configured, connect, read_config, zk_error
from maas.zkauth import use_policy


#: Errors after which a ZooKeeper call may succeed if made again.
RETRYABLE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)

#: Called while waiting: the request's status (None before the controller took it) and its model's.
Progress_ = Callable[[RequestStatus | None, ModelStatus | None], None]


def check_local_payload(local_dir: Path) -> str:
    """The payload contract, checked before anything is uploaded: exactly one top-level ``*.sh``.
    Returns the script's name; raises :class:`~maas.errors.PayloadError` (exit code 3)."""
    files = [str(p.relative_to(local_dir)) for p in Path(local_dir).rglob("*") if p.is_file()]
    try:
        return find_script(files)
    except PayloadError as exc:
        raise PayloadError(f"{local_dir}: {exc}; nothing was uploaded") from exc


class DeployClient:
    """Talks to a MaaS cluster through ZooKeeper (and to its model store for uploads)."""

    def __init__(self, zk_quorum: str, config_path: str = DEFAULT_CONFIG_PATH, *, client: KazooClient | None = None) -> None:
        self._own_client = client is None
        self.quorum = zk_quorum
        self.config_path = config_path
        self.client = client or connect(zk_quorum)
        self.configured = self._config_exists()
        self.config: MaasConfig = read_config(self.client, config_path)
        use_policy(self.client, config_path, "deployer")  # queue items get the deployers' ACL
        self.layout = Layout.from_config(self.config)
        #: Seconds a call keeps retrying through ZooKeeper connection loss (e.g. a leader election).
        self.retry_deadline = 30.0

    def close(self) -> None:
        if self._own_client:
            self.client.stop()
            self.client.close()

    def __enter__(self) -> "DeployClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _config_exists(self) -> bool:
        return cluster_configured(self.client, self.config_path)

    def require_configured(self) -> None:
        """Raise :class:`ClusterNotConfigured` unless a controller has written the config znode
        (re-read once it appears, so a client made before the controller started sees it)."""
        if not self.configured:
            self.configured = self._config_exists()
            if not self.configured:
                raise ClusterNotConfigured(
                    f"no controller has configured this cluster: the config znode {self.config_path} or its "
                    f"{ext_path(self.config_path)} does not exist on {self.quorum}. Start a controller first, e.g.\n"
                    f"  maas_service -zq {self.quorum} --store-uri file://$HOME/maas/store --work-dir $HOME/maas/work\n"
                    "(or give -zr the config znode your controllers use)"
                )
            self.config = read_config(self.client, self.config_path)
            self.layout = Layout.from_config(self.config)

    def leader(self) -> LeaderInfo | str | None:
        """The leading controller (see :func:`maas.leadership.current_leader`)."""
        return current_leader(self.client, self.layout.state_root)

    # -- payloads ---------------------------------------------------------------------------
    def upload(self, local_dir: Path, store_path: str, *, force: bool = False,
               progress: Progress | None = None) -> tuple[str, str, UploadResult]:
        """Upload ``local_dir`` to ``store_path`` (a path in the configured store, or a URI in an
        allowed store: the controller would refuse any other, so nothing is uploaded there), after
        checking the payload contract locally."""
        self.require_configured()
        check_local_payload(Path(local_dir))
        store_uri, path = resolve_allowed(store_path, self.config.store_uri, self.config.allowed_stores)
        store = open_store(store_uri, max_payload_bytes=self.config.max_payload_bytes)
        result = store.upload(Path(local_dir), path, force=force, progress=progress)
        return store_uri, path, result

    # -- desired state ----------------------------------------------------------------------
    def desired(self, name: str, version: str) -> DesiredModel | None:
        """What the controller holds as desired for ``name@version`` (None: not deployed)."""
        path = self.layout.model(name, version)
        try:
            data, _ = self.client.get(path)
        except NoNodeError:
            return None
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot read desired state {path}", exc) from exc
        try:
            return DesiredModel.model_validate_json(data)
        except ValueError:
            return None

    def check_same_payload(self, name: str, version: str, store_path: str) -> None:
        """Refuse to point a deployed ``name@version`` at another payload: its instances would run
        two different payloads under one version. (The controller refuses it too.)"""
        current = self.desired(name, version)
        if current is None:
            return
        store_uri, path = resolve_allowed(store_path, self.config.store_uri, self.config.allowed_stores)
        if (store_uri, path) != (current.store_uri, current.path):
            raise RequestError(
                f"{name}@{version} is deployed from {current.store_uri}{current.path}, not {store_uri}{path}: "
                "one version runs one payload. Deploy the new payload as a new version (-v), or REMOVE "
                f"{name}@{version} first"
            )

    # -- requests ---------------------------------------------------------------------------
    @staticmethod
    def make_request(action: Action | str, name: str, version: str, *, num_instances: int = 1, memory: int = 512,
                     path: str | None = None, request_id: str | None = None) -> ModelRequest:
        """A validated request; :class:`~maas.errors.RequestError` names the bad field."""
        try:
            return ModelRequest(
                name=name,
                version=version,
                numInstances=num_instances,
                memory=memory,
                action=Action(action.upper() if isinstance(action, str) else action),
                path=path,
                requestId=request_id or uuid.uuid4().hex,
            )
        except ValueError as exc:
            raise RequestError(f"invalid request: {describe_validation(exc) if isinstance(exc, ValidationError) else exc}") from exc

    def submit(
        self,
        action: Action | str,
        name: str,
        version: str,
        *,
        num_instances: int = 1,
        memory: int = 512,
        path: str | None = None,
        request_id: str | None = None,
    ) -> str:
        """Queue a request; return its requestId."""
        request = self.make_request(action, name, version, num_instances=num_instances, memory=memory, path=path,
                                    request_id=request_id)
        self.require_configured()
        queue = Queue(self.client, self.layout.queue)
        try:
            # A put that hit a connection loss may or may not have landed; putting it again is
            # safe because the controller applies a requestId once and drops its duplicates.
            retry(lambda: queue.put(request.to_json()), retry_on=RETRYABLE, deadline=self.retry_deadline,
                  backoff=Backoff(initial=0.2, max_delay=2.0))
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot queue request at {self.layout.queue}", exc) from exc
        assert request.request_id is not None
        return request.request_id

    def status(self, request_id: str) -> RequestStatus | None:
        try:
            data, _ = retry(lambda: self.client.get(self.layout.request(request_id)), retry_on=RETRYABLE,
                            deadline=self.retry_deadline, backoff=Backoff(initial=0.2, max_delay=2.0))
        except NoNodeError:
            return None
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot read status of request {request_id}", exc) from exc
        return RequestStatus.from_json(data)

    def wait(self, request_id: str, timeout: float = 120.0, *, progress: Progress_ | None = None,
             model: tuple[str, str] | None = None) -> RequestStatus:
        """Block until the request is ``done``; raise :class:`RequestFailed` if it failed and
        :class:`~maas.errors.WaitTimeout` at ``timeout`` (the request goes on). ``progress`` is
        called at every look with the request's status and its model's (``model``: name, version)."""

        def terminal() -> RequestStatus | None:
            status = self.status(request_id)
            if progress is not None and (status is None or not status.state.terminal):
                key = model or ((status.name, status.version) if status and status.name and status.version else None)
                progress(status, self.model_status(*key) if key else None)
            return status if status is not None and status.state.terminal else None

        status = wait_until(terminal, timeout=timeout, what=f"request {request_id} to finish")
        if status.state is RequestState.FAILED:
            raise RequestFailed(f"request {request_id} failed: {status.reason}")
        return status

    def model_status(self, name: str, version: str) -> ModelStatus | None:
        """What the controller last published for ``name@version``."""
        try:
            data, _ = self.client.get(self.layout.status(name, version))
            return ModelStatus.model_validate_json(data)
        except (NoNodeError, ValueError):
            return None
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot read the status of {name}@{version}", exc) from exc

    def model_statuses(self) -> list[ModelStatus]:
        """What the controller last published for every model."""
        result = []
        root = self.layout.statuses
        try:
            for name in self.client.get_children(root):
                for version in self.client.get_children(f"{root}/{name}"):
                    try:
                        data, _ = self.client.get(self.layout.status(name, version))
                        result.append(ModelStatus.model_validate_json(data))
                    except (NoNodeError, ValueError):
                        continue
        except NoNodeError:
            return []
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot read model statuses under {root}", exc) from exc
        return sorted(result, key=lambda m: (m.name, version_key(m.version)))

    # -- endpoints --------------------------------------------------------------------------
    def list(self, name: str | None = None, version: str | None = None) -> dict[tuple[str, str], list[Endpoint]]:
        """Registered endpoints, grouped by (name, version)."""
        found: dict[tuple[str, str], list[Endpoint]] = {}
        root = self.layout.service_root
        try:
            names = [name] if name else self.client.get_children(root)
            for model in names:
                try:
                    ids = self.client.get_children(f"{root}/{model}")
                except NoNodeError:
                    continue
                for instance_id in ids:
                    try:
                        data, _ = self.client.get(f"{root}/{model}/{instance_id}")
                        endpoint = Endpoint.from_json(data)
                    except (NoNodeError, RequestError):
                        continue
                    if version is None or endpoint.version == version:
                        found.setdefault((endpoint.name, endpoint.version), []).append(endpoint)
        except NoNodeError:
            return {}
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot list endpoints under {root}", exc) from exc
        return {k: sorted(v, key=lambda e: e.url) for k, v in sorted(found.items())}
