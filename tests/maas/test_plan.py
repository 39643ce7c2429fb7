"""The pure reconcile plan, with a fake clock and fake instances."""

from __future__ import annotations

import random

from maas.clock import FakeClock
from maas.controller.desired import DesiredModel, ModelKey
from maas.controller.executor import Executor
from maas.controller.plan import ForgetInstance, Health, StartInstance, StopInstance, plan
from maas.instance import Instance, InstanceSpec, InstanceState
from maas.launcher import Launcher
from maas.retry import Backoff

KEY = ModelKey("dga", "1.0")


def desired(n: int, name: str = "dga", version: str = "1.0") -> DesiredModel:
    return DesiredModel(name=name, version=version, instances=n, path=f"/models/{name}", store_uri="file:///s")


def inst(i: str, state: InstanceState = InstanceState.RUNNING, *, started: float = 0.0, stop: bool = False,
         reason: str | None = None, name: str = "dga", version: str = "1.0") -> Instance:
    return Instance(i, name, version, state, started_at=started, stop_requested=stop, reason=reason)


def test_scale_up_from_nothing() -> None:
    actions = plan({KEY: desired(3)}, [], {}, now=0)
    assert actions == [StartInstance(desired(3))] * 3


def test_nothing_to_do_when_in_line() -> None:
    assert plan({KEY: desired(2)}, [inst("a"), inst("b", InstanceState.STARTING)], {}, now=0) == []


def test_scale_down_stops_unready_first_then_newest() -> None:
    actual = [inst("old", started=1), inst("new", started=5), inst("booting", InstanceState.STARTING, started=3)]
    actions = plan({KEY: desired(1)}, actual, {}, now=10)
    assert actions == [StopInstance(KEY, "booting", "scaled down"), StopInstance(KEY, "new", "scaled down")]


def test_removed_model_is_stopped_entirely_and_stopping_ones_are_not_counted() -> None:
    actual = [inst("a"), inst("b", InstanceState.STOPPING, stop=True)]
    assert plan({}, actual, {}, now=0) == [StopInstance(KEY, "a", "model removed")]


def test_dead_instance_is_forgotten_as_failure_and_replaced_on_a_later_pass() -> None:
    actual = [inst("a"), inst("dead", InstanceState.EXITED, reason="service exited with code -9")]
    first = plan({KEY: desired(2)}, actual, {}, now=0)
    # The failure is recorded first; the replacement waits for the backoff it decides.
    assert first == [ForgetInstance(KEY, "dead", "service exited with code -9")]
    second = plan({KEY: desired(2)}, [inst("a")], {KEY: Health(failures=1, retry_at=0.5)}, now=1.0)
    assert second == [StartInstance(desired(2))]


def test_stopped_instance_is_forgotten_without_failure() -> None:
    actual = [inst("gone", InstanceState.EXITED, stop=True)]
    assert plan({}, actual, {}, now=0) == [ForgetInstance(KEY, "gone", None)]


def test_backoff_delays_restarts() -> None:
    health = {KEY: Health(failures=3, retry_at=100.0, last_error="boom")}
    assert plan({KEY: desired(1)}, [], health, now=99.9) == []
    assert plan({KEY: desired(1)}, [], health, now=100.0) == [StartInstance(desired(1))]


def test_backoff_of_one_model_does_not_block_another() -> None:
    other = ModelKey("other", "1")
    health = {KEY: Health(failures=5, retry_at=1e9)}
    actions = plan({KEY: desired(1), other: desired(1, "other", "1")}, [], health, now=0)
    assert actions == [StartInstance(desired(1, "other", "1"))]


def test_adopted_instances_count_as_actual() -> None:
    # Instances found running (e.g. adopted after a controller restart) satisfy the desired count.
    adopted = [inst("x", started=0), inst("y", started=0)]
    assert plan({KEY: desired(2)}, adopted, {}, now=50) == []


class RecordingLauncher(Launcher):
    def __init__(self, fail_start: bool = False) -> None:
        self.started: list[InstanceSpec] = []
        self.stopped: list[str] = []
        self.forgotten: list[str] = []
        self.fail_start = fail_start

    def start(self, spec: InstanceSpec) -> None:
        if self.fail_start:
            from maas.errors import LauncherError

            raise LauncherError("no free port")
        self.started.append(spec)

    def stop(self, instance_id: str) -> None:
        self.stopped.append(instance_id)

    def instances(self) -> list[Instance]:
        return []

    def forget(self, instance_id: str) -> None:
        self.forgotten.append(instance_id)


def make_executor(launcher: Launcher, clock: FakeClock) -> Executor:
    def spec_for(model: DesiredModel, instance_id: str) -> InstanceSpec:
        return InstanceSpec(instance_id=instance_id, name=model.name, version=model.version, store_uri=model.store_uri,
                            path=model.path, zk_quorum="zk", config_path="/c")

    return Executor(launcher, spec_for, clock, backoff=Backoff(initial=1, max_delay=8, jitter=0),
                    stable_after=10, rng=random.Random(0))


def test_executor_backoff_grows_exponentially_and_is_capped() -> None:
    clock = FakeClock(0)
    ex = make_executor(RecordingLauncher(), clock)
    delays = []
    for _ in range(6):
        ex.execute([ForgetInstance(KEY, "i", "crashed")])
        delays.append(ex.health[KEY].retry_at - clock.now)
    assert delays == [1, 2, 4, 8, 8, 8]
    assert ex.health[KEY].failures == 6 and ex.health[KEY].last_error == "crashed"


def test_executor_records_launcher_errors_and_goes_on() -> None:
    clock = FakeClock(0)
    launcher = RecordingLauncher(fail_start=True)
    ex = make_executor(launcher, clock)
    ex.execute([StartInstance(desired(1)), StopInstance(KEY, "z", "scaled down")])
    assert ex.health[KEY].failures == 1 and "no free port" in (ex.health[KEY].last_error or "")
    assert launcher.stopped == ["z"]


def test_stable_instances_reset_failures() -> None:
    clock = FakeClock(0)
    ex = make_executor(RecordingLauncher(), clock)
    ex.execute([ForgetInstance(KEY, "i", "crashed")])
    running = Instance("j", "dga", "1.0", InstanceState.RUNNING, started_at=0, running_since=0)
    clock.advance(5)
    ex.observe([running])
    assert ex.health[KEY].failures == 1
    clock.advance(5)
    ex.observe([running])
    assert ex.health[KEY].failures == 0 and ex.health[KEY].last_error == "crashed"


def test_unhealthy_instance_is_stopped_as_failure_and_replaced_later() -> None:
    sick = Instance("sick", "dga", "1.0", InstanceState.RUNNING, started_at=0, probe_failures=3, probe_reason="HTTP 503")
    actions = plan({KEY: desired(2)}, [inst("ok"), sick], {}, now=5)
    assert actions == [StopInstance(KEY, "sick", "failed 3 consecutive health checks (HTTP 503)", failure=True)]
    # Below the threshold nothing happens.
    mild = Instance("sick", "dga", "1.0", InstanceState.RUNNING, started_at=0, probe_failures=2)
    assert plan({KEY: desired(2)}, [inst("ok"), mild], {}, now=5) == []


def test_prober_counts_consecutive_failures_per_instance() -> None:
    from maas.controller.prober import Prober

    answers = {"http://a": ["down", "down", None, "down"], "http://b": [None, None, None, None]}
    prober = Prober(1.0, check=lambda url: answers[url].pop(0))
    running = [Instance(i, "dga", "1.0", InstanceState.RUNNING, started_at=0, url=f"http://{i}") for i in "ab"]
    prober.update(running + [inst("c", InstanceState.STARTING)])
    prober.probe_once()
    prober.probe_once()
    assert prober.failures("a") == (2, "down") and prober.failures("b") == (0, None)
    prober.probe_once()  # a success resets the count
    assert prober.failures("a") == (0, None)
    prober.probe_once()
    assert prober.failures("a") == (1, "down")
    prober.update(running[1:])  # a is gone: forgotten
    assert prober.failures("a") == (0, None)


def test_quarantined_model_is_neither_stopped_nor_started() -> None:
    other = ModelKey("b", "1")
    actual = [inst("a1"), inst("a2", InstanceState.STARTING), inst("a3", InstanceState.EXITED, reason="boom"),
              inst("b1", name="b", version="1")]
    actions = plan({other: desired(2, "b", "1")}, actual, {}, now=0, hold={KEY})
    assert ForgetInstance(KEY, "a3", "boom") in actions  # the dead are still forgotten
    assert not any(isinstance(a, StopInstance) and a.key == KEY for a in actions)
    assert actions.count(StartInstance(desired(2, "b", "1"))) == 1
    assert not any(isinstance(a, StartInstance) and a.model.key == KEY for a in actions)


def test_an_overdue_stop_is_a_kill_action() -> None:
    from dataclasses import replace

    from maas.controller.plan import KillInstance

    late = replace(inst("a", InstanceState.STOPPING, stop=True), stop_overdue=True)
    assert plan({}, [late, inst("b", InstanceState.STOPPING, stop=True)], {}, now=0) == [KillInstance(KEY, "a")]
