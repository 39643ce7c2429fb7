"""``maas_model stream MODEL --input FILE|-``: streaming inference of JSON lines through the service.

Each line is a grid point ``{"time": …, "<tag>": value, …}``. The lines are sent in chunks of
``--batch`` (or what arrived within ``--flush-s``, for MQTT) to ``POST /api/v1/models/{m}/stream`` (which starts the model's stream when it is not
running); every incident event is printed as it comes back (one line, or one JSON object per line
with ``--json``), every refused line is reported on stderr with its line number, the field and the
reason, and the stream goes on. At the end a summary goes to stderr; ``--stop`` then ends the
stream (``DELETE …/inference``). The exit code is 0 even when lines were refused (they are counted).

``--mqtt HOST[:PORT] --topic T`` reads the telemetry from an MQTT topic instead (each message one
or more JSON lines; QoS 1 subscription through paho-mqtt), until ``--max-messages`` messages or
``--idle-s`` seconds without one (default: until interrupted).
"""

from __future__ import annotations

import json
import queue
import sys
import time
from typing import IO, Any, Iterable, Iterator

import click

from lifecycle.cli.client import CONTEXT, Ctx, cli, pass_ctx


#: Marks a time tick in a line source: what is pending is sent.
TICK = None


def _chunks(source: Iterable[str | None], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in source:
        if text is not TICK:
            chunk.append(text.rstrip("\n"))
        if chunk and (text is TICK or len(chunk) >= size):
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _mqtt_lines(address: str, topic: str, *, max_messages: int | None, idle_s: float | None,
                flush_s: float) -> Iterator[str | None]:
    """Lines of the messages of ``topic``, with a TICK every ``flush_s`` seconds."""
    import paho.mqtt.client as mqtt

    host, _, port = address.partition(":")
    messages: "queue.Queue[bytes]" = queue.Queue(maxsize=100_000)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_message = lambda c, u, m: messages.put(m.payload)
    try:
        client.connect(host, int(port or 1883))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"MQTT broker {address}: {exc}") from exc
    client.loop_start()
    try:
        count, last = 0, time.monotonic()
        while max_messages is None or count < max_messages:
            try:
                payload = messages.get(timeout=flush_s)
            except queue.Empty:
                if idle_s is not None and time.monotonic() - last > idle_s:
                    return
                yield TICK
                continue
            count, last = count + 1, time.monotonic()
            yield from payload.decode("utf-8", errors="replace").splitlines()
    finally:
        client.loop_stop()
        client.disconnect()


def _event_line(event: dict[str, Any]) -> str:
    i = event["incident"]
    top = ", ".join(f"{t['tag']}={t['value']}" for t in i.get("top_tags") or [])
    end = f" end {i['end']}" if i.get("end") else ""
    return f"{event['event']:8} {i['model']}/{i['element']} start {i['start']}{end} artifact {i['artifact']:.4g}" \
           f" ≥ {i['threshold']:.4g}" + (f" top {top}" if top else "")


@cli.command(context_settings=CONTEXT)
@click.argument("model")
@click.option("--input", "source", type=click.File("r", encoding="utf-8"), default="-", show_default=True,
              help="JSON lines of telemetry ('-': standard input)")
@click.option("--batch", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Lines sent per request (scored as one micro-batch)")
@click.option("--stop/--keep", default=False, help="End the model's stream when the input ends")
@click.option("--mqtt", "mqtt_address", metavar="HOST[:PORT]", help="Read the telemetry from this MQTT broker")
@click.option("--topic", default=None, help="MQTT topic (default maas/telemetry/<model>)")
@click.option("--max-messages", type=click.IntRange(1), default=None, help="MQTT: stop after this many messages")
@click.option("--idle-s", type=click.FloatRange(0.1), default=None, help="MQTT: stop after this long without one")
@click.option("--flush-s", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="MQTT: send what arrived at least this often")
@pass_ctx
def stream(ctx: Ctx, model: str, source: IO[str], batch: int, stop: bool, mqtt_address: str | None,
           topic: str | None, max_messages: int | None, idle_s: float | None, flush_s: float) -> None:
    """Stream telemetry to MODEL's inference; print incident events, report refused lines."""
    total: dict[str, Any] = {}
    lines: Iterable[str | None] = source
    if mqtt_address:
        lines = _mqtt_lines(mqtt_address, topic or f"maas/telemetry/{model}", max_messages=max_messages,
                            idle_s=idle_s, flush_s=flush_s)
    for chunk in _chunks(lines, batch):
        body = "\n".join(chunk).encode()
        answer = ctx.api.request("POST", f"/models/{model}/stream", content=body,
                                 headers={"Content-Type": "application/x-ndjson"}).json()
        for error in answer["errors"]:
            where = f" [{error['field']}]" if error.get("field") else ""
            click.echo(f"line {error['line']}: {error['error']}{where}", err=True)
        for event in answer["events"]:
            click.echo(json.dumps(event, sort_keys=True) if ctx.as_json else _event_line(event))
        sys.stdout.flush()
        total = answer["total"]
    if total:
        click.echo(f"{model}: {total['lines']} lines, {total['points']} points, {total['bad_lines']} refused, "
                   f"{total['incidents']} incidents", err=True)
    if stop:
        ctx.api.delete(f"/models/{model}/inference")
