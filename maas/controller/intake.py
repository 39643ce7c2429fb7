"""Request intake: applies the queue's requests to the desired state, exactly once each.

Producers put requests with kazoo's ``Queue`` recipe (sequential ``entry-`` znodes). The
consumer is written here rather than taken from kazoo: ``Queue.get`` deletes an item before the
caller acts on it (a crash loses it) and ``LockingQueue.consume`` cannot join another
transaction. Here the leader reads the head item and, in **one** ZooKeeper transaction, deletes
it, updates the model's desired state and writes the request's status. A controller killed at
any instant has either applied a request completely or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError

from maas.controller.desired import DesiredModel, ModelKey, read_desired
from maas.errors import CoordinationError, MaasError, RequestError
from maas.payload import find_script
from maas.request import Action, ModelRequest, RequestState, RequestStatus, parse_request
from maas.store import open_store, split_uri
from maas.zk import ZK_ERRORS, describe, Layout

log = logging.getLogger(__name__)

#: Checks a payload before a request may point the desired state at it; raises a MaasError.
PayloadCheck = Callable[[str, str], None]


def check_payload_in_store(store_uri: str, path: str) -> None:
    """The payload at ``path`` exists and holds exactly one ``*.sh`` (its manifest, if any, is readable)."""
    find_script(open_store(store_uri).list(path))


@dataclass(frozen=True)
class Outcome:
    """What applying one queue item did."""

    queue_item: str
    status: RequestStatus


class Intake:
    """Consumes the request queue into the desired state."""

    def __init__(
        self,
        client: KazooClient,
        layout: Layout,
        default_store: str,
        *,
        check_payload: PayloadCheck = check_payload_in_store,
    ) -> None:
        self.client = client
        self.layout = layout
        self.default_store = default_store
        self.check_payload = check_payload

    def pending(self) -> list[str]:
        try:
            return sorted(self.client.get_children(self.layout.queue))
        except NoNodeError:
            return []
        except ZK_ERRORS as exc:
            raise CoordinationError(f"cannot list queue {self.layout.queue}: {describe(exc)}") from exc

    def apply_next(self) -> Outcome | None:
        """Apply the queue's head item; None when the queue is empty."""
        items = self.pending()
        if not items:
            return None
        item = items[0]
        item_path = f"{self.layout.queue}/{item}"
        try:
            data, item_stat = self.client.get(item_path)
        except NoNodeError:
            return self.apply_next()
        except ZK_ERRORS as exc:
            raise CoordinationError(f"cannot read queue item {item_path}: {describe(exc)}") from exc

        desired = read_desired(self.client, self.layout)
        txn = self.client.transaction()
        txn.delete(item_path, version=item_stat.version)
        try:
            request = parse_request(data)
            request_id = request.request_id or item
            status = self._apply(txn, request, request_id, desired)
        except MaasError as exc:
            request_id = _request_id_of(data) or item
            status = RequestStatus(requestId=request_id, state=RequestState.FAILED, reason=str(exc))
            log.warning("request %s failed: %s", request_id, exc)

        status_path = self.layout.request(status.request_id)
        if self.client.exists(status_path):
            # The same requestId was submitted twice: the first one stands, this one is dropped.
            txn = self.client.transaction()
            txn.delete(item_path, version=item_stat.version)
            status = RequestStatus(
                requestId=status.request_id, state=RequestState.FAILED, reason="duplicate requestId; ignored"
            )
        else:
            txn.create(status_path, status.to_json())
        try:
            results = txn.commit()
        except ZK_ERRORS as exc:
            raise CoordinationError(f"cannot apply queue item {item}: {describe(exc)}") from exc
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            # Someone changed the state under us (another controller, or a re-run): re-read and retry.
            raise CoordinationError(f"transaction for queue item {item} failed: {failed[0]!r}")
        log.info("request %s (%s): %s%s", status.request_id, item, status.state.value,
                 f" ({status.reason})" if status.reason else "")
        return Outcome(item, status)

    def _apply(
        self,
        txn,  # kazoo TransactionRequest
        request: ModelRequest,
        request_id: str,
        desired: dict[ModelKey, tuple[DesiredModel, int]],
    ) -> RequestStatus:
        key = ModelKey(request.name, request.version)
        current, znode_version = desired.get(key, (None, -1))
        have = current.instances if current else 0
        if request.action is Action.ADD:
            target = have + request.num_instances
        elif request.action is Action.SCALE:
            target = request.num_instances
        else:
            if current is None:
                raise RequestError(f"model {key} is not deployed; nothing to remove")
            target = max(0, have - request.num_instances)

        if request.path and request.action is not Action.REMOVE:
            store_uri, path = split_uri(request.path, self.default_store)
            if current is not None and (store_uri, path) != (current.store_uri, current.path):
                # Instances of one version would run two payloads: a new payload is a new version.
                raise RequestError(
                    f"{key} is deployed from {current.store_uri}{current.path}, not {store_uri}{path}: one version "
                    f"runs one payload; deploy the new payload as a new version, or REMOVE {key} first"
                )
            if current is None:
                self.check_payload(store_uri, path)
        elif current is not None:
            store_uri, path = current.store_uri, current.path
        else:
            raise RequestError(f"{request.action.value} needs 'path'")

        model_path = self.layout.model(request.name, request.version)
        if target == 0:
            if current is not None:
                txn.delete(model_path, version=znode_version)
        else:
            model = DesiredModel(
                name=request.name,
                version=request.version,
                instances=target,
                path=path,
                store_uri=store_uri,
                memory=current.memory if request.action is Action.REMOVE and current else request.memory,
                cpu=request.cpu if request.cpu is not None else (current.cpu if current else None),
                env=request.env or (current.env if current else {}),
            )
            if current is None:
                self._ensure_parent(f"{self.layout.models}/{request.name}")
                txn.create(model_path, model.to_json())
            else:
                txn.set_data(model_path, model.to_json(), version=znode_version)
        return RequestStatus(
            requestId=request_id,
            state=RequestState.ACCEPTED,
            name=request.name,
            version=request.version,
            action=request.action.value,
            target=target,
        )

    def _ensure_parent(self, path: str) -> None:
        try:
            self.client.ensure_path(path)
        except NodeExistsError:
            pass


def _request_id_of(data: bytes) -> str | None:
    """The requestId of an item that failed validation, if one can be read from it."""
    import json
    import re

    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    rid = raw.get("requestId") if isinstance(raw, dict) else None
    if isinstance(rid, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", rid):
        return rid
    return None
