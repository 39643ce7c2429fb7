"""The request ledger: request statuses under ``<stateRoot>/requests``, an index of the pending
ones under ``<stateRoot>/pending``, and the pruning of old terminal statuses.

A request is *pending* from the intake transaction that accepts it (which also creates its
index entry) until the transaction that records its terminal status (which also deletes the
entry). A leadership term therefore starts by reading the index only, so failover time does not
grow with the history of requests. Terminal statuses are deleted once older than the retention
(by the znode's modification time, ZooKeeper's clock), a bounded batch at a time.

A state written by an earlier version has no index: the first term finds the index root absent
(or not marked complete), builds it from one full scan, then marks it, so the scan happens once.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

from maas.request import RequestStatus
from maas.zk import ZK_ERRORS, Layout, zk_error

log = logging.getLogger(__name__)

#: Default time a terminal status is kept: 7 days.
DEFAULT_RETENTION_SECONDS = 7 * 86400.0
#: Most statuses deleted by one :meth:`RequestLedger.prune` (the rest wait for the next call).
PRUNE_BATCH = 5000
#: Data of the index root once it indexes every pending request.
INDEX_COMPLETE = b"complete"
#: Reads and deletes in flight at once.
PIPELINE = 500


class RequestLedger:
    def __init__(
        self,
        client: KazooClient,
        layout: Layout,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.layout = layout
        self.retention_seconds = retention_seconds
        self.wall_clock = wall_clock

    # -- pending ------------------------------------------------------------------------------
    def load_pending(self) -> dict[str, RequestStatus]:
        """The non-terminal requests: read through the index (built first if absent)."""
        try:
            if not self._index_complete():
                self._build_index()
            ids = self.client.get_children(self.layout.pending_index)
            statuses = self._read(ids)
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot read pending requests", exc) from exc
        pending: dict[str, RequestStatus] = {}
        stale = []
        for request_id in ids:
            status = statuses.get(request_id)
            if status is None or status.state.terminal:
                stale.append(request_id)  # its status is gone or final: the entry is left over
            else:
                pending[request_id] = status
        self._delete_all(self.layout.pending_request(r) for r in stale)
        return pending

    def _index_complete(self) -> bool:
        try:
            data, _ = self.client.get(self.layout.pending_index)
        except NoNodeError:
            return False
        return data == INDEX_COMPLETE

    def _build_index(self) -> None:
        """Index the pending statuses of a state written before the index existed. Idempotent:
        a leader that dies half-way leaves the root unmarked, and the next one starts again."""
        ids = self._children(self.layout.requests)
        statuses = self._read(ids)
        pending = [r for r, s in statuses.items() if not s.state.terminal]
        log.info("indexing %d pending request(s) among %d statuses (once)", len(pending), len(ids))
        self.client.ensure_path(self.layout.pending_index)
        for request_id in pending:
            try:
                self.client.create(self.layout.pending_request(request_id), b"")
            except NodeExistsError:
                pass
        self.client.set(self.layout.pending_index, INDEX_COMPLETE)

    def record_terminal(self, status: RequestStatus) -> bool:
        """Write a terminal status and drop its index entry in one transaction; False when the
        status znode is gone (pruned, or removed by hand)."""
        txn = self.client.transaction()
        txn.set_data(self.layout.request(status.request_id), status.to_json())
        txn.delete(self.layout.pending_request(status.request_id))
        try:
            results = txn.commit()
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot record status of request {status.request_id}", exc) from exc
        if not any(isinstance(r, Exception) for r in results):
            return True
        # The entry was missing (an index built by hand, or already dropped): the status alone.
        try:
            self.client.set(self.layout.request(status.request_id), status.to_json())
        except NoNodeError:
            return False
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot record status of request {status.request_id}", exc) from exc
        return True

    # -- retention ----------------------------------------------------------------------------
    def prune(self, limit: int = PRUNE_BATCH) -> int:
        """Delete up to ``limit`` terminal statuses older than the retention; how many went."""
        cutoff_ms = (self.wall_clock() - self.retention_seconds) * 1000
        try:
            ids = self._children(self.layout.requests)
            pending = set(self._children(self.layout.pending_index))
            old: list[str] = []
            for start in range(0, len(ids), PIPELINE):
                batch = [r for r in ids[start:start + PIPELINE] if r not in pending]
                stats = [(r, self.client.exists_async(self.layout.request(r))) for r in batch]
                old.extend(r for r, pending_stat in stats
                           if (stat := pending_stat.get()) is not None and stat.mtime < cutoff_ms)
                if len(old) >= limit:
                    break
            old = old[:limit]
            # Only terminal ones: a status without an index entry is terminal by construction,
            # but a status read back settles it for statuses an earlier version wrote.
            statuses = self._read(old)
            doomed = [r for r in old if r in statuses and statuses[r].state.terminal]
            self._delete_all(self.layout.request(r) for r in doomed)
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot prune request statuses", exc) from exc
        if doomed:
            log.info("pruned %d request status(es) older than %.1f days", len(doomed), self.retention_seconds / 86400)
        return len(doomed)

    # -- helpers ------------------------------------------------------------------------------
    def _children(self, path: str) -> list[str]:
        try:
            return sorted(self.client.get_children(path))
        except NoNodeError:
            return []

    def _read(self, ids: Iterable[str]) -> dict[str, RequestStatus]:
        """Statuses by id, read pipelined; missing and unreadable ones left out."""
        ids = list(ids)
        found: dict[str, RequestStatus] = {}
        for start in range(0, len(ids), PIPELINE):
            reads = [(r, self.client.get_async(self.layout.request(r))) for r in ids[start:start + PIPELINE]]
            for request_id, pending in reads:
                try:
                    data, _ = pending.get()
                    found[request_id] = RequestStatus.from_json(data)
                except NoNodeError:
                    continue
                except ValueError:
                    log.warning("request status %s is unreadable; ignored", request_id)
        return found

    def _delete_all(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        for start in range(0, len(paths), PIPELINE):
            for pending in [self.client.delete_async(p) for p in paths[start:start + PIPELINE]]:
                try:
                    pending.get()
                except NoNodeError:
                    pass
