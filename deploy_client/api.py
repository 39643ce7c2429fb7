"""Python API for submitting deployment requests, uploading payloads and listing endpoints."""

from __future__ import annotations

import uuid
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoNodeError, OperationTimeoutError, SessionExpiredError
from kazoo.recipe.queue import Queue

from maas.config import DEFAULT_CONFIG_PATH, MaasConfig
from maas.discovery import version_key
from maas.errors import CoordinationError, RequestError, RequestFailed
from maas.model_status import ModelStatus
from maas.registration import Endpoint
from maas.request import Action, ModelRequest, RequestState, RequestStatus
from maas.retry import Backoff, retry, wait_until
from maas.store import Progress, UploadResult, open_store
from maas.store.allowed import resolve_allowed
from maas.zk import ZK_ERRORS, Layout, connect, read_config, zk_error
from maas.zkauth import use_policy


#: Errors after which a ZooKeeper call may succeed if made again.
RETRYABLE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)


class DeployClient:
    """Talks to a MaaS cluster through ZooKeeper (and to its model store for uploads)."""

    def __init__(self, zk_quorum: str, config_path: str = DEFAULT_CONFIG_PATH, *, client: KazooClient | None = None) -> None:
        self._own_client = client is None
        self.client = client or connect(zk_quorum)
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

    # -- payloads ---------------------------------------------------------------------------
    def upload(self, local_dir: Path, store_path: str, *, force: bool = False,
               progress: Progress | None = None) -> tuple[str, str, UploadResult]:
        """Upload ``local_dir`` to ``store_path`` (a path in the configured store, or a URI in an
        allowed store: the controller would refuse any other, so nothing is uploaded there)."""
        store_uri, path = resolve_allowed(store_path, self.config.store_uri, self.config.allowed_stores)
        store = open_store(store_uri, max_payload_bytes=self.config.max_payload_bytes)
        result = store.upload(Path(local_dir), path, force=force, progress=progress)
        return store_uri, path, result

    # -- requests ---------------------------------------------------------------------------
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
        try:
            request = ModelRequest(
                name=name,
                version=version,
                numInstances=num_instances,
                memory=memory,
                action=Action(action.upper() if isinstance(action, str) else action),
                path=path,
                requestId=request_id or uuid.uuid4().hex,
            )
        except ValueError as exc:
            raise RequestError(f"invalid request: {exc}") from exc
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

    def wait(self, request_id: str, timeout: float = 120.0) -> RequestStatus:
        """Block until the request is ``done``; raise :class:`RequestFailed` if it failed."""

        def terminal() -> RequestStatus | None:
            status = self.status(request_id)
            return status if status is not None and status.state.terminal else None

        status = wait_until(terminal, timeout=timeout, what=f"request {request_id} to finish")
        if status.state is RequestState.FAILED:
            raise RequestFailed(f"request {request_id} failed: {status.reason}")
        return status

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
