"""The controller loop: under leader election, drain the request queue into the desired state,
reconcile instances with it, and give every request its terminal status.

A pass runs on every queue change (ZooKeeper watch) and on a timer; a failing pass is logged and
the next one runs anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Collection

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NoNodeError

from maas.clock import SYSTEM_CLOCK, Clock
from maas.config import MaasConfig
from maas.controller.desired import DesiredModel, ModelKey, Unreadable, read_desired_state
from maas.controller.executor import Executor
from maas.controller.intake import Intake
from maas.controller.ledger import PRUNE_BATCH, RequestLedger
from maas.controller.metrics import ControllerMetrics
from maas.controller.plan import plan
from maas.controller.prober import Prober
from maas.discovery import DiscoveryClient
from maas.errors import MaasError
from maas.instance import Instance, InstanceSpec, InstanceState
from maas.launcher import Launcher
from maas.leadership import LeaderInfo, election_path
from maas.model_status import ModelStatus, error_headline
from maas.request import RequestState, RequestStatus
from maas.settings import ServiceSettings
from maas.retry import Backoff
from maas.zk import ZK_ERRORS, ConfigWatch, Layout, describe

log = logging.getLogger(__name__)

RETRY_BACKOFF = Backoff(initial=0.2, max_delay=5.0)

#: Seconds between two prunings of old request statuses.
PRUNE_INTERVAL = 600.0

#: Requests applied per pass before instances are reconciled (keeps a flood from starving it).
MAX_REQUESTS_PER_PASS = 100

#: A leader whose last completed pass is older than this (or 20 reconcile intervals) is stuck.
STALL_SECONDS = 120.0


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
        metrics_url: str | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.layout = Layout.from_config(config)
        self.launcher = launcher
        self.settings = settings
        self.clock = clock
        self.intake = Intake(client, self.layout, config.store_uri, allowed_stores=config.allowed_stores)
        self.executor = Executor(
            launcher,
            self._spec_for,
            clock,
            backoff=settings.restart_backoff,
            stable_after=settings.stable_after,
        )
        self.prober = Prober(settings.probe_interval, credentials=settings.endpoint_credentials)
        self.ledger = RequestLedger(client, self.layout, retention_seconds=settings.request_retention_days * 86400)
        self._next_prune = 0.0
        self.info = LeaderInfo.for_this_process(metrics=metrics_url)
        self.identifier = self.info.identifier()
        self.metrics = ControllerMetrics(lambda: list(self._published.values()))
        self._last_pass_end: float | None = None
        self._running = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._term_over = threading.Event()  # the ZooKeeper session behind our leadership is gone
        self._connected = threading.Event()
        self._connected.set()
        self._pending: dict[str, _Pending] = {}
        self._resync_pending = False
        self._published: dict[ModelKey, ModelStatus] = {}
        self._quarantined: dict[ModelKey, str] = {}
        #: Registrations, followed once some instance's URL is known only from them.
        self._discovery: DiscoveryClient | None = None
        self.leading = threading.Event()
        self._config_watch = ConfigWatch(client, settings.config_path, self.apply_config)
        client.add_listener(self._on_zk_state)

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._config_watch.start()
        except ZK_ERRORS as exc:
            log.warning("cannot watch the config znodes (%s); changes need a restart", describe(exc))
        election = self.client.Election(election_path(self.layout.state_root), self.identifier)
        self._election = election
        log.info("controller %s (pid %d) waiting for leadership", self.info.host, self.info.pid)
        self._running = True
        try:
            self._run_elections(election)
        finally:
            self._running = False

    def _run_elections(self, election: Any) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                self.layout.ensure(self.client)
                election.run(self._lead)
                attempt = 0
            except ZK_ERRORS as exc:
                pause = RETRY_BACKOFF.delay(attempt)
                attempt += 1
                log.warning("election interrupted (%s); retrying in %.1fs", describe(exc), pause)
                self._stopping.wait(pause)
            except Exception:  # never let the controller thread die
                log.exception("controller loop crashed; restarting it")
                self._stopping.wait(RETRY_BACKOFF.delay(attempt))
                attempt += 1

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        election = getattr(self, "_election", None)
        if election is not None:
            election.cancel()
        self.prober.stop()
        if self._discovery is not None:
            self._discovery.close()

    def apply_config(self, config: MaasConfig) -> None:
        """Take a changed configuration: the store and payload limit apply from the next request
        on; where things live and which launcher runs them are fixed for this process's life."""
        fixed = {"queue_path": "queue", "service_root": "serviceRoot", "state_root": "stateRoot", "launcher": "launcher"}
        ignored = [f"{alias} ({getattr(self.config, name)!r} → {getattr(config, name)!r})"
                   for name, alias in fixed.items() if getattr(config, name) != getattr(self.config, name)]
        if ignored:
            log.error("the config changed %s: restart maas_service to apply it; keeping the current value",
                      ", ".join(ignored))
            config = config.with_overrides(queue_config=self.config.queue_config, service_root=self.config.service_root,
                                           state_root=self.config.state_root, launcher=self.config.launcher)
        if config == self.config:
            return
        log.info("configuration changed: %s", config.to_json().decode())
        self.config = config
        self.intake.default_store = config.store_uri
        self.intake.allowed_stores = list(config.allowed_stores)
        self.wake()

    def _on_zk_state(self, state: KazooState) -> None:
        # kazoo's documented split: SUSPENDED may come back with the same session (pause, keep
        # leadership); LOST means the session and so the election node are gone (end the term).
        if state == KazooState.SUSPENDED:
            self._connected.clear()
        elif state == KazooState.LOST:
            self._connected.clear()
            self._term_over.set()
        else:
            self._connected.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Liveness: the controller loop runs and, when leading, has completed a pass lately."""
        leading = self.leading.is_set()
        detail: dict[str, Any] = {"leading": leading, "zookeeper_connected": self._connected.is_set()}
        if not self._running:
            return False, {**detail, "reason": "the controller loop is not running"}
        if leading and self._last_pass_end is not None:
            age = self.clock.monotonic() - self._last_pass_end
            detail["last_pass_age_seconds"] = round(age, 3)
            limit = max(STALL_SECONDS, 20 * self.settings.reconcile_interval)
            if age > limit:
                return False, {**detail, "reason": f"no reconcile pass completed for {age:.0f}s"}
        return True, detail

    def _announce_leadership(self) -> None:
        """Write the leadership start into our election node, for ``maas_deploy -mo STATUS``."""
        lock = self._election.lock
        if lock.node is None:
            return
        self.info = self.info.model_copy(update={"since": time.time()})
        try:
            self.client.set(f"{lock.path}/{lock.node}", self.info.identifier().encode())
        except ZK_ERRORS as exc:
            log.warning("cannot record leadership in %s/%s: %s", lock.path, lock.node, describe(exc))

    def _lead(self) -> None:
        """One leadership term: adopt what runs, then reconcile until stopped or the session is lost."""
        log.info("controller %s (pid %d) is the leader", self.info.host, self.info.pid)
        self._announce_leadership()
        self.metrics.leader.set(1)
        self._last_pass_end = self.clock.monotonic()
        self._term_over.clear()
        self.launcher.resync()
        self._pending.clear()
        self._load_pending()
        self._published.clear()
        self.prober.start()
        self.leading.set()
        self.client.ChildrenWatch(self.layout.queue, lambda _children: self.wake() if self.leading.is_set() else False)
        try:
            while not self._stopping.is_set() and not self._term_over.is_set():
                if self._connected.is_set():
                    self.run_pass()
                self._wake.wait(self.settings.reconcile_interval)
                self._wake.clear()
        finally:
            self.leading.clear()
            self.metrics.leader.set(0)
            self._published.clear()  # a standby reports no models: the next leader does
            if self._term_over.is_set():
                log.warning("ZooKeeper session lost: leadership term over; standing for election again")

    # -- one pass ---------------------------------------------------------------------------
    def run_pass(self) -> None:
        """Intake, reconcile, statuses. Never raises."""
        started = self.clock.monotonic()
        outcome = "ok"
        for step in (self._drain_queue, self._reconcile, self._prune_requests):
            try:
                step()
            except MaasError as exc:
                outcome = "error"
                log.error("%s: %s", step.__name__, exc)
            except Exception:
                outcome = "error"
                log.exception("%s crashed; continuing", step.__name__)
        self._last_pass_end = self.clock.monotonic()
        self.metrics.passes.labels(outcome).inc()
        self.metrics.pass_duration.observe(self._last_pass_end - started)

    def _drain_queue(self) -> None:
        if self._resync_pending:
            self._load_pending()
        for _ in range(MAX_REQUESTS_PER_PASS):
            try:
                outcome = self.intake.apply_next()
            except MaasError:
                # A transaction cut by connection loss may have committed: learn its outcome
                # from the status znodes once ZooKeeper answers again.
                self._resync_pending = True
                raise
            if outcome is None:
                return
            self.metrics.requests.labels(outcome.status.state.value).inc()
            if not outcome.status.state.terminal:
                self._pending[outcome.status.request_id] = _Pending(outcome.status, self.clock.monotonic())
        self.wake()  # more to do: come back right after reconciling

    def _reconcile(self) -> None:
        state = read_desired_state(self.client, self.layout)
        desired = {k: m for k, (m, _) in state.models.items()}
        self._report_quarantine(state.unreadable)
        instances = self._observe()
        self.executor.observe(instances)
        actions = plan(desired, instances, self.executor.health, self.clock.monotonic(),
                       max_probe_failures=self.settings.probe_failures, hold=state.unreadable.keys())
        self.executor.execute(actions)
        if actions:
            instances = self._observe()
        self._settle_requests(desired, instances, held=state.unreadable.keys())
        self._publish_statuses(desired, instances, state.unreadable)

    def _report_quarantine(self, unreadable: dict[ModelKey, Unreadable]) -> None:
        """Log each quarantined desired-state znode once (and again if its problem changes)."""
        for key, bad in unreadable.items():
            if self._quarantined.get(key) != bad.reason:
                log.error("%s: quarantined; the instances of %s are left as they are until it is repaired",
                          bad.reason, key)
        for key in set(self._quarantined) - set(unreadable):
            log.info("desired state of %s is readable again", key)
        self._quarantined = {k: b.reason for k, b in unreadable.items()}

    def _observe(self) -> list[Instance]:
        """The launcher's instances, with their registered URL where the launcher cannot know it
        (a pod's port is chosen inside the pod) and the prober's health-check counts."""
        instances = self._with_registered_urls(self.launcher.instances())
        self.prober.update(instances)
        result = []
        for inst in instances:
            failures, reason = self.prober.failures(inst.instance_id)
            result.append(replace(inst, probe_failures=failures, probe_reason=reason) if failures else inst)
        return result

    def _with_registered_urls(self, instances: list[Instance]) -> list[Instance]:
        if all(i.url for i in instances if i.state is InstanceState.RUNNING):
            return instances
        if self._discovery is None:
            try:
                self._discovery = DiscoveryClient(self.client, self.layout.service_root)
            except ZK_ERRORS as exc:
                log.warning("cannot follow registrations to probe instances: %s", describe(exc))
                return instances
        urls = {e.instance_id: e.url for e in self._discovery.all()}
        return [replace(i, url=urls[i.instance_id]) if not i.url and i.instance_id in urls else i for i in instances]

    def _publish_statuses(self, desired: dict[ModelKey, DesiredModel], instances: list[Instance],
                          unreadable: dict[ModelKey, Unreadable] | None = None) -> None:
        """Write each model's status znode when it changed; drop those of models long gone."""
        now = self.clock.monotonic()
        by_key = _group(instances)
        unreadable = unreadable or {}
        keys = set(desired) | set(by_key) | set(self._published) | set(unreadable)
        for key in sorted(keys):
            mine = by_key.get(key, [])
            health = self.executor.health.get(key)
            if key not in desired and not mine and key not in unreadable:
                if key in self._published:
                    self._delete_quietly(self.layout.status(*key))
                    del self._published[key]
                continue
            status = ModelStatus(
                name=key[0], version=key[1],
                desired=desired[key].instances if key in desired else 0,
                running=sum(i.alive for i in mine),
                ready=sum(i.state is InstanceState.RUNNING for i in mine),
                restarts=health.restarts if health else 0,
                last_error=(f"{unreadable[key].reason}: quarantined, instances left as they are"
                            if key in unreadable else health.last_error if health else None),
                last_logs=health.last_logs if health and key not in unreadable else None,
                last_error_at=health.last_error_time if health and key not in unreadable else None,
                backoff_seconds=round(health.retry_at - now, 1) if health and health.retry_at > now else None,
            )
            if status.same_as(self._published.get(key)):
                continue
            path = self.layout.status(*key)
            try:
                if self.client.exists(path):
                    self.client.set(path, status.to_json())
                else:
                    self.client.create(path, status.to_json(), makepath=True)
            except ZK_ERRORS as exc:
                log.warning("cannot publish status of %s: %s", key, exc)
                continue
            self._published[key] = status

    def _delete_quietly(self, path: str) -> None:
        try:
            self.client.delete(path)
        except NoNodeError:
            pass
        except ZK_ERRORS as exc:
            log.warning("cannot delete %s: %s", path, exc)

    def _settle_requests(self, desired: dict[ModelKey, DesiredModel], instances: list[Instance],
                         held: Collection[ModelKey] = ()) -> None:
        """Give pending requests their terminal status when their model has settled or failed."""
        by_key = _group(instances)
        for request_id, pending in list(self._pending.items()):
            status = pending.status
            key = ModelKey(status.name or "", status.version or "")
            if key in held:
                continue  # its desired state is quarantined: nothing can be said yet
            health = self.executor.health.get(key)
            mine = by_key.get(key, [])
            want = desired[key].instances if key in desired else 0
            failed_since = (
                health is not None and health.last_failure_at is not None and health.last_failure_at >= pending.since
            )
            if failed_since and want > 0:  # a removal is not failed by the instances it removes
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
                self.ledger.record_terminal(final)
            except MaasError as exc:
                log.warning("%s", exc)
                continue
            del self._pending[request_id]
            self.metrics.requests.labels(final.state.value).inc()
            log.info("request %s: %s%s", request_id, final.state.value,
                     f" ({error_headline(final.reason)})" if final.reason else "")

    def _load_pending(self) -> None:
        """Pick up the non-terminal requests recorded in ZooKeeper that are not tracked yet
        (left by a previous leader, or applied by a transaction whose reply was lost)."""
        now = self.clock.monotonic()
        for request_id, status in self.ledger.load_pending().items():
            if request_id not in self._pending:
                self._pending[request_id] = _Pending(status, now)
        self._resync_pending = False

    def _prune_requests(self) -> None:
        """Delete old terminal request statuses, at most every ``PRUNE_INTERVAL`` seconds."""
        now = self.clock.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL
        if self.ledger.prune() >= PRUNE_BATCH:
            self._next_prune = now  # more to go: again next pass

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
            bind_host=s.bind_host,
            start_timeout=s.start_timeout,
            ready_timeout=s.ready_timeout,
            drain_seconds=s.drain_seconds,
            stop_grace=s.stop_grace,
            zk_session_timeout=s.zk_session_timeout,
            cache_dir=str(s.work_dir.resolve() / "cache"),
            cache_max_bytes=s.cache_max_mb << 20,
            max_payload_bytes=self.config.max_payload_bytes,
            model_token_file=_path(s.model_token_file),
            tls_cert_file=_path(s.model_tls_cert),
            tls_key_file=_path(s.model_tls_key),
            model_ca_file=_path(s.model_ca_file),
            zk_auth_file=_path(s.runner_zk_auth_file),
        )


def _path(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


def _group(instances: list[Instance]) -> dict[ModelKey, list[Instance]]:
    by_key: dict[ModelKey, list[Instance]] = {}
    for inst in instances:
        by_key.setdefault(ModelKey(inst.name, inst.version), []).append(inst)
    return by_key
