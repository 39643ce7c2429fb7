"""``maas_service``: start a controller (docs/contracts.md).

The controller makes sure the config znodes exist (Metron's keys in the config znode, ours in
``<config znode>.ext``; see :mod:`maas.config`), writing ``--store-uri``/``--launcher`` into them
only when a znode is absent or with ``--write-config``, then waits for leadership and runs the
reconcile loop until SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click

from maas.clitypes import QUORUM, Choices, exit_codes_help, show_envvars
from maas.config import DEFAULT_CONFIG_PATH
from maas.controller.metrics import MetricsServer
from maas.controller.service import Controller
from maas.errors import ConfigError, MaasError
from maas.launcher.factory import make_launcher
from maas.settings import ServiceSettings
from maas.zk import Layout, connect, ensure_config, installation_id
from maas.zkauth import ZkAccess, use_policy

log = logging.getLogger("maas.service")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "MAAS"},
               epilog=exit_codes_help([0, 1, 2, 5, 6, 9]))
@click.option("-zq", "--zk_quorum", "zk_quorum", required=True, type=QUORUM, help="ZooKeeper quorum host:port[,…][/chroot]")
@click.option("-zr", "--zk_root", "config_path", default=DEFAULT_CONFIG_PATH, show_default=True,
              envvar="MAAS_ZK_ROOT", help="Config znode (our settings are in the sibling <znode>.ext)")
@click.option("--store-uri", help="Model store URI for the config (e.g. file:///var/lib/maas/store); written when "
                                  "the config is absent or with --write-config, else it must agree with it")
@click.option("--write-config", is_flag=True,
              help="Replace the config znodes' content with the defaults, their current content and the flags")
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("/var/lib/maas/work"), show_default=True,
              help="Where local instances keep their files")
@click.option("--advertise-host", default="127.0.0.1", show_default=True, help="Address registered for local endpoints")
@click.option("--bind-host", help="Address local model services listen on, passed as MAAS_BIND_HOST (default: the "
                                   "advertised host if it is a loopback address, else 0.0.0.0)")
@click.option("--reconcile-interval", type=float, default=1.0, show_default=True, help="Seconds between passes")
@click.option("--start-timeout", type=float, default=60.0, show_default=True, help="Seconds to write endpoint.dat")
@click.option("--ready-timeout", type=float, default=30.0, show_default=True, help="Seconds for the endpoint to answer")
@click.option("--stop-grace", type=float, default=10.0, show_default=True, help="Seconds from SIGTERM to SIGKILL")
@click.option("--probe-interval", type=float, default=2.0, show_default=True, help="Mean seconds between health checks")
@click.option("--probe-failures", type=int, default=3, show_default=True,
              help="Consecutive failed health checks before an instance is replaced")
@click.option("--restart-backoff-max", type=float, default=60.0, show_default=True,
              help="Cap on the delay between restarts of a failing model")
@click.option("--session-timeout", type=float, default=10.0, show_default=True,
              help="ZooKeeper session timeout of the runners (and so how fast a dead runner's registration goes)")
@click.option("--request-retention-days", type=float, default=7.0, show_default=True,
              help="Days a request's terminal status is kept (maas_deploy --wait reads it) before it is deleted")
@click.option("--allowed-store", "allowed_stores", multiple=True, metavar="URI",
              help="A store requests may take payloads from besides --store-uri (repeatable); written like "
                   "--store-uri (docs/security.md)")
@click.option("--keep-exited", type=click.IntRange(0, 1000), default=5, show_default=True,
              help="Exited instances per model whose logs are kept (local: their directory; Kubernetes: their pod)")
@click.option("--cache-max-mb", type=click.IntRange(1), default=10240, show_default=True,
              help="Bound on each node's payload cache; least recently used payloads are evicted")
@click.option("--launcher", type=click.Choice(["local", "kubernetes"]),
              help="Launcher for the config (default: the config's, else local); written like --store-uri")
@click.option("--k8s-namespace", default="maas", show_default=True, help="Namespace of instance pods")
@click.option("--k8s-image", default="maas-runner:latest", show_default=True, help="Runner image of instance pods")
@click.option("--kubeconfig", type=click.Path(path_type=Path), help="Kubeconfig file (default: in-cluster config)")
@click.option("--k8s-pending-timeout", type=float, default=300.0, show_default=True,
              help="Seconds an instance pod may stay Pending before it is replaced")
@click.option("--model-token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Bearer tokens model services require (one per line; docs/security.md)")
@click.option("--model-tls-cert", type=click.Path(path_type=Path, dir_okay=False),
              help="PEM certificate model services serve HTTPS with")
@click.option("--model-tls-key", type=click.Path(path_type=Path, dir_okay=False), help="Its PEM private key")
@click.option("--model-ca-file", type=click.Path(path_type=Path, dir_okay=False),
              help="CA bundle that verifies model services' certificates (default: the system's)")
@click.option("--k8s-secret", help="Secret mounted read-only at /etc/maas/secrets in instance pods, for "
              "--runner-zk-auth-file and --model-* paths there (docs/security.md)")
@click.option("--runner-zk-auth-file", type=click.Path(path_type=Path, dir_okay=False),
              help="ZooKeeper credentials file of the runners (default: the controller's own; docs/security.md)")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve Prometheus /metrics and the /healthz liveness check on this port (0: any free port; "
              "default: not served)")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address --metrics-port listens on")
@click.option("--log-level", default="INFO", show_default=True, type=Choices(["DEBUG", "INFO", "WARNING", "ERROR"]))
def main(
    zk_quorum: str,
    config_path: str,
    store_uri: str | None,
    allowed_stores: tuple[str, ...],
    write_config: bool,
    work_dir: Path,
    advertise_host: str,
    bind_host: str | None,
    reconcile_interval: float,
    start_timeout: float,
    ready_timeout: float,
    stop_grace: float,
    probe_interval: float,
    probe_failures: int,
    restart_backoff_max: float,
    session_timeout: float,
    request_retention_days: float,
    keep_exited: int,
    cache_max_mb: int,
    launcher: str | None,
    k8s_namespace: str,
    k8s_image: str,
    kubeconfig: Path | None,
    k8s_pending_timeout: float,
    model_token_file: Path | None,
    model_tls_cert: Path | None,
    model_tls_key: Path | None,
    model_ca_file: Path | None,
    k8s_secret: str | None,
    runner_zk_auth_file: Path | None,
    metrics_port: int | None,
    metrics_host: str,
    log_level: str,
) -> None:
    """Run the MaaS controller."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kazoo", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = ServiceSettings(
            zk_quorum=zk_quorum,
            config_path=config_path,
            work_dir=work_dir,
            advertise_host=advertise_host,
            bind_host=bind_host,
            reconcile_interval=reconcile_interval,
            start_timeout=start_timeout,
            ready_timeout=ready_timeout,
            stop_grace=stop_grace,
            probe_interval=probe_interval,
            probe_failures=probe_failures,
            restart_backoff_max=restart_backoff_max,
            zk_session_timeout=session_timeout,
            request_retention_days=request_retention_days,
            keep_exited=keep_exited,
            cache_max_mb=cache_max_mb,
            k8s_namespace=k8s_namespace,
            k8s_image=k8s_image,
            kubeconfig=kubeconfig,
            k8s_pending_timeout=k8s_pending_timeout,
            model_token_file=model_token_file,
            model_tls_cert=model_tls_cert,
            model_tls_key=model_tls_key,
            model_ca_file=model_ca_file,
            runner_zk_auth_file=runner_zk_auth_file,
            k8s_secret=k8s_secret,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        run(settings, store_uri, launcher, write_config=write_config, allowed_stores=list(allowed_stores) or None)
    except MaasError as exc:
        click.echo(f"maas_service: {exc}", err=True)
        sys.exit(exc.exit_code)


def run(settings: ServiceSettings, store_uri: str | None = None, launcher_kind: str | None = None,
        *, write_config: bool = False, allowed_stores: list[str] | None = None) -> None:
    access = ZkAccess.from_environment()
    if not access.authenticated:
        log.warning("no ZooKeeper credentials configured (MAAS_ZK_AUTH_FILE): any client that reaches ZooKeeper "
                    "can deploy and run code; see docs/security.md")
    client = connect(settings.zk_quorum, session_timeout=settings.zk_session_timeout, access=access)
    server: MetricsServer | None = None
    try:
        use_policy(client, settings.config_path, "controller")
        config = ensure_config(client, settings.config_path,
                               overrides={"store_uri": store_uri, "launcher": launcher_kind,
                                          "allowed_stores": allowed_stores}, write=write_config)
        server = _metrics_server(settings)
        installation = installation_id(client, Layout.from_config(config)) if config.launcher == "kubernetes" else None
        launcher = make_launcher(config, settings, installation=installation)
        controller = Controller(client, config, launcher, settings, metrics_url=server.url if server else None)
        if server is not None:
            server.bind(controller.metrics, controller.health)
            server.start()
            log.info("serving %s/metrics and %s/healthz", server.url, server.url)
        done = threading.Event()

        def _shutdown(signum: int, _frame: object) -> None:
            log.info("received signal %d; stopping controller (instances keep running)", signum)
            controller.stop()
            done.set()

        signal.signal(signal.SIGTERM, _shutdown)
        signal.signal(signal.SIGINT, _shutdown)
        worker = threading.Thread(target=controller.run, name="controller", daemon=True)
        worker.start()
        while not done.wait(0.5) and worker.is_alive():
            pass
        worker.join(timeout=10)
        launcher.close()
    finally:
        if server is not None:
            server.stop()
        client.stop()
        client.close()


show_envvars(main)


def _metrics_server(settings: ServiceSettings) -> MetricsServer | None:
    """The /metrics and /healthz server, bound before the controller starts (so a port in use
    is reported at once), or None when not asked for."""
    if settings.metrics_port is None:
        return None
    try:
        return MetricsServer(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc.strerror or exc}"
        ) from exc


if __name__ == "__main__":
    main()
