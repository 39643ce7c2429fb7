"""The Kubernetes launcher: each model instance is a pod that runs the same runner as the local
launcher (``python -m maas.runner``), in the namespace ``settings.k8s_namespace``.

Kubernetes is the source of truth. Every pod carries the controller's labels (so one LIST by
label selector shows all of them) and its full :class:`~maas.instance.InstanceSpec` as an
annotation (so a controller that takes over adopts the pods it finds instead of starting new
ones). The launcher keeps only what the API cannot tell it: when it first saw a pod, when the pod
became ready, and whether it asked for the pod's deletion.

How pods map to :class:`~maas.instance.InstanceState`:

- ``Pending``, or ``Running`` and not Ready: STARTING;
- ``Running`` and Ready (the runner wrote ``"state": "running"``, see the readiness probe): RUNNING;
- ``metadata.deletionTimestamp`` set: STOPPING;
- ``Succeeded``, ``Failed`` or gone: EXITED, with Kubernetes' own reason (``OOMKilled (exit code
  137)``, ``Evicted: …``, ``Error (exit code 3): <the runner's last log line>``);
- waiting in ``ImagePullBackOff``/``ErrImagePull``/…, or ``Pending`` for more than
  ``k8s_pending_timeout``: EXITED with that reason, and the launcher deletes the pod so that the
  controller replaces it.

Every API call is bounded (a request timeout, and :func:`maas.retry.retry` for 5xx answers and
transport errors); whatever goes wrong comes out as :class:`~maas.errors.LauncherError` with the
API's status and message, never as a ``kubernetes`` or ``urllib3`` exception.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException, OpenApiException

from maas.clock import SYSTEM_CLOCK, Clock
from maas.errors import ConfigError, LauncherError
from maas.instance import Instance, InstanceSpec, InstanceState
from maas.launcher import Launcher
from maas.retry import Backoff, retry
from maas.runner import STATUS_FILE
from maas.settings import ServiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# -- the contract with the pods (labels, annotations, paths) -----------------------------------
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "maas.apache.org/managed-by"
LABEL_MODEL = "maas.apache.org/model"
LABEL_VERSION = "maas.apache.org/version"
LABEL_INSTANCE = "maas.apache.org/instance"
#: Which MaaS installation (its state in ZooKeeper) owns the pod: two in one namespace never mix.
LABEL_INSTALLATION = "maas.apache.org/installation"
#: Set on an ended pod that is kept for its logs: no longer an instance.
LABEL_EXITED = "maas.apache.org/exited"
#: When the controller let go of a kept pod (epoch seconds): the oldest kept pods go first.
ANNOTATION_EXITED_AT = "maas.apache.org/exited-at"
ANNOTATION_SPEC = "maas.apache.org/spec"
APP_NAME = "maas-instance"
MANAGER = "maas-controller"
#: Selects every instance pod of any controller; :func:`selector` narrows it to one installation.
SELECTOR = f"{LABEL_NAME}={APP_NAME},{LABEL_MANAGED_BY}={MANAGER}"


def selector(installation: str | None, *, exited: bool = False) -> str:
    """The instance pods of ``installation`` (live ones, or the ones kept for their logs)."""
    parts = [SELECTOR]
    if installation:
        parts.append(f"{LABEL_INSTALLATION}={installation}")
    parts.append(f"{LABEL_EXITED}=true" if exited else f"!{LABEL_EXITED}")
    return ",".join(parts)

CONTAINER_NAME = "runner"
DATA_DIR = "/var/lib/maas"
INSTANCE_DIR = f"{DATA_DIR}/instance"
CACHE_DIR = f"{DATA_DIR}/cache"
SPEC_ENV = "MAAS_INSTANCE_SPEC"
#: Where ``--k8s-secret`` is mounted in runner pods.
SECRETS_DIR = "/etc/maas/secrets"
#: The image's non-root user (see the Dockerfile).
RUNNER_UID = 10001
#: Seconds past the runner's own drain + stop grace before the kubelet SIGKILLs the pod, so the
#: runner's deregister → drain → SIGTERM → SIGKILL sequence always completes on its own.
KILL_MARGIN_SECONDS = 2

#: Waiting reasons that will not resolve by waiting: the pod is reported EXITED at once.
FATAL_WAITING_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
     "CreateContainerConfigError", "CrashLoopBackOff"}
)
#: Spacing of the retries of one API call (5xx answers, timeouts, refused connections).
API_BACKOFF = Backoff(initial=0.2, max_delay=2.0, jitter=0.5)
#: Longest reason taken from a termination message (the tail of the runner's log).
MESSAGE_LIMIT = 300

_DNS_LABEL_MAX = 63


# -- naming --------------------------------------------------------------------------------------
def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def pod_name(instance_id: str) -> str:
    """The pod's name: the instance id when it is a valid DNS-1123 label already, else a cleaned,
    shortened form with a hash of the id appended (so two ids never share a pod)."""
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", instance_id.lower())).strip("-")
    if cleaned == instance_id and len(cleaned) <= _DNS_LABEL_MAX:
        return cleaned
    prefix = cleaned[: _DNS_LABEL_MAX - 9].rstrip("-") or "maas"
    return f"{prefix}-{_digest(instance_id)}"


def label_value(value: str) -> str:
    """A label-safe form of ``value`` (at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both
    ends). Labels are for selection by people; the exact values are in the spec annotation."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", value)
    if len(cleaned) > _DNS_LABEL_MAX:
        cleaned = f"{cleaned[: _DNS_LABEL_MAX - 9]}-{_digest(value)}"
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def grace_seconds(spec: InstanceSpec) -> int:
    """The pod's termination grace: the runner's drain and stop grace, rounded up, plus a margin."""
    return math.ceil(spec.drain_seconds + spec.stop_grace) + KILL_MARGIN_SECONDS


def cpu_quantity(cpu: float) -> str:
    """``0.5`` → ``"500m"``."""
    return f"{max(1, round(cpu * 1000))}m"


# -- the pod -------------------------------------------------------------------------------------
def build_pod(spec: InstanceSpec, *, namespace: str, image: str, installation: str | None = None,
              secret: str | None = None) -> k8s.V1Pod:
    """The pod that runs one instance; ``secret`` names a Secret mounted read-only at
    :data:`SECRETS_DIR` (the runner's ZooKeeper credentials, the model token and certificate:
    docs/security.md), for the spec's file paths to point into."""
    secret_mounts = [k8s.V1VolumeMount(name="secrets", mount_path=SECRETS_DIR, read_only=True)] if secret else []
    secret_volumes = [k8s.V1Volume(name="secrets", secret=k8s.V1SecretVolumeSource(
        secret_name=secret, default_mode=0o440))] if secret else []
    pod_spec_json = spec.model_copy(update={"cache_dir": CACHE_DIR}).model_dump_json()
    quantities: dict[str, str] = {}
    if spec.memory > 0:
        quantities["memory"] = f"{spec.memory}Mi"
    if spec.cpu:
        quantities["cpu"] = cpu_quantity(spec.cpu)
    grace = grace_seconds(spec)
    ready_check = k8s.V1ExecAction(command=["grep", "-q", '"state": "running"', f"{INSTANCE_DIR}/{STATUS_FILE}"])
    container = k8s.V1Container(
        name=CONTAINER_NAME,
        image=image,
        command=["python", "-m", "maas.runner", "--instance-dir", INSTANCE_DIR, "--spec-from-env", SPEC_ENV],
        env=[
            k8s.V1EnvVar(name=SPEC_ENV, value=pod_spec_json),
            k8s.V1EnvVar(
                name="MAAS_ADVERTISE_HOST",
                value_from=k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path="status.podIP")),
            ),
            k8s.V1EnvVar(name="HOME", value=DATA_DIR),  # the image's home; writable here
            k8s.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        ],
        resources=k8s.V1ResourceRequirements(requests=dict(quantities) or None, limits=dict(quantities) or None),
        # Ready once the runner has registered the endpoint and written "running" to its status
        # file (maas.instance.write_json_atomic writes json.dump's default separators).
        readiness_probe=k8s.V1Probe(
            # `_exec`: the generated model's keyword for its "exec" field.
            _exec=ready_check,  # type: ignore[call-arg]
            initial_delay_seconds=1,
            period_seconds=2,
            timeout_seconds=2,
            success_threshold=1,
            failure_threshold=1,
        ),
        volume_mounts=[
            k8s.V1VolumeMount(name="data", mount_path=DATA_DIR),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            *secret_mounts,
        ],
        # The runner logs why it failed as its last line: it becomes the termination message.
        termination_message_policy="FallbackToLogsOnError",
        security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
    )
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=pod_name(spec.instance_id),
            namespace=namespace,
            labels={
                LABEL_NAME: APP_NAME,
                LABEL_MANAGED_BY: MANAGER,
                LABEL_MODEL: label_value(spec.name),
                LABEL_VERSION: label_value(spec.version),
                LABEL_INSTANCE: label_value(spec.instance_id),
                **({LABEL_INSTALLATION: installation} if installation else {}),
            },
            annotations={ANNOTATION_SPEC: spec.model_dump_json()},
        ),
        spec=k8s.V1PodSpec(
            containers=[container],
            # The controller replaces failed instances itself (with its backoff and the reason).
            restart_policy="Never",
            termination_grace_period_seconds=grace,
            # The pause container becomes PID 1 and reaps whatever a payload's script orphans.
            share_process_namespace=True,
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=k8s.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=RUNNER_UID,
                run_as_group=RUNNER_UID,
                fs_group=RUNNER_UID,
                seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
            ),
            volumes=[
                k8s.V1Volume(name="data", empty_dir=k8s.V1EmptyDirVolumeSource()),
                k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
                *secret_volumes,
            ],
        ),
    )


# -- reading a pod's state -----------------------------------------------------------------------
@dataclass(frozen=True)
class PodObservation:
    """What one look at a pod says about its instance."""

    state: InstanceState
    reason: str | None = None
    #: The pod is alive but will not make it (image pull, pending too long): delete it.
    doomed: bool = False


def _with_message(reason: str, message: str | None) -> str:
    if not message:
        return reason
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if len(last) > MESSAGE_LIMIT:
        last = "…" + last[-MESSAGE_LIMIT:]
    return f"{reason}: {last}" if last else reason


def _runner_status(status: k8s.V1PodStatus) -> k8s.V1ContainerStatus | None:
    statuses = status.container_statuses or []
    for cs in statuses:
        if cs.name == CONTAINER_NAME:
            return cs
    return statuses[0] if statuses else None


def _terminated_reason(term: k8s.V1ContainerStateTerminated) -> str:
    reason = f"{term.reason or 'Terminated'} (exit code {term.exit_code})"
    return _with_message(reason, term.message)


def _condition(status: k8s.V1PodStatus, kind: str) -> k8s.V1PodCondition | None:
    for cond in status.conditions or []:
        if cond.type == kind:
            return cond
    return None


def _ready(status: k8s.V1PodStatus) -> bool:
    cond = _condition(status, "Ready")
    return cond is not None and cond.status == "True"


def _failure_reason(status: k8s.V1PodStatus, runner: k8s.V1ContainerStatus | None) -> str:
    """Why a pod in phase Failed/Succeeded ended, in Kubernetes' words."""
    if status.reason:  # pod level: Evicted, DeadlineExceeded, NodeLost, UnexpectedAdmissionError, …
        return _with_message(status.reason, status.message)
    if runner is not None and runner.state is not None and runner.state.terminated is not None:
        return _terminated_reason(runner.state.terminated)
    if runner is not None and runner.last_state is not None and runner.last_state.terminated is not None:
        return _terminated_reason(runner.last_state.terminated)
    return f"pod {status.phase or 'ended'}"


def _disruption(status: k8s.V1PodStatus) -> str | None:
    """Why Kubernetes is deleting a pod (preemption, eviction, taints), if it says."""
    cond = _condition(status, "DisruptionTarget")
    if cond is not None and cond.status == "True":
        return _with_message(cond.reason or "DisruptionTarget", cond.message)
    return None


def _pending_detail(status: k8s.V1PodStatus, runner: k8s.V1ContainerStatus | None) -> str | None:
    scheduled = _condition(status, "PodScheduled")
    if scheduled is not None and scheduled.status != "True":
        return _with_message(scheduled.reason or "Unschedulable", scheduled.message)
    if runner is not None and runner.state is not None and runner.state.waiting is not None:
        return _with_message(runner.state.waiting.reason or "Waiting", runner.state.waiting.message)
    return None


def observe_pod(pod: k8s.V1Pod, *, pending_for: float, pending_timeout: float) -> PodObservation:
    """Map a pod to its instance's state. ``pending_for``: seconds since the launcher first saw it."""
    status = pod.status or k8s.V1PodStatus()
    phase = status.phase or "Pending"  # a pod just created has no status yet
    runner = _runner_status(status)
    if _meta(pod).deletion_timestamp is not None:
        return PodObservation(InstanceState.STOPPING, _disruption(status))
    if phase in ("Succeeded", "Failed"):
        return PodObservation(InstanceState.EXITED, _failure_reason(status, runner))
    waiting = runner.state.waiting if runner is not None and runner.state is not None else None
    if waiting is not None and waiting.reason in FATAL_WAITING_REASONS:
        return PodObservation(InstanceState.EXITED, _with_message(waiting.reason, waiting.message), doomed=True)
    if phase == "Pending" and pending_for > pending_timeout:
        detail = _pending_detail(status, runner)
        reason = f"pod Pending for more than {pending_timeout:.0f}s" + (f" ({detail})" if detail else "")
        return PodObservation(InstanceState.EXITED, reason, doomed=True)
    if phase == "Running" and _ready(status):
        return PodObservation(InstanceState.RUNNING)
    # Pending, Running but not ready, or Unknown (node unreachable: the node controller evicts
    # such pods in time, and then they end or disappear).
    return PodObservation(InstanceState.STARTING)


# -- errors --------------------------------------------------------------------------------------
class _TransientError(LauncherError):
    """A failed call worth repeating: 5xx, 429, a timeout or a connection error."""


def _api_message(exc: ApiException) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            return body.strip()[:MESSAGE_LIMIT]
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    return str(exc.reason or "")


def _translate(what: str, exc: Exception) -> LauncherError:
    """One LauncherError for whatever the client raised."""
    if isinstance(exc, ApiException):
        text = f"{what}: Kubernetes API answered {exc.status} {exc.reason or ''}".rstrip()
        message = _api_message(exc)
        if message and message != exc.reason:
            text += f": {message}"
        transient = exc.status is not None and (exc.status >= 500 or exc.status == 429)
        return (_TransientError if transient else LauncherError)(text)
    if isinstance(exc, urllib3.exceptions.HTTPError):  # timeouts, refused/reset connections
        return _TransientError(f"{what}: Kubernetes API unreachable: {exc}")
    return LauncherError(f"{what}: {type(exc).__name__}: {exc}")


# -- the launcher --------------------------------------------------------------------------------
@dataclass
class _Tracked:
    spec: InstanceSpec
    pod: str
    first_seen: float  # monotonic
    state: InstanceState = InstanceState.STARTING
    running_since: float | None = None
    stop_requested: bool = False
    reason: str | None = None
    #: Why Kubernetes (not the controller) is deleting the pod; the reason once it is gone.
    disruption: str | None = None
    gone: bool = False
    #: The pod ended (Succeeded/Failed): its logs can be read while it is kept.
    ended: bool = False
    #: Still alive as Kubernetes sees it, but will never run (image pull, pending too long).
    doomed: bool = False


def load_api_client(kubeconfig: Path | None) -> k8s.ApiClient:
    """An API client from ``kubeconfig``, or from the pod's service account when None."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig is not None:
            k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)
    except (k8s_config.ConfigException, OSError, ValueError, TypeError) as exc:
        source = str(kubeconfig) if kubeconfig is not None else "the in-cluster service account"
        raise ConfigError(f"cannot load Kubernetes configuration from {source}: {exc}") from exc
    # maas.retry is the one retry layer: urllib3 must not retry (and multiply timeouts) underneath.
    configuration.retries = False
    return k8s.ApiClient(configuration)


class KubernetesLauncher(Launcher):
    """Runs instances as pods; see the module's docstring."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        namespace: str,
        image: str,
        pending_timeout: float = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        request_timeout: float = 10.0,
        attempts: int = 3,
        backoff: Backoff = API_BACKOFF,
        owns_client: bool = False,
        installation: str | None = None,
        keep_exited: int = 5,
        legacy_owner: tuple[str, str] | None = None,
        secret: str | None = None,
    ) -> None:
        self.api_client = api_client
        self.secret = secret
        self.api = k8s.CoreV1Api(api_client)
        self.namespace = namespace
        self.image = image
        self.pending_timeout = pending_timeout
        self.clock = clock
        self.request_timeout = request_timeout
        self.attempts = attempts
        self.backoff = backoff
        self._owns_client = owns_client
        self.installation = installation
        self.keep_exited = keep_exited
        #: ``(zk_quorum, config_path)``: a pod without the installation label (created before
        #: the label existed) is adopted when its spec names these, i.e. this installation.
        self.legacy_owner = legacy_owner
        self._tracked: dict[str, _Tracked] = {}  # by instance id
        #: Pods of forgotten instances, deleted but possibly still listed, by pod name: reported
        #: as exited (under their instance id) while their deletion is still to be done, so that
        #: the plan forgets them again and the executor retries the deletion.
        self._doomed: dict[str, InstanceSpec] = {}
        #: Labelled pods without a readable spec annotation (warned about once).
        self._unreadable: set[str] = set()

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        *,
        api_client: k8s.ApiClient | None = None,
        clock: Clock = SYSTEM_CLOCK,
        installation: str | None = None,
    ) -> "KubernetesLauncher":
        """The launcher ``maas_service --launcher kubernetes`` uses: in-cluster configuration, or
        ``settings.kubeconfig`` when set; ``api_client`` replaces both (tests). ``installation``
        is the id of the MaaS installation (:func:`maas.zk.installation_id`)."""
        owns = api_client is None
        client = api_client if api_client is not None else load_api_client(settings.kubeconfig)
        return cls(
            client,
            namespace=settings.k8s_namespace,
            image=settings.k8s_image,
            pending_timeout=settings.k8s_pending_timeout,
            clock=clock,
            owns_client=owns,
            installation=installation,
            keep_exited=settings.keep_exited,
            legacy_owner=(settings.zk_quorum, settings.config_path),
            secret=settings.k8s_secret,
        )

    # -- API calls ----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T], *, tolerate: frozenset[int] = frozenset()) -> T | None:
        """Run one API call with bounded retries; None if it failed with a ``tolerate``d status."""

        def attempt() -> T | None:
            try:
                return fn()
            except ApiException as exc:
                if exc.status in tolerate:
                    return None
                raise _translate(what, exc) from exc
            except (OpenApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                raise _translate(what, exc) from exc

        def on_retry(attempt_no: int, exc: BaseException, pause: float) -> None:
            log.warning("%s (attempt %d of %d); retrying in %.1fs", exc, attempt_no, self.attempts, pause)

        return retry(attempt, retry_on=(_TransientError,), backoff=self.backoff, max_attempts=self.attempts,
                     clock=self.clock, on_retry=on_retry)

    def _list_pods(self, *, exited: bool = False) -> list[k8s.V1Pod]:
        # With legacy adoption the installation is checked here rather than by the server.
        wanted = selector(None if self.legacy_owner else self.installation, exited=exited)
        result = self._call(
            f"list pods in namespace {self.namespace}",
            lambda: self.api.list_namespaced_pod(self.namespace, label_selector=wanted,
                                                 _request_timeout=self.request_timeout),
        )
        items = result.items if result is not None and result.items else []
        # The server filtered by the selector already; checking again costs nothing.
        return [p for p in items if _ours(p, self.installation, exited=exited) or self._legacy(p, exited)]

    def _legacy(self, pod: k8s.V1Pod, exited: bool) -> bool:
        """A pod of this installation from before the installation label: its spec says so."""
        if self.installation is None or self.legacy_owner is None or not _ours(pod, None, exited=exited):
            return False
        if LABEL_INSTALLATION in (_meta(pod).labels or {}):
            return False
        try:
            spec = InstanceSpec.model_validate_json((_meta(pod).annotations or {}).get(ANNOTATION_SPEC) or "")
        except ValueError:
            return False
        return (spec.zk_quorum, spec.config_path) == self.legacy_owner

    def _delete_pod(self, name: str, grace: int) -> None:
        """Delete a pod; one that is gone already is fine."""
        self._call(
            f"delete pod {name} in namespace {self.namespace}",
            lambda: self.api.delete_namespaced_pod(name, self.namespace, grace_period_seconds=grace,
                                                   _request_timeout=self.request_timeout),
            tolerate=frozenset({404}),
        )

    # -- Launcher -----------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> None:
        if spec.instance_id in self._tracked:
            raise LauncherError(f"instance {spec.instance_id} already exists")
        pod = build_pod(spec, namespace=self.namespace, image=self.image, installation=self.installation,
                        secret=self.secret)
        name = _name(pod)
        created = self._call(
            f"create pod {name} in namespace {self.namespace}",
            lambda: self.api.create_namespaced_pod(self.namespace, pod, _request_timeout=self.request_timeout),
            tolerate=frozenset({409}),
        )
        if created is None:  # 409: an earlier attempt whose answer was lost created it
            log.info("pod %s exists already; treating instance %s as started", name, spec.instance_id)
        self._tracked[spec.instance_id] = _Tracked(spec=spec, pod=name, first_seen=self.clock.monotonic())
        log.info("started instance %s of %s@%s (pod %s/%s)", spec.instance_id, spec.name, spec.version,
                 self.namespace, name)

    def stop(self, instance_id: str) -> None:
        tracked = self._tracked.get(instance_id)
        if tracked is None or tracked.stop_requested:
            return
        if not tracked.gone:
            # The runner deregisters on SIGTERM, drains, stops the service; the kubelet SIGKILLs
            # whatever is left when the grace period ends.
            self._delete_pod(tracked.pod, grace_seconds(tracked.spec))
        tracked.stop_requested = True
        log.info("stopping instance %s (pod %s)", instance_id, tracked.pod)

    def instances(self) -> list[Instance]:
        """One LIST, read into instance states. It changes nothing in the cluster: a pod that
        will never run is reported EXITED and deleted when the plan forgets it."""
        pods = self._list_pods()
        now = self.clock.monotonic()
        by_pod = {t.pod: t for t in self._tracked.values()}
        listed: set[str] = set()
        for pod in pods:
            name = _name(pod)
            listed.add(name)
            if name in self._doomed:
                continue
            tracked = by_pod.get(name) or self._adopt(pod, now)
            if tracked is not None:
                self._observe(tracked, pod, now)
        for tracked in self._tracked.values():
            if tracked.pod not in listed and not tracked.gone:
                self._vanished(tracked)
        # A forgotten pod whose deletion failed earlier comes back as exited, to be forgotten again.
        retry = {_name(p) for p in pods if _name(p) in self._doomed and _meta(p).deletion_timestamp is None}
        self._doomed = {name: spec for name, spec in self._doomed.items() if name in listed}
        again = [Instance(instance_id=spec.instance_id, name=spec.name, version=spec.version,
                          state=InstanceState.EXITED, started_at=now, stop_requested=True)
                 for name, spec in self._doomed.items() if name in retry and spec.instance_id not in self._tracked]
        return [self._instance(t) for t in self._tracked.values()] + again

    def forget(self, instance_id: str) -> None:
        tracked = self._tracked.pop(instance_id, None)
        if tracked is None:
            retry = next(((n, s) for n, s in self._doomed.items() if s.instance_id == instance_id), None)
            if retry is not None:
                self._delete_pod(retry[0], 0)
            return
        if tracked.gone:
            return
        if tracked.ended and not tracked.doomed and self.keep_exited > 0:
            self._retain(tracked)
            return
        # From now on the pod is never reported as an instance again, even if this deletion fails
        # (then it is reported exited once more and the next forget deletes it). It is EXITED: no
        # runner is left to give a grace period to.
        self._doomed[tracked.pod] = tracked.spec
        self._delete_pod(tracked.pod, 0)

    def logs_hint(self, instance_id: str) -> str | None:
        tracked = self._tracked.get(instance_id)
        if tracked is None or not tracked.ended or tracked.doomed or self.keep_exited <= 0:
            return None
        return f"kubectl -n {self.namespace} logs {tracked.pod}"

    def _retain(self, tracked: _Tracked) -> None:
        """Keep an ended pod for ``kubectl logs``, labelled out of the instances; delete the
        oldest kept pods of its model beyond ``keep_exited``."""
        self._doomed[tracked.pod] = tracked.spec  # not an instance any more, whatever happens next
        self._call(
            f"label pod {tracked.pod} in namespace {self.namespace} as exited",
            lambda: self.api.patch_namespaced_pod(
                tracked.pod, self.namespace,
                {"metadata": {"labels": {LABEL_EXITED: "true"},
                              "annotations": {ANNOTATION_EXITED_AT: f"{time.time():.3f}"}}},
                _request_timeout=self.request_timeout),
            tolerate=frozenset({404}),
        )
        self._doomed.pop(tracked.pod, None)  # labelled: the listing no longer shows it
        kept = [p for p in self._list_pods(exited=True) if _spec_key(p) == (tracked.spec.name, tracked.spec.version)]
        kept.sort(key=_exited_at, reverse=True)
        for old in kept[self.keep_exited:]:
            self._delete_pod(_name(old), 0)

    def resync(self) -> None:
        """Forget what this launcher believed and adopt every labelled pod in the namespace. When
        the API cannot be reached, adoption happens on the first successful :meth:`instances`
        (which adopts pods it does not know), so nothing is started twice either way."""
        self._tracked.clear()
        self._doomed.clear()
        self._unreadable.clear()
        try:
            pods = self._list_pods()
        except LauncherError as exc:
            log.warning("cannot list pods to adopt them (%s); adopting on the next listing", exc)
            return
        now = self.clock.monotonic()
        for pod in pods:
            tracked = self._adopt(pod, now)
            if tracked is not None:
                self._observe(tracked, pod, now)

    def close(self) -> None:
        # Pods outlive the controller by design: a new one adopts them.
        self._tracked.clear()
        if self._owns_client:
            self.api_client.close()

    # -- bookkeeping --------------------------------------------------------------------------
    def _adopt(self, pod: k8s.V1Pod, now: float) -> _Tracked | None:
        name = _name(pod)
        annotation = (_meta(pod).annotations or {}).get(ANNOTATION_SPEC)
        try:
            spec = InstanceSpec.model_validate_json(annotation or "")
        except ValueError as exc:
            if name not in self._unreadable:
                self._unreadable.add(name)
                log.warning("pod %s has the instance labels but no readable %s annotation (%s); ignoring it",
                            name, ANNOTATION_SPEC, str(exc).splitlines()[0])
            return None
        if spec.instance_id in self._tracked:
            log.warning("pod %s claims instance %s, which pod %s runs; ignoring it", name, spec.instance_id,
                        self._tracked[spec.instance_id].pod)
            return None
        # Pending time counts from adoption: a new leader gives a stuck pod a full timeout again.
        tracked = _Tracked(spec=spec, pod=name, first_seen=now)
        if _meta(pod).deletion_timestamp is not None:
            tracked.stop_requested = True  # most likely the previous leader's stop
        self._tracked[spec.instance_id] = tracked
        log.info("adopted instance %s of %s@%s (pod %s)", spec.instance_id, spec.name, spec.version, name)
        return tracked

    def _observe(self, tracked: _Tracked, pod: k8s.V1Pod, now: float) -> None:
        if tracked.state is InstanceState.EXITED:
            return  # final: the controller forgets it next
        seen = observe_pod(pod, pending_for=now - tracked.first_seen, pending_timeout=self.pending_timeout)
        if tracked.stop_requested and seen.state is not InstanceState.EXITED:
            tracked.state = InstanceState.STOPPING
            return
        tracked.state = seen.state
        if seen.state is InstanceState.RUNNING and tracked.running_since is None:
            tracked.running_since = now
        elif seen.state is InstanceState.STOPPING:
            tracked.disruption = seen.reason or tracked.disruption or "pod deleted by someone other than the controller"
        elif seen.state is InstanceState.EXITED:
            tracked.reason = seen.reason
            tracked.doomed = seen.doomed  # still alive as far as Kubernetes knows: forget deletes it
            tracked.ended = not seen.doomed
            log.warning("instance %s (pod %s) failed: %s", tracked.spec.instance_id, tracked.pod, seen.reason)

    def _vanished(self, tracked: _Tracked) -> None:
        tracked.gone = True
        if tracked.state is not InstanceState.EXITED:
            tracked.state = InstanceState.EXITED
            if not tracked.stop_requested:
                tracked.reason = tracked.disruption or "pod deleted by someone other than the controller"

    def _instance(self, tracked: _Tracked) -> Instance:
        return Instance(
            instance_id=tracked.spec.instance_id,
            name=tracked.spec.name,
            version=tracked.spec.version,
            state=tracked.state,
            started_at=tracked.first_seen,
            running_since=tracked.running_since,
            stop_requested=tracked.stop_requested,
            reason=None if tracked.stop_requested else tracked.reason,
            # http://<podIP>:<port>: the port is chosen by the runner inside the pod and is not
            # visible through the API; the endpoint is in the instance's registration.
            url=None,
        )


def _meta(pod: k8s.V1Pod) -> k8s.V1ObjectMeta:
    return pod.metadata if pod.metadata is not None else k8s.V1ObjectMeta()


def _name(pod: k8s.V1Pod) -> str:
    return _meta(pod).name or ""


def _ours(pod: k8s.V1Pod, installation: str | None = None, *, exited: bool = False) -> bool:
    labels = _meta(pod).labels or {}
    return (bool(_name(pod)) and labels.get(LABEL_NAME) == APP_NAME and labels.get(LABEL_MANAGED_BY) == MANAGER
            and (installation is None or labels.get(LABEL_INSTALLATION) == installation)
            and (labels.get(LABEL_EXITED) == "true") == exited)


def _exited_at(pod: k8s.V1Pod) -> tuple[float, str]:
    try:
        at = float((_meta(pod).annotations or {}).get(ANNOTATION_EXITED_AT) or 0)
    except ValueError:
        at = 0.0
    return at, _name(pod)


def _spec_key(pod: k8s.V1Pod) -> tuple[str, str] | None:
    try:
        spec = InstanceSpec.model_validate_json((_meta(pod).annotations or {}).get(ANNOTATION_SPEC) or "")
    except ValueError:
        return None
    return spec.name, spec.version
