"""Request intake: applies the queue's requests to the desired state, exactly once each.

Producers put requests as sequential znodes: ``maas_deploy`` with kazoo's ``Queue`` recipe
(``entry-PPP-NNNNNNNNNN``), Metron's ``maas_deploy.sh`` with Curator's ``SimpleDistributedQueue``
(``qn-NNNNNNNNNN``). Items are taken in order of the sequence number ZooKeeper appended, whatever
their prefix, so requests of both producers run in the order they were written. The consumer
is written here rather than taken from kazoo: ``Queue.get`` deletes an item before the
caller acts on it (a crash loses it) and ``LockingQueue.consume`` cannot join another
transaction. Here the leader reads the head item and, in **one** ZooKeeper transaction, deletes
it, updates the model's desired state and writes the request's status. A controller killed at
any instant has either applied a request completely or not at all.

Applying reads the request's own model only. Whatever goes wrong with one request — it does not
parse, its payload is missing, its model's desired state is quarantined, or the code under it
raised something unexpected — becomes that request's ``failed`` status with the reason, and the
queue goes on; only ZooKeeper trouble leaves the item in place for the next pass.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError

from maas.controller.desired import DesiredModel, ModelKey, Unreadable, read_model
from maas.errors import CoordinationError, MaasError, RequestError
from maas.payload import find_script
from maas.request import Action, ModelRequest, RequestState, RequestStatus, parse_request
from maas.store import open_store
from maas.store.allowed import resolve_allowed
from maas.zk import ZK_ERRORS, Layout, zk_error

log = logging.getLogger(__name__)

#: Transactions of one queue item that may fail (a concurrent change) before it is failed.
MAX_ATTEMPTS = 3

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
        allowed_stores: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.layout = layout
        self.default_store = default_store
        self.allowed_stores: list[str] = list(allowed_stores)
        self.check_payload = check_payload
        #: Failed transactions per queue item (bounded: an item leaves the queue after MAX_ATTEMPTS).
        self._attempts: dict[str, int] = {}
        self._last_failure: dict[str, str] = {}

    def pending(self) -> list[str]:
        """The queue's items, oldest first."""
        try:
            return sorted(self.client.get_children(self.layout.queue), key=sequence_key)
        except NoNodeError:
            return []
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot list queue {self.layout.queue}", exc) from exc

    def apply_next(self) -> Outcome | None:
        """Apply the queue's head item; None when the queue is empty."""
        items = self.pending()
        if not items:
            return None
        item = items[0]
        for gone in set(self._attempts) - set(items):
            self._attempts.pop(gone, None)
            self._last_failure.pop(gone, None)
        item_path = f"{self.layout.queue}/{item}"
        try:
            data, item_stat = self.client.get(item_path)
        except NoNodeError:
            return self.apply_next()
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot read queue item {item_path}", exc) from exc

        # An item without a requestId (Metron's clients send none) is named by its queue node and
        # the node's creation zxid: unique for ever, even once the queue is recreated and its
        # sequence numbers start again at 0.
        own_id = f"{item}.{item_stat.czxid:x}"
        txn = self.client.transaction()
        txn.delete(item_path, version=item_stat.version)
        try:
            if self._attempts.get(item, 0) >= MAX_ATTEMPTS:
                raise RequestError(f"its transaction failed {MAX_ATTEMPTS} times: {self._last_failure.get(item)}")
            request = parse_request(data)
            request_id = request.request_id or own_id
            status = self._apply(txn, request, request_id)
        except CoordinationError:
            raise  # ZooKeeper trouble: the item stays, the next pass tries again
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot apply queue item {item}", exc) from exc
        except Exception as exc:  # one request's failure never blocks the queue
            if isinstance(exc, MaasError):
                reason = str(exc)
                log.warning("request %s failed: %s", _request_id_of(data) or item, reason)
            else:
                reason = f"internal error while applying the request: {type(exc).__name__}: {exc}"
                log.exception("request %s failed", _request_id_of(data) or item)
            txn = self.client.transaction()  # nothing of a half-built transaction is kept
            txn.delete(item_path, version=item_stat.version)
            request_id = _request_id_of(data) or own_id
            status = RequestStatus(requestId=request_id, state=RequestState.FAILED, reason=reason)

        status_path = self.layout.request(status.request_id)
        try:
            duplicate = self.client.exists(status_path) is not None
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot read request status {status_path}", exc) from exc
        if duplicate:
            # The same requestId was submitted twice: the first one stands, this one is dropped.
            txn = self.client.transaction()
            txn.delete(item_path, version=item_stat.version)
            status = RequestStatus(
                requestId=status.request_id, state=RequestState.FAILED, reason="duplicate requestId; ignored"
            )
        else:
            txn.create(status_path, status.to_json())
            if not status.state.terminal:  # indexed until its terminal status is recorded
                txn.create(self.layout.pending_request(status.request_id), b"")
        try:
            results = txn.commit()
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot apply queue item {item}", exc) from exc
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            # Someone changed the state under us (another controller, or a re-run): re-read and
            # retry; an item whose transaction keeps failing is failed itself.
            self._attempts[item] = self._attempts.get(item, 0) + 1
            self._last_failure[item] = repr(failed[0])
            raise CoordinationError(f"transaction for queue item {item} failed: {failed[0]!r}")
        self._attempts.pop(item, None)
        self._last_failure.pop(item, None)
        log.info("request %s (%s): %s%s", status.request_id, item, status.state.value,
                 f" ({status.reason})" if status.reason else "")
        return Outcome(item, status)

    def _apply(
        self,
        txn,  # kazoo TransactionRequest
        request: ModelRequest,
        request_id: str,
    ) -> RequestStatus:
        key = ModelKey(request.name, request.version)
        current, znode_version = read_model(self.client, self.layout, key)
        if isinstance(current, Unreadable):
            if request.action is not Action.SCALE:
                raise RequestError(
                    f"{current.reason}; {request.action.value} cannot be applied to it (a SCALE with "
                    "-hmp replaces it, or delete the znode)"
                )
            log.warning("%s; replaced by request %s (SCALE)", current.reason, request_id)
            current = None
            replace_version: int | None = znode_version
        else:
            replace_version = None
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
            # the allowedStores rule comes first: nothing is read from a store it refuses
            store_uri, path = resolve_allowed(request.path, self.default_store, self.allowed_stores)
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
            if current is not None or replace_version is not None:
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
            if replace_version is not None:
                txn.set_data(model_path, model.to_json(), version=replace_version)
            elif current is None:
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


_SEQUENCE = re.compile(r"(\d{10})$")


def sequence_key(item: str) -> tuple[int, str]:
    """Sort key of a queue item: the sequence number ZooKeeper appended to its name (10 digits,
    ``qn-0000000042`` and ``entry-100-0000000043`` alike); items without one go last."""
    match = _SEQUENCE.search(item)
    return (int(match.group(1)) if match else 1 << 62, item)


def _request_id_of(data: bytes) -> str | None:
    """The requestId of an item that failed validation, if one can be read from it."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    rid = raw.get("requestId") if isinstance(raw, dict) else None
    if isinstance(rid, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", rid):
        return rid
    return None
