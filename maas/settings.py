"""Settings of the ``maas_service`` process: one typed, validated place, filled from CLI flags
(each with a ``MAAS_…`` environment variable). Cluster-wide settings live in the config znode
(:mod:`maas.config`); these are the ones that belong to one controller process."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from maas.config import DEFAULT_CONFIG_PATH
from maas.endpoint_auth import EndpointCredentials
from maas.retry import Backoff


class ServiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zk_quorum: str = Field(min_length=1, description="ZooKeeper connection string host:port[,…][/chroot]")
    config_path: str = Field(DEFAULT_CONFIG_PATH, pattern=r"^/", description="Config znode")
    work_dir: Path = Field(Path("/var/lib/maas/work"), description="Where local instances keep their files")
    advertise_host: str = Field("127.0.0.1", min_length=1, description="Address registered for local endpoints")
    bind_host: str | None = Field(None, description="Address local services listen on (MAAS_BIND_HOST); "
                                                   "None: the advertised host if loopback, else all interfaces")
    reconcile_interval: float = Field(1.0, gt=0, le=60, description="Seconds between reconcile passes")
    start_timeout: float = Field(60.0, gt=0, description="Seconds a payload has to write endpoint.dat")
    ready_timeout: float = Field(30.0, gt=0, description="Seconds an endpoint has to answer HTTP")
    drain_seconds: float = Field(0.5, ge=0, description="Pause between deregistration and stop")
    stop_grace: float = Field(10.0, ge=0, description="Seconds between SIGTERM and SIGKILL")
    restart_backoff_initial: float = Field(1.0, gt=0, description="First restart delay after a failure")
    restart_backoff_max: float = Field(60.0, gt=0, description="Cap on the restart delay")
    stable_after: float = Field(10.0, ge=0, description="Seconds running after which failures are forgotten")
    probe_interval: float = Field(2.0, gt=0, description="Mean seconds between health checks (jittered ±25%)")
    probe_failures: int = Field(3, ge=1, description="Consecutive failed health checks before replacement")
    request_retention_days: float = Field(7.0, gt=0, description="Days a terminal request status is kept")
    keep_exited: int = Field(5, ge=0, le=1000, description="Exited instances per model whose logs are kept")
    cache_max_mb: int = Field(10240, ge=1, description="Bound on each node's payload cache (LRU eviction)")
    zk_session_timeout: float = Field(10.0, ge=2, le=60, description="Runners' ZooKeeper session timeout")
    # Kubernetes launcher (used when the config znode's "launcher" is "kubernetes").
    k8s_namespace: str = Field("maas", min_length=1, description="Namespace of the instance pods")
    k8s_image: str = Field("maas-runner:latest", min_length=1, description="Image with the runner and model_server")
    kubeconfig: Path | None = Field(None, description="Kubeconfig file; None: in-cluster config")
    k8s_pending_timeout: float = Field(300.0, gt=0, description="Seconds a pod may stay Pending before it is replaced")
    k8s_secret: str | None = Field(None, min_length=1, description="Secret mounted read-only at /etc/maas/secrets "
                                                                   "in instance pods (credentials, model token)")
    # Authenticated model endpoints (docs/security.md): paths handed to every instance.
    model_token_file: Path | None = Field(None, description="Bearer tokens model services accept (one per line)")
    model_tls_cert: Path | None = Field(None, description="PEM certificate model services serve HTTPS with")
    model_tls_key: Path | None = Field(None, description="Its PEM private key")
    model_ca_file: Path | None = Field(None, description="CA bundle verifying model services' certificates")
    # ZooKeeper credentials of the runners (docs/security.md); None: the controller's own
    runner_zk_auth_file: Path | None = Field(None, description="Credentials file the runners authenticate with")

    @property
    def endpoint_credentials(self) -> EndpointCredentials:
        """What the prober sends to and trusts of model endpoints."""
        return EndpointCredentials.create(self.model_token_file, self.model_ca_file)
    # Observability.
    metrics_port: int | None = Field(None, ge=0, le=65535,
                                     description="Port of /metrics and /healthz (0: any free port; None: not served)")
    metrics_host: str = Field("127.0.0.1", min_length=1, description="Address /metrics and /healthz listen on")

    @property
    def restart_backoff(self) -> Backoff:
        return Backoff(initial=self.restart_backoff_initial, max_delay=self.restart_backoff_max, jitter=0.2)
