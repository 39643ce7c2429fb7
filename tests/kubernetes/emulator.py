"""A kmock Kubernetes API emulator served over real HTTP on 127.0.0.1 from a background thread,
so that the synchronous ``kubernetes`` client can talk to it exactly as it talks to a cluster.

kmock is asyncio-based: its event loop runs in the thread, and everything that touches the
emulator's state (objects, recorded requests, injected reactions) is run on that loop through
:meth:`EmulatorThread.call`.

What the emulator does and does not do (kmock 0.8), which the tests account for:

- it stores created pods verbatim and serves them on GET/LIST, but never fills ``status``
  (no scheduler, no kubelet): tests set a pod's status themselves with :meth:`patch_pod`;
- it ignores ``labelSelector`` on LIST (it returns every pod of the namespace);
- it deletes a pod at once, ignoring ``gracePeriodSeconds``, unless the pod has finalizers:
  then it only sets ``deletionTimestamp``, which is how tests hold a pod in "terminating";
- it applies creations and deletions even when an injected reaction answers with an error.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any, Callable, TypeVar

import kmock
from kubernetes import client as k8s

T = TypeVar("T")

PODS = kmock.resource("v1", "pods")


class EmulatorThread:
    """Runs ``kmock.KubernetesEmulator`` + ``kmock.Server`` until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.emulator: kmock.KubernetesEmulator | None = None
        self.url = ""
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "EmulatorThread":
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the kmock emulator did not start within 10s")
        if self._failure is not None:
            raise RuntimeError("the kmock emulator failed to start") from self._failure
        return self

    def stop(self) -> None:
        """Stop serving (idempotent): the port closes, clients get "connection refused"."""
        if self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._started.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            emulator.resources[PODS] = {
                "kind": "Pod", "singular": "pod", "namespaced": True,
                "verbs": ["create", "delete", "get", "list", "watch"],
                "shortnames": [], "categories": ["all"], "subresources": ["log", "status"],
            }
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._started.set()
            await self._stop.wait()

    # -- access ------------------------------------------------------------------------------
    def call(self, fn: Callable[[kmock.KubernetesEmulator], T]) -> T:
        """Run ``fn(emulator)`` on the emulator's loop and return its result."""
        assert self.emulator is not None
        emulator = self.emulator

        async def on_loop() -> T:
            return fn(emulator)

        return asyncio.run_coroutine_threadsafe(on_loop(), self.loop).result(timeout=10)

    def api_client(self) -> k8s.ApiClient:
        """A client configured as :func:`maas.launcher.kubernetes.load_api_client` configures one."""
        configuration = k8s.Configuration(host=self.url)
        configuration.retries = False
        return k8s.ApiClient(configuration)

    # -- objects -----------------------------------------------------------------------------
    def pods(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Live (not deleted) pods of a namespace by name, as the API stores them."""

        def collect(emulator: kmock.KubernetesEmulator) -> dict[str, dict[str, Any]]:
            result = {}
            for (resource, ns, name), obj in emulator.objects.items():
                if resource == PODS and ns == namespace and not obj.deleted:
                    result[name] = obj.raw
            return result

        return self.call(collect)

    def put_pod(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Store a pod as if someone else had created it."""
        self.call(lambda e: e.objects.__setitem__((PODS, namespace, name), body))

    def patch_pod(self, namespace: str, name: str, changes: dict[str, Any]) -> None:
        """Merge ``changes`` into a stored pod (dicts merge, lists and scalars replace)."""
        self.call(lambda e: e.objects[PODS, namespace, name].patch(changes))

    def requests(self, action: kmock.action | None = None) -> list[kmock.Request]:
        """Requests about pods the emulator received, oldest first (optionally of one action)."""

        def collect(emulator: kmock.KubernetesEmulator) -> list[kmock.Request]:
            return [r for r in emulator if r.resource == PODS and (action is None or r.action == action)]

        return self.call(collect)

    # -- fault injection (kmock's DSL) -------------------------------------------------------
    def fail(self, action: kmock.action, error: BaseException | Callable[[], Any], times: int) -> None:
        """Answer the next ``times`` requests of ``action`` on pods with ``error`` (an exception
        to raise, e.g. ``kmock.KubernetesError(status=500, …)``, or an async callable to await);
        after that, the reaction steps aside and the emulator answers as usual."""
        counter = itertools.count()

        async def react() -> Any:
            if next(counter) >= times:
                return None  # no content: kmock disables the reaction and goes on matching
            if callable(error) and not isinstance(error, BaseException):
                return await error()
            raise error

        self.call(lambda e: e[action, PODS] << react)
