"""The controller loop: under leader election, drain the request queue into the desired state,
reconcile instances with it, and give every request its terminal status.

A pass runs on every queue change (ZooKeeper watch) and on a timer; a failing pass is logged and
the next one runs anyway.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from maas.clock import SYSTEM_CLOCK, Clock
from maas.config import MaasConfig
from maas.controller.desired import DesiredModel, ModelKey, read_desired
from maas.controller.executor import Executor
from maas.controller.intake import Intake
from maas.controller.plan import plan
from maas.errors import MaasError
from maas.instance import Instance, InstanceSpec, InstanceState
from maas.launcher import Launcher
from maas.request import RequestState, RequestStatus
from maas.settings import ServiceSettings
from maas.zk import ZK_ERRORS, Layout

log = logging.getLogger(__name__)

#: Requests applied per pass before instances are reconciled (keeps a flood from starving it).
MAX_REQUESTS_PER_PASS = 100


@dataclass
class _Pending:
    status: RequestStatus
    since: float  # monotonic time the controller started tracking it


class Controller:
    """One controller process. :meth:`run` blocks until :meth:`stop`."""

    def __init__(
        self,
        client: KazooClient,
        config: MaasConfig,
        launcher: Launcher,
        settings: ServiceSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.client = client
        self.config = config
        self.layout = Layout.from_config(config)
        self.launcher = launcher
        self.settings = settings
        self.clock = clock
        self.intake = Intake(client, self.layout, config.store_uri)
        self.executor = Executor(
            launcher,
            self._spec_for,
            clock,
            backoff=settings.restart_backoff,
            stable_after=settings.stable_after,
        )
        self.identifier = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pending: dict[str, _Pending] = {}
        self.leading = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> None:
        self.layout.ensure(self.client)
        election = self.client.Election(f"{self.layout.state_root}/leader", self.identifier)
        self._election = election
        log.info("controller %s waiting for leadership", self.identifier)
        while not self._stopping.is_set():
            try:
                election.run(self._lead)
            except ZK_ERRORS as exc:
                log.warning("election interrupted (%s); retrying", exc)
                self._stopping.wait(1.0)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        election = getattr(self, "_election", None)
        if election is not None:
            election.cancel()

    def wake(self) -> None:
        self._wake.set()

    def _lead(self) -> None:
        log.info("controller %s is the leader", self.identifier)
        self.leading.set()
        self._load_pending()
        self.client.ChildrenWatch(self.layout.queue, lambda _children: self.wake() if not self._stopping.is_set() else False)
        try:
            while not self._stopping.is_set():
                self.run_pass()
                self._wake.wait(self.settings.reconcile_interval)
                self._wake.clear()
        finally:
            self.leading.clear()

    # -- one pass ---------------------------------------------------------------------------
    def run_pass(self) -> None:
        """Intake, reconcile, statuses. Never raises."""
        for step in (self._drain_queue, self._reconcile):
            try:
                step()
            except MaasError as exc:
                log.error("%s: %s", step.__name__, exc)
            except Exception:
                log.exception("%s crashed; continuing", step.__name__)

    def _drain_queue(self) -> None:
        for _ in range(MAX_REQUESTS_PER_PASS):
            outcome = self.intake.apply_next()
            if outcome is None:
                return
            if not outcome.status.state.terminal:
                self._pending[outcome.status.request_id] = _Pending(outcome.status, self.clock.monotonic())
        self.wake()  # more to do: come back right after reconciling

    def _reconcile(self) -> None:
        desired = {k: m for k, (m, _) in read_desired(self.client, self.layout).items()}
        instances = self.launcher.instances()
        self.executor.observe(instances)
        actions = plan(desired, instances, self.executor.health, self.clock.monotonic())
        self.executor.execute(actions)
        if actions:
            instances = self.launcher.instances()
        self._settle_requests(desired, instances)

    def _settle_requests(self, desired: dict[ModelKey, DesiredModel], instances: list[Instance]) -> None:
        """Give pending requests their terminal status when their model has settled or failed."""
        for request_id, pending in list(self._pending.items()):
            status = pending.status
            key = ModelKey(status.name or "", status.version or "")
            health = self.executor.health.get(key)
            mine = [i for i in instances if i.key == key]
            want = desired[key].instances if key in desired else 0
            if health is not None and health.last_failure_at is not None and health.last_failure_at >= pending.since:
                final = RequestStatus(
                    requestId=request_id, state=RequestState.FAILED, reason=health.last_error,
                    name=status.name, version=status.version, action=status.action, target=status.target,
                )
            elif sum(i.state is InstanceState.RUNNING for i in mine) == want and all(
                i.state in (InstanceState.RUNNING, InstanceState.EXITED) for i in mine
            ):
                final = status.model_copy(update={"state": RequestState.DONE})
            else:
                continue
            try:
                self.client.set(self.layout.request(request_id), final.to_json())
            except NoNodeError:
                pass
            except ZK_ERRORS as exc:
                log.warning("cannot record status of request %s: %s", request_id, exc)
                continue
            del self._pending[request_id]
            log.info("request %s: %s%s", request_id, final.state.value, f" ({final.reason})" if final.reason else "")

    def _load_pending(self) -> None:
        """Pick up the non-terminal requests a previous leader left."""
        self._pending.clear()
        now = self.clock.monotonic()
        try:
            ids = self.client.get_children(self.layout.requests)
        except NoNodeError:
            return
        for request_id in ids:
            try:
                data, _ = self.client.get(self.layout.request(request_id))
                status = RequestStatus.from_json(data)
            except (NoNodeError, ValueError):
                continue
            if not status.state.terminal:
                self._pending[request_id] = _Pending(status, now)

    def _spec_for(self, model: DesiredModel, instance_id: str) -> InstanceSpec:
        s = self.settings
        return InstanceSpec(
            instance_id=instance_id,
            name=model.name,
            version=model.version,
            store_uri=model.store_uri,
            path=model.path,
            memory=model.memory,
            cpu=model.cpu,
            env=model.env,
            zk_quorum=s.zk_quorum,
            config_path=s.config_path,
            advertise_host=s.advertise_host,
            start_timeout=s.start_timeout,
            ready_timeout=s.ready_timeout,
            drain_seconds=s.drain_seconds,
            stop_grace=s.stop_grace,
            zk_session_timeout=s.zk_session_timeout,
        )
