"""``maas_service``: start a controller (docs/contracts.md).

The controller publishes the cluster config to the config znode (Metron's defaults, overridden
by ``--store-uri``), then waits for leadership and runs the reconcile loop until SIGTERM/SIGINT.
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
from maas.zk import connect, publish_config, read_config

log = logging.getLogger("maas.service")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "MAAS"},
               epilog=exit_codes_help([0, 1, 2, 5, 6]))
@click.option("-zq", "--zk_quorum", "zk_quorum", required=True, type=QUORUM, help="ZooKeeper quorum host:port[,…][/chroot]")
@click.option("-zr", "--zk_root", "config_path", default=DEFAULT_CONFIG_PATH, show_default=True, help="Config znode")
@click.option("--store-uri", help="Model store URI written to the config znode (e.g. file:///var/lib/maas/store)")
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("/var/lib/maas/work"), show_default=True,
              help="Where local instances keep their files")
@click.option("--advertise-host", default="127.0.0.1", show_default=True, help="Address registered for local endpoints")
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
@click.option("--launcher", type=click.Choice(["local", "kubernetes"]),
              help="Launcher written to the config znode (default: keep the znode's, else local)")
@click.option("--k8s-namespace", default="maas", show_default=True, help="Namespace of instance pods")
@click.option("--k8s-image", default="maas-runner:latest", show_default=True, help="Runner image of instance pods")
@click.option("--kubeconfig", type=click.Path(path_type=Path), help="Kubeconfig file (default: in-cluster config)")
@click.option("--k8s-pending-timeout", type=float, default=300.0, show_default=True,
              help="Seconds an instance pod may stay Pending before it is replaced")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve Prometheus /metrics and the /healthz liveness check on this port (0: any free port; "
              "default: not served)")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address --metrics-port listens on")
@click.option("--log-level", default="INFO", show_default=True, type=Choices(["DEBUG", "INFO", "WARNING", "ERROR"]))
def main(
    zk_quorum: str,
    config_path: str,
    store_uri: str | None,
    work_dir: Path,
    advertise_host: str,
    reconcile_interval: float,
    start_timeout: float,
    ready_timeout: float,
    stop_grace: float,
    probe_interval: float,
    probe_failures: int,
    restart_backoff_max: float,
    session_timeout: float,
    launcher: str | None,
    k8s_namespace: str,
    k8s_image: str,
    kubeconfig: Path | None,
    k8s_pending_timeout: float,
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
            reconcile_interval=reconcile_interval,
            start_timeout=start_timeout,
            ready_timeout=ready_timeout,
            stop_grace=stop_grace,
            probe_interval=probe_interval,
            probe_failures=probe_failures,
            restart_backoff_max=restart_backoff_max,
            zk_session_timeout=session_timeout,
            k8s_namespace=k8s_namespace,
            k8s_image=k8s_image,
            kubeconfig=kubeconfig,
            k8s_pending_timeout=k8s_pending_timeout,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        run(settings, store_uri, launcher)
    except MaasError as exc:
        click.echo(f"maas_service: {exc}", err=True)
        sys.exit(exc.exit_code)


def run(settings: ServiceSettings, store_uri: str | None = None, launcher_kind: str | None = None) -> None:
    client = connect(settings.zk_quorum, session_timeout=settings.zk_session_timeout)
    server: MetricsServer | None = None
    try:
        config = read_config(client, settings.config_path)
        config = config.with_overrides(store_uri=store_uri, launcher=launcher_kind)
        publish_config(client, config, settings.config_path)
        server = _metrics_server(settings)
        launcher = make_launcher(config, settings)
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
