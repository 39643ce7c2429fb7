"""``maas_deploy``: upload payloads and add, remove, scale and list model instances, with
Metron's option names (docs/contracts.md).

Everything that can be checked before a write is checked first, in this order: the options, the
request (``-ni 0`` for ADD is refused), the cluster (a controller configured it), the payload
(the contract, locally) and the model (a deployed version keeps its payload); only then is the
payload uploaded and the request queued. ``--wait`` prints progress while the controller works
and, when an ADD or SCALE fails, rolls it back unless ``--no-rollback-on-failure``.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from maas.clitypes import QUORUM, Choices, exit_codes_help, show_envvars
from maas.config import DEFAULT_CONFIG_PATH, ext_path
from maas.errors import MaasError, PayloadChanged, RequestFailed, WaitTimeout
from maas.leadership import LeaderInfo
from maas.model_status import ModelStatus, error_detail, error_headline, quoted
from maas.request import RequestStatus
from maas.store import UploadResult
from deploy_client.api import DeployClient

MODES = ["ADD", "REMOVE", "LIST", "SCALE", "STATUS"]
#: Payloads smaller than this upload without a progress bar.
PROGRESS_MIN_BYTES = 8 << 20
#: Seconds a rollback waits for its own request.
ROLLBACK_TIMEOUT = 60.0


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=exit_codes_help([0, 1, 2, 3, 4, 6, 7, 8, 9, 10]))
@click.option("-zq", "--zk_quorum", required=True, type=QUORUM, envvar="MAAS_ZK_QUORUM",
              help="ZooKeeper quorum host:port[,…][/chroot]")
@click.option("-zr", "--zk_root", default=DEFAULT_CONFIG_PATH, show_default=True, envvar="MAAS_ZK_ROOT",
              help="Config znode")
@click.option("-mo", "--mode", required=True, type=Choices(MODES), help="What to do")
@click.option("-n", "--name", help="Model name")
@click.option("-v", "--version", "version", help="Model version")
@click.option("-ni", "--num_instances", type=click.IntRange(0, 10_000), default=1, show_default=True,
              help="Instances to add or remove (at least 1); the target count for SCALE")
@click.option("-m", "--memory", type=click.IntRange(0), default=512, show_default=True,
              help="Memory limit per instance (MB; 0: none)")
@click.option("-hmp", "--hdfs_model_path", help="Payload path in the model store (or a store URI)")
@click.option("-lmp", "--local_model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Local payload directory to upload to --hdfs_model_path first")
@click.option("--force", is_flag=True, help="Replace a different payload already at --hdfs_model_path")
@click.option("--wait/--no-wait", default=False, show_default=True,
              help="Wait for the request's terminal status, showing progress")
@click.option("--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True, help="Seconds --wait waits")
@click.option("--rollback-on-failure/--no-rollback-on-failure", default=None,
              help="With --wait: undo an ADD or SCALE whose instances fail to start  [default: on with --wait]")
@click.option("--verbose", is_flag=True, help="STATUS: print each model's whole last error under the table")
def main(
    zk_quorum: str,
    zk_root: str,
    mode: str,
    name: str | None,
    version: str | None,
    num_instances: int,
    memory: int,
    hdfs_model_path: str | None,
    local_model_path: Path | None,
    force: bool,
    wait: bool,
    timeout: float,
    rollback_on_failure: bool | None,
    verbose: bool,
) -> None:
    """Deploy models to a MaaS cluster."""
    # kazoo reports every failed connection attempt; the command reports the outcome once.
    logging.getLogger("kazoo").addHandler(logging.NullHandler())
    if mode not in ("LIST", "STATUS"):
        missing = [opt for opt, val in (("-n/--name", name), ("-v/--version", version)) if not val]
        if mode in ("ADD", "SCALE") and not hdfs_model_path:
            missing.append("-hmp/--hdfs_model_path")
        if missing:
            raise click.UsageError(f"{mode} needs {', '.join(missing)}")
    if local_model_path is not None and not hdfs_model_path:
        raise click.UsageError("-lmp/--local_model_path needs -hmp/--hdfs_model_path to upload to")
    if rollback_on_failure and not wait:
        raise click.UsageError("--rollback-on-failure needs --wait")
    try:
        with DeployClient(zk_quorum, zk_root) as client:
            if mode == "LIST":
                for (model, model_version), endpoints in client.list(name, version).items():
                    click.echo(f"Model {model} @ {model_version}")
                    for endpoint in endpoints:
                        click.echo(f"\t{endpoint.url}")
                return
            if mode == "STATUS":
                print_statuses(client, name, version, verbose=verbose)
                return
            assert name is not None and version is not None
            deploy(client, Deployment(mode, name, version, num_instances, memory, hdfs_model_path, local_model_path,
                                      force, wait, timeout, wait if rollback_on_failure is None else rollback_on_failure))
    except MaasError as exc:
        click.echo(f"maas_deploy: {exc}", err=True)
        sys.exit(exc.exit_code)


show_envvars(main)


@dataclass(frozen=True)
class Deployment:
    """One ADD, REMOVE or SCALE as the options give it."""

    mode: str
    name: str
    version: str
    num_instances: int
    memory: int
    path: str | None
    local: Path | None
    force: bool
    wait: bool
    timeout: float
    rollback: bool

    @property
    def model(self) -> str:
        return f"{self.name}@{self.version}"


def deploy(client: DeployClient, d: Deployment) -> None:
    """Check, upload, queue and (with ``wait``) follow one request."""
    client.make_request(d.mode, d.name, d.version, num_instances=d.num_instances, memory=d.memory, path=d.path)
    client.require_configured()
    if d.mode in ("ADD", "SCALE") and d.path:
        client.check_same_payload(d.name, d.version, d.path)
    if d.local is not None:
        assert d.path is not None
        try:
            store_uri, path, result = upload_with_progress(client, d.local, d.path, d.force)
        except PayloadChanged as exc:
            raise PayloadChanged(f"{exc}: pass --force to replace it") from exc
        if result.changed:
            click.echo(f"Uploaded {d.local} to {store_uri}{path} (sha256 {result.digest[:12]})")
        else:
            click.echo(f"{store_uri}{path} already holds this payload (sha256 {result.digest[:12]})")
    before = client.desired(d.name, d.version)
    request_id = client.submit(d.mode, d.name, d.version, num_instances=d.num_instances, memory=d.memory, path=d.path)
    click.echo(f"Request {request_id}: {d.mode} {d.num_instances} x {d.model} queued")
    if client.leader() is None:
        click.echo("maas_deploy: warning: no controller is leading: the request waits in the queue until one runs "
                   f"(maas_service -zq {client.quorum} …)", err=True)
    if not d.wait:
        return
    try:
        status = client.wait(request_id, d.timeout, progress=ProgressPrinter(d.model), model=(d.name, d.version))
    except WaitTimeout:
        raise WaitTimeout(
            f"request {request_id} has not finished after {d.timeout:g}s; it goes on (the controller keeps working "
            f"on it). Follow it with: maas_deploy -zq {client.quorum} -mo STATUS -n {d.name} -v {d.version}"
        ) from None
    except RequestFailed as exc:
        failed = client.status(request_id)
        report_failure(client, d, request_id, failed, before.instances if before else 0)
        raise RequestFailed(f"request {request_id} failed") from exc
    click.echo(f"Request {request_id}: {status.state.value}")


def report_failure(client: DeployClient, d: Deployment, request_id: str, status: RequestStatus | None,
                   had: int) -> None:
    """Say why, what the cluster keeps wanting, and undo an ADD/SCALE when asked to."""
    reason = (status.reason if status else None) or "unknown reason"
    click.echo(f"Request {request_id}: failed: {error_headline(reason)}", err=True)
    if error_detail(reason):
        click.echo(quoted(error_detail(reason)), err=True)
    target = status.target if status and status.target is not None else None
    if d.mode == "REMOVE" or not target:
        return
    if not d.rollback:
        click.echo(
            f"{d.model} stays desired at {target} instance(s): the controller keeps restarting it, with backoff, "
            f"until it starts or is removed.\nTo remove it: maas_deploy -zq {client.quorum} -mo REMOVE "
            f"-n {d.name} -v {d.version} -ni {target}",
            err=True,
        )
        return
    if d.mode == "ADD":
        undo = ("REMOVE", d.num_instances)
        what = f"removing the {d.num_instances} instance(s) this ADD asked for"
    else:
        undo = ("SCALE", had)
        what = f"scaling back to {had} instance(s)"
    click.echo(f"Rolling back ({what}; --no-rollback-on-failure keeps them)…", err=True)
    rollback_id = client.submit(undo[0], d.name, d.version, num_instances=undo[1], path=d.path)
    try:
        client.wait(rollback_id, ROLLBACK_TIMEOUT)
    except MaasError as exc:
        click.echo(f"Rollback request {rollback_id} did not finish: {exc}", err=True)
        return
    left = client.desired(d.name, d.version)
    click.echo(f"Rolled back: {d.model} is desired at {left.instances if left else 0} instance(s).", err=True)


class ProgressPrinter:
    """Prints a line whenever what the user waits for changes: ready/desired counts, the last
    error (with the restart count and the time to the next start)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._last: tuple[object, ...] | None = None

    def __call__(self, request: RequestStatus | None, st: ModelStatus | None) -> None:
        if request is None:
            line, key = "waiting for a controller to take the request…", ("queued",)
        elif st is None:
            line, key = "accepted; waiting for the controller's first status…", ("accepted",)
        else:
            want = request.target if request.target is not None else st.desired
            starting = max(0, st.running - st.ready)
            line = f"{st.ready}/{want} ready" + (f", {starting} starting" if starting else "") + "…"
            key = (st.ready, want, starting, st.last_error, st.restarts)
            if st.last_error and st.restarts:
                retry = f", next start in {st.backoff_seconds:.0f}s" if st.backoff_seconds else ""
                line += f" last error (restart {st.restarts}{retry}): {error_headline(st.last_error)}"
        if key != self._last:
            self._last = key
            click.echo(f"  {self.model}: {line}")


def upload_with_progress(client: DeployClient, local: Path, store_path: str, force: bool) -> tuple[str, str, UploadResult]:
    """Upload, with a progress bar when a terminal watches and the payload is large."""
    total = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return client.upload(local, store_path, force=force)
    done: dict[str, int] = {}
    with click.progressbar(length=total, label="Uploading", file=sys.stderr) as bar:
        def progress(rel: str, sent: int, _size: int) -> None:
            bar.update(sent - done.get(rel, 0))
            done[rel] = sent

        return client.upload(local, store_path, force=force, progress=progress)


def _when(timestamp: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) if timestamp else ""


def print_statuses(client: DeployClient, name: str | None, version: str | None, *, verbose: bool = False) -> None:
    """The leader, then one row per model; ``verbose``: each model's whole last error below."""
    if not client.configured:
        click.echo(f"No controller has configured this cluster (no config znode {client.config_path} "
                   f"with its {ext_path(client.config_path)}): "
                   f"start one with maas_service -zq {client.quorum} …")
        return
    leader = client.leader()
    statuses = [st for st in client.model_statuses()
                if not ((name and st.name != name) or (version and st.version != version))]
    if isinstance(leader, LeaderInfo):
        click.echo(f"Leader: {leader.describe()}")
    elif leader is not None:
        click.echo(f"Leader: {leader}")
    else:
        newest = max((st.updated for st in statuses), default=None)
        since = f" (last updated {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(newest))})" if newest else ""
        click.echo(f"No controller is leading: the table below is what the last leader published{since}, "
                   "and nothing acts on requests until a controller runs.")
    rows = [("MODEL", "VERSION", "DESIRED", "RUNNING", "READY", "RESTARTS", "LAST ERROR")]
    details: list[tuple[str, ModelStatus]] = []
    for st in statuses:
        error = ""
        if st.last_error:
            error = " ".join(p for p in (_when(st.last_error_at), error_headline(st.last_error)) if p)
            details.append((f"{st.name}@{st.version}", st))
        if st.last_logs:
            error = f"{error} [logs: {st.last_logs}]".lstrip()
        if st.backoff_seconds:
            error = f"[next start in {st.backoff_seconds:.0f}s] {error}"
        rows.append((st.name, st.version, str(st.desired), str(st.running), str(st.ready), str(st.restarts), error))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo(("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]).rstrip())
    if verbose:
        for model, st in details:
            click.echo(f"\n{model}: last error{' at ' + _when(st.last_error_at) if st.last_error_at else ''}: "
                       f"{error_headline(st.last_error)}")
            if error_detail(st.last_error):
                click.echo(quoted(error_detail(st.last_error)))
    elif any(error_detail(st.last_error) for _, st in details):
        click.echo("(--verbose prints each error in full)")


if __name__ == "__main__":
    main()
