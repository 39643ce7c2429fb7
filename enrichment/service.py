"""Running the pipeline as a process: settings, the model connection, inputs and outputs.

:func:`run` is what ``maas_enrich`` does once its options are parsed: load and compile the config,
connect to ZooKeeper (when a quorum is given) and build the discovery client and model gateway,
open the outputs, then feed batches of input lines through :class:`EnrichmentPipeline` until the
input ends — or, with ``follow``, until ``stop`` is set (SIGTERM/SIGINT in the command) — and close
everything. Lines already read when it stops are still enriched and written.
"""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, TextIO

from kazoo.client import KazooClient

from maas.config import DEFAULT_CONFIG_PATH
from maas.discovery import DiscoveryClient
from maas.zk import connect, read_config
from enrichment.config import EnrichmentConfig, load_config
from enrichment.pipeline import EnrichmentPipeline, PipelineStats
from enrichment.sources import LineReader, batches
from enrichment.gateway import GatewaySettings, MaasGateway
from stellar_like.context import Context
from stellar_like.enrichment_store import SqliteEnrichmentStore

__all__ = ["EnrichSettings", "ModelConnection", "connect_models", "run"]

log = logging.getLogger("enrichment")

STD = "-"


@dataclass(frozen=True)
class EnrichSettings:
    """Everything ``maas_enrich`` takes (see its ``--help``)."""

    config: Path
    zk_quorum: str | None = None
    zk_root: str = DEFAULT_CONFIG_PATH
    inputs: tuple[str, ...] = (STD,)
    follow: bool = False
    output: str = STD  # "-": stdout; a path: appended to
    errors: str = STD  # "-": stderr; a path: appended to
    batch_size: int = 100
    linger_ms: float = 50.0
    in_flight: int = 1  # batches processed at once (one evaluated while another waits for models)
    poll_interval: float = 0.25
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    discovery_timeout: float = 15.0
    enrichment_store: Path | None = None  # the SQLite store ENRICHMENT_GET reads; None: none configured


class ModelConnection:
    """A ZooKeeper client, the discovery client on the cluster's service root, and the gateway."""

    def __init__(self, client: KazooClient, discovery: DiscoveryClient, gateway: MaasGateway) -> None:
        self.client = client
        self.discovery = discovery
        self.gateway = gateway

    def close(self) -> None:
        self.gateway.close()
        self.discovery.close()
        self.client.stop()
        self.client.close()


def connect_models(quorum: str, zk_root: str = DEFAULT_CONFIG_PATH, settings: GatewaySettings | None = None,
                   *, timeout: float = 15.0) -> ModelConnection:
    """Connect to ZooKeeper, read the config znode and follow its service root; raises
    :class:`maas.errors.MaasError` when ZooKeeper cannot be reached or the cache not loaded."""
    client = connect(quorum, timeout=timeout)
    try:
        config = read_config(client, zk_root)
        discovery = DiscoveryClient(client, config.service_root)
        try:
            discovery.wait_ready(timeout)
        except BaseException:
            discovery.close()
            raise
    except BaseException:
        client.stop()
        client.close()
        raise
    return ModelConnection(client, discovery, MaasGateway(discovery, settings or GatewaySettings()))


def run(settings: EnrichSettings, *, config: EnrichmentConfig | None = None, stop: threading.Event | None = None,
        stdin: BinaryIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> PipelineStats:
    """Enrich the inputs of ``settings`` into its outputs; returns the counters.

    Raises :class:`~enrichment.config.ConfigError` for a bad config, ValueError for bad
    inputs and :class:`maas.errors.MaasError` when ZooKeeper cannot be reached — all before any
    line is read.
    """
    config = config or load_config(settings.config)
    if config.calls_models and not settings.zk_quorum:
        raise ValueError("the config calls models (MAAS_GET_ENDPOINT / MAAS_MODEL_APPLY): give --zk-quorum")
    stop = stop or threading.Event()
    reader = LineReader(settings.inputs, follow=settings.follow, poll_interval=settings.poll_interval,
                        stop=stop, stdin=stdin)
    with ExitStack() as stack:
        gateway = None
        if settings.zk_quorum:
            connection = connect_models(settings.zk_quorum, settings.zk_root, settings.gateway,
                                        timeout=settings.discovery_timeout)
            stack.callback(connection.close)
            gateway = connection.gateway
        out = _open(stack, settings.output, stdout or sys.stdout)
        err = _open(stack, settings.errors, stderr or sys.stderr)
        services = {} if settings.enrichment_store is None else {
            "enrichment_store": SqliteEnrichmentStore(settings.enrichment_store)}
        pipeline = EnrichmentPipeline(config, gateway, context=Context(**services),
                                      batch_calls=settings.batch_size > 1)

        def flush() -> None:
            out.flush()
            err.flush()

        stats = pipeline.run(
            batches(reader, settings.batch_size, settings.linger_ms / 1000.0, stop=stop),
            lambda text: out.write(text + "\n"),
            lambda text: err.write(text + "\n"),
            flush,
            in_flight=settings.in_flight,
        )
        missing: dict[str, int] = {}
        if gateway is not None:
            stats.extra.update(gateway.stats)
            missing = dict(gateway.missing)
            stats.extra["no_endpoint_models"] = missing
        summary = (f"{stats.lines} lines: {stats.enriched} enriched, {stats.errors} errors; {stats.batches} batches, "
                   f"{stats.model_requests} model requests for {stats.model_calls} calls")
        if missing:  # worth a warning: those fields are null
            log.warning("%s; models with no endpoint (lookups): %s", summary,
                        ", ".join(f"{model} ({count})" for model, count in sorted(missing.items())))
        else:
            log.info("%s", summary)
        return stats


def _open(stack: ExitStack, target: str, default: TextIO) -> IO[str]:
    if target == STD:
        return default
    path = Path(target)
    if path.parent and not path.parent.exists():
        raise ValueError(f"cannot write {target}: directory {path.parent} does not exist")
    return stack.enter_context(open(path, "a", encoding="utf-8"))
