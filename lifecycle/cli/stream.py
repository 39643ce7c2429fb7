"""``maas_model stream MODEL --input FILE|-``: streaming inference of JSON lines through the service.

Each line is a grid point ``{"time": …, "<tag>": value, …}``. The lines are sent in chunks of
``--batch`` to ``POST /api/v1/models/{m}/stream`` (which starts the model's stream when it is not
running); every incident event is printed as it comes back (one line, or one JSON object per line
with ``--json``), every refused line is reported on stderr with its line number, the field and the
reason, and the stream goes on. At the end a summary goes to stderr; ``--stop`` then ends the
stream (``DELETE …/inference``). The exit code is 0 even when lines were refused (they are counted).
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any, Iterator

import click

from lifecycle.cli.client import CONTEXT, Ctx, cli, pass_ctx


def _chunks(source: IO[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in source:
        chunk.append(text.rstrip("\n"))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
@pass_ctx
def stream(ctx: Ctx, model: str, source: IO[str], batch: int, stop: bool) -> None:
    """Stream telemetry to MODEL's inference; print incident events, report refused lines."""
    total: dict[str, Any] = {}
    for chunk in _chunks(source, batch):
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
