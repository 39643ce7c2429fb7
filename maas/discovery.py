"""The discovery client: a local, watch-driven cache of every registered endpoint.

It follows ``<serviceRoot>`` with kazoo's ``TreeCache`` recipe, so lookups never touch the
network; while ZooKeeper is unreachable the cache keeps answering with what it last saw, and
TreeCache resynchronizes it on reconnection.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Callable

from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent

from maas.errors import MaasError, WaitTimeout
from maas.registration import Endpoint

log = logging.getLogger(__name__)

Listener = Callable[[], None]
_RUN = re.compile(r"(\d+)|(\D+)")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order: ``10.0`` > ``9.0`` > ``1.10`` > ``1.9``; numbers sort before text."""
    return tuple((0, int(num)) if num else (1, text) for num, text in _RUN.findall(version))


class DiscoveryClient:
    """Endpoints by model name and version, kept current by ZooKeeper watches."""

    def __init__(self, client: KazooClient, service_root: str) -> None:
        self.service_root = service_root.rstrip("/")
        self._lock = threading.Condition()
        self._by_path: dict[str, Endpoint] = {}
        self._listeners: list[Listener] = []
        self._initialized = threading.Event()
        client.ensure_path(self.service_root)
        self._cache = TreeCache(client, self.service_root)
        self._cache.listen(self._on_event)
        self._cache.listen_fault(lambda exc: log.warning("discovery cache fault: %r", exc))
        self._cache.start()

    def close(self) -> None:
        self._cache.close()

    # -- events -----------------------------------------------------------------------------
    def _on_event(self, event: TreeEvent) -> None:
        if event.event_type == TreeEvent.INITIALIZED:
            self._initialized.set()
            self._notify()
            return
        data = event.event_data
        if data is None or event.event_type not in (TreeEvent.NODE_ADDED, TreeEvent.NODE_UPDATED, TreeEvent.NODE_REMOVED):
            return
        path = data.path
        if path.count("/") - self.service_root.count("/") != 2:
            return  # the root or a <name> node: not a registration
        with self._lock:
            if event.event_type == TreeEvent.NODE_REMOVED:
                self._by_path.pop(path, None)
            else:
                try:
                    self._by_path[path] = Endpoint.from_json(data.data)
                except MaasError as exc:
                    log.warning("ignoring registration %s: %s", path, exc)
                    self._by_path.pop(path, None)
            self._lock.notify_all()
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("discovery listener failed")

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` (on ZooKeeper's event thread; keep it short) after every change."""
        self._listeners.append(listener)

    # -- lookups ----------------------------------------------------------------------------
    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the first full snapshot is loaded."""
        if not self._initialized.wait(timeout):
            raise WaitTimeout(f"discovery cache of {self.service_root} not initialized after {timeout:.0f}s")

    def all(self) -> list[Endpoint]:
        with self._lock:
            return list(self._by_path.values())

    def endpoints(self, name: str, version: str | None = None) -> list[Endpoint]:
        """Endpoints of ``name`` at ``version``, or of its newest version when None."""
        with self._lock:
            mine = [e for e in self._by_path.values() if e.name == name]
        if not mine:
            return []
        if version is None:
            version = max((e.version for e in mine), key=version_key)
        return sorted((e for e in mine if e.version == version), key=lambda e: e.instance_id)

    def versions(self, name: str) -> list[str]:
        with self._lock:
            found = {e.version for e in self._by_path.values() if e.name == name}
        return sorted(found, key=version_key)

    def models(self) -> dict[tuple[str, str], list[Endpoint]]:
        result: dict[tuple[str, str], list[Endpoint]] = {}
        for endpoint in self.all():
            result.setdefault((endpoint.name, endpoint.version), []).append(endpoint)
        return {k: sorted(v, key=lambda e: e.instance_id) for k, v in sorted(result.items())}

    def wait_for(
        self, predicate: Callable[["DiscoveryClient"], bool], *, timeout: float, what: str
    ) -> None:
        """Block until ``predicate(self)`` holds after some change."""
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self), timeout=timeout):
                raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}")
