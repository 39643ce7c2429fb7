"""``maas_enrich``: enrich a stream of JSON events with Stellar expressions and deployed models.

::

    maas_enrich --config examples/dga/enrichment.json -zq 127.0.0.1:2181 \\
                --input examples/dga/events.jsonl --output enriched.jsonl --errors errors.jsonl

Reads one JSON event per line from stdin (``--input -``, the default), files or directories
(``--follow``: keep tailing them), applies the config's fields in order and writes enriched events
as JSON lines to ``--output`` (stdout by default); malformed events and events an expression failed
on go to ``--errors`` (stderr by default) with the reason and the original line. Model calls of up to
``--batch-size`` events, gathered for at most ``--linger-ms``, are sent as one batched request per
model; ``--batch-size 1`` makes every call on its own. docs/enrichment.md has the details.

Exit status: 0 when the input is done (or after SIGTERM/SIGINT: the lines already read are
enriched and written first; a second signal exits at once with 130), 2 for a bad config or bad
options (before anything is read), 6 when ZooKeeper cannot be reached (as for every MaaS command).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from maas.clitypes import QUORUM
from maas.config import DEFAULT_CONFIG_PATH
from maas.errors import MaasError
from enrichment.config import ConfigError, load_config
from enrichment.service import EnrichSettings, run
from enrichment.gateway import GatewaySettings

USAGE_EXIT = 2


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Enrichment config (JSON): {'enrichments': {field: expr}} or Metron's sensor enrichment config")
@click.option("-zq", "--zk-quorum", "--zk_quorum", "zk_quorum", type=QUORUM, help="ZooKeeper quorum host:port[,…][/chroot]")
@click.option("-zr", "--zk-root", "--zk_root", "zk_root", default=DEFAULT_CONFIG_PATH, show_default=True,
              help="Config znode of the MaaS cluster")
@click.option("-i", "--input", "inputs", multiple=True, default=("-",), show_default=True,
              help="File, directory (its files, by name) or - for stdin; repeatable")
@click.option("-f", "--follow", is_flag=True, help="Keep reading what is appended to the inputs (and new files in "
              "input directories) until SIGTERM/SIGINT")
@click.option("-o", "--output", default="-", show_default=True, help="Enriched events: a file (appended to) or - for stdout")
@click.option("-e", "--errors", default="-", show_default=True,
              help="Error records: a file (appended to) or - for stderr")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True,
              help="Events per batch; their model calls go as one request per model (1: no batching)")
@click.option("--linger-ms", type=click.FloatRange(min=0), default=50.0, show_default=True,
              help="Longest wait for a batch to fill after its first event arrived")
@click.option("--in-flight", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batches processed at once, for distant models: the next batch is evaluated while one "
              "waits for its models (output order is kept)")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=0.25, show_default=True,
              help="Seconds between looks for new lines with --follow")
@click.option("--model-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds per HTTP call to a model")
@click.option("--cache-size", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="Model results kept for reuse (0: no cache)")
@click.option("--cache-ttl", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds a model result is reused")
@click.option("--zk-timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True,
              help="Seconds to connect to ZooKeeper and load the endpoint cache at start")
@click.option("--enrichment-store", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              envvar="MAAS_ENRICHMENT_STORE", show_envvar=True,
              help="SQLite enrichment store (written by maas_flatfile_loader) that ENRICHMENT_GET and "
              "ENRICHMENT_EXISTS read")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(config_path: Path, zk_quorum: str | None, zk_root: str, inputs: tuple[str, ...], follow: bool, output: str,
         errors: str, batch_size: int, linger_ms: float, in_flight: int, poll_interval: float, model_timeout: float,
         cache_size: int, cache_ttl: float, zk_timeout: float, enrichment_store: Path | None, log_level: str) -> None:
    """Enrich JSON events (one per line) with the Stellar expressions of an enrichment config."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"maas_enrich: error: {exc.render()}", err=True)
        sys.exit(USAGE_EXIT)
    for warning in config.warnings:
        click.echo(f"maas_enrich: warning: {warning}", err=True)
    settings = EnrichSettings(
        config=config_path, zk_quorum=zk_quorum, zk_root=zk_root, inputs=inputs, follow=follow, output=output,
        errors=errors, batch_size=batch_size, linger_ms=linger_ms, in_flight=in_flight,
        poll_interval=poll_interval,
        gateway=GatewaySettings(timeout=model_timeout, cache_size=cache_size, cache_ttl=cache_ttl),
        discovery_timeout=zk_timeout, enrichment_store=enrichment_store,
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # asked twice: do not wait for the lines in hand
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        run(settings, config=config, stop=stop)
    except ValueError as exc:
        click.echo(f"maas_enrich: error: {exc}", err=True)
        sys.exit(USAGE_EXIT)
    except MaasError as exc:  # ZooKeeper unreachable: the code every command uses (6)
        click.echo(f"maas_enrich: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # the reader went away (maas_enrich … | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
