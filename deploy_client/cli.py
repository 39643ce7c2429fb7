"""``maas_deploy``: upload payloads and add, remove, scale and list model instances, with
Metron's option names (DESIGN.md §8)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from maas.config import DEFAULT_CONFIG_PATH
from maas.errors import MaasError
from maas.store import UploadResult
from deploy_client.api import DeployClient

MODES = ["ADD", "REMOVE", "LIST", "SCALE", "STATUS"]
#: Payloads smaller than this upload without a progress bar.
PROGRESS_MIN_BYTES = 8 << 20


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-zq", "--zk_quorum", required=True, help="ZooKeeper quorum host:port[,…][/chroot]")
@click.option("-zr", "--zk_root", default=DEFAULT_CONFIG_PATH, show_default=True, help="Config znode")
@click.option("-mo", "--mode", required=True, type=click.Choice(MODES, case_sensitive=False), help="What to do")
@click.option("-n", "--name", help="Model name")
@click.option("-v", "--version", "version", help="Model version")
@click.option("-ni", "--num_instances", type=click.IntRange(0, 10_000), default=1, show_default=True,
              help="Instances to add or remove; the target count for SCALE")
@click.option("-m", "--memory", type=click.IntRange(0), default=512, show_default=True, help="Memory per instance (MB)")
@click.option("-hmp", "--hdfs_model_path", help="Payload path in the model store (or a store URI)")
@click.option("-lmp", "--local_model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Local payload directory to upload to --hdfs_model_path first")
@click.option("--force", is_flag=True, help="Replace a different payload already at --hdfs_model_path")
@click.option("--wait/--no-wait", default=False, show_default=True, help="Wait for the request's terminal status")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds --wait waits")
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
) -> None:
    """Deploy models to a MaaS cluster."""
    # kazoo reports every failed connection attempt; the command reports the outcome once.
    logging.getLogger("kazoo").addHandler(logging.NullHandler())
    mode = mode.upper()
    if mode not in ("LIST", "STATUS"):
        missing = [opt for opt, val in (("-n/--name", name), ("-v/--version", version)) if not val]
        if mode in ("ADD", "SCALE") and not hdfs_model_path:
            missing.append("-hmp/--hdfs_model_path")
        if missing:
            raise click.UsageError(f"{mode} needs {', '.join(missing)}")
    if local_model_path is not None and not hdfs_model_path:
        raise click.UsageError("-lmp/--local_model_path needs -hmp/--hdfs_model_path to upload to")
    try:
        with DeployClient(zk_quorum, zk_root) as client:
            if mode == "LIST":
                for (model, model_version), endpoints in client.list(name, version).items():
                    click.echo(f"Model {model} @ {model_version}")
                    for endpoint in endpoints:
                        click.echo(f"\t{endpoint.url}")
                return
            if mode == "STATUS":
                print_statuses(client, name, version)
                return
            if local_model_path is not None:
                assert hdfs_model_path is not None
                store_uri, path, result = upload_with_progress(client, local_model_path, hdfs_model_path, force)
                if result.changed:
                    click.echo(f"Uploaded {local_model_path} to {store_uri}{path} (sha256 {result.digest[:12]})")
                else:
                    click.echo(f"{store_uri}{path} already holds this payload (sha256 {result.digest[:12]})")
            assert name is not None and version is not None
            request_id = client.submit(
                mode, name, version, num_instances=num_instances, memory=memory, path=hdfs_model_path
            )
            click.echo(f"Request {request_id}: {mode} {num_instances} x {name} @ {version} queued")
            if wait:
                status = client.wait(request_id, timeout)
                click.echo(f"Request {request_id}: {status.state.value}")
    except MaasError as exc:
        click.echo(f"maas_deploy: {exc}", err=True)
        sys.exit(exc.exit_code)


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


def print_statuses(client: DeployClient, name: str | None, version: str | None) -> None:
    rows = [("MODEL", "VERSION", "DESIRED", "RUNNING", "READY", "RESTARTS", "LAST ERROR")]
    for st in client.model_statuses():
        if (name and st.name != name) or (version and st.version != version):
            continue
        error = st.last_error or ""
        if st.last_logs:
            error = f"{error} [logs: {st.last_logs}]"
        if st.backoff_seconds:
            error = f"[next start in {st.backoff_seconds:.0f}s] {error}"
        rows.append((st.name, st.version, str(st.desired), str(st.running), str(st.ready), str(st.restarts), error))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


if __name__ == "__main__":
    main()
