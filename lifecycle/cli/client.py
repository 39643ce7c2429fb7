"""``maas_model``: the command-line client of the lifecycle service's HTTP API (docs/lifecycle.md).

Global options: ``--url`` (env ``MAAS_LIFECYCLE_URL``, default ``http://127.0.0.1:8480``), the
token from ``MAAS_TOKEN`` (or ``--token``, which shows in ``ps``: prefer the variable), ``--json``
to print the service's JSON for scripts (readable tables otherwise), ``--timeout``.

Exit codes, in the style of ``maas_deploy`` (those of :mod:`lifecycle.errors`):

====  =============================================================================
0     success
1     an unexpected error
2     a usage error, or input the service refused (400/413/422; the field is printed)
3     not authenticated (401) or the right is missing (403; the right is printed)
4     not found (404)
5     a conflict: a guard of the status machine, a name taken (409; the reason is printed)
6     the service (or its database or store) cannot be reached (503, connection refused)
7     a waited-for job ended ``failed`` or ``cancelled`` (its error is printed)
8     ``--wait`` timed out
====  =============================================================================
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import click

from lifecycle.cli.api_client import DEFAULT_URL, ApiClient
from lifecycle.errors import JobFailed, LifecycleError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
WAIT_TIMED_OUT = 8
FINAL_JOB_STATES = ("done", "failed", "cancelled")


class Ctx:
    def __init__(self, url: str, token: str | None, as_json: bool, timeout: float) -> None:
        self.url, self.token, self.as_json, self.timeout = url, token, as_json, timeout
        self._client: ApiClient | None = None

    @property
    def api(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.url, self.token, timeout=self.timeout)
        return self._client


pass_ctx = click.make_pass_decorator(Ctx)


# -- output --------------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else _cell(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as an aligned text table; ``columns`` are (key, heading)."""
    cells = [[_cell(r.get(k)) for k, _h in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_k, h) in enumerate(columns)]
    lines = ["  ".join(h.upper().ljust(w) for (_k, h), w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def fields(obj: dict[str, Any], keys: Iterable[str]) -> str:
    present = [k for k in keys if k in obj]
    width = max((len(k) for k in present), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(obj[k])}" for k in present)


def emit(ctx: Ctx, data: Any, human: Callable[[Any], str]) -> None:
    if ctx.as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        text = human(data)
        if text:
            click.echo(text)


MODEL_COLUMNS = [("name", "name"), ("status", "status"), ("asset", "asset"), ("origin", "origin"),
                 ("revision", "rev"), ("element_count", "elements"), ("updated", "updated")]
ELEMENT_COLUMNS = [("name", "element"), ("kind", "kind"), ("training_status", "training"), ("inputs", "inputs"),
                   ("outputs", "outputs"), ("window", "window"), ("revision", "rev")]


def show_model(m: dict[str, Any]) -> str:
    head = fields(m, ["name", "status", "asset", "description", "origin", "origin_source", "revision",
                      "inference_markups", "sha256", "definition_sha256", "created_by", "created", "prepared_by",
                      "prepared", "published_by", "published"])
    elements = m.get("elements") or []
    return head + ("\n\n" + table(elements, ELEMENT_COLUMNS) if elements else "\n\n(no elements)")


def show_job(j: dict[str, Any]) -> str:
    text = fields(j, ["id", "kind", "model", "state", "created_by", "created_at", "started_at", "ended_at",
                      "attempts", "error"])
    progress = j.get("progress") or {}
    if progress.get("element"):
        text += f"\nprogress    {progress.get('element')} epoch {progress.get('epoch')}/{progress.get('max_epochs')}" \
                f" ({100 * float(progress.get('fraction') or 0):.0f}%)"
    for name, res in sorted((progress.get("results") or (j.get("result") or {}).get("results") or {}).items()):
        text += f"\n  {name}: {_cell(res.get('state'))}" + (f" — {res['error']}" if res.get("error") else "")
        summary = [f"{label} {_number(res[key])}" for key, label in TRAINING_SUMMARY if res.get(key) is not None]
        if summary:
            text += " (" + ", ".join(summary) + ")"
    return text


#: What the summary of a trained element shows, from its entry in a train job's results.
TRAINING_SUMMARY = [("epochs", "epochs"), ("best_validation_loss", "best validation loss"),
                    ("threshold", "threshold")]


def progress_bar(job: dict[str, Any], width: int = 30) -> str:
    """One line for a running job: a bar of its ``fraction`` and where it is (element, epoch, loss)."""
    progress = job.get("progress") or {}
    fraction = min(1.0, max(0.0, float(progress.get("fraction") or 0)))
    filled = round(fraction * width)
    where = " ".join(str(x) for x in (progress.get("element"),) if x)
    if progress.get("epoch") is not None:
        where += f" epoch {progress['epoch']}/{progress.get('max_epochs') or '?'}"
    if progress.get("validation_loss") is not None:
        where += f" val loss {_number(progress['validation_loss'])}"
    return f"[{'#' * filled}{'-' * (width - filled)}] {100 * fraction:3.0f}% {job['state']} {where}".rstrip()


# -- the group -----------------------------------------------------------------------------------

@click.group(context_settings=CONTEXT)
@click.option("--url", envvar="MAAS_LIFECYCLE_URL", default=DEFAULT_URL, show_default=True,
              help="The lifecycle service [env MAAS_LIFECYCLE_URL]")
@click.option("--token", envvar="MAAS_TOKEN", default=None, help="Bearer token [env MAAS_TOKEN, preferred]")
@click.option("--json", "as_json", is_flag=True, help="Print the service's JSON")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=60.0, show_default=True,
              help="Seconds to wait for one HTTP answer")
@click.pass_context
def cli(click_ctx: click.Context, url: str, token: str | None, as_json: bool, timeout: float) -> None:
    """Manage ML models for anomaly detection on a MaaS lifecycle service."""
    click_ctx.obj = Ctx(url, token, as_json, timeout)


def _json_option(value: str | None, name: str) -> Any:
    """A JSON option value, inline or ``@FILE``."""
    if value is None:
        return None
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from exc


# -- models --------------------------------------------------------------------------------------

@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("--asset", default="", help="Asset path, e.g. plant1/pump7")
@click.option("--description", default="")
@click.option("--inference-markup", "inference_markups", multiple=True, help="A markup of the inference indicator")
@pass_ctx
def create(ctx: Ctx, name: str, asset: str, description: str, inference_markups: tuple[str, ...]) -> None:
    """Create the model NAME (DRAFT)."""
    m = ctx.api.post("/models", {"name": name, "asset": asset, "description": description,
                                 "inference_markups": list(inference_markups)})
    emit(ctx, m, lambda m: f"created model {m['name']} ({m['status']})")


@cli.command("list", context_settings=CONTEXT)
@click.option("--asset", help="Only models of this asset (and below it)")
@click.option("--status", help="Only models with this status")
@pass_ctx
def list_models(ctx: Ctx, asset: str | None, status: str | None) -> None:
    """List models."""
    data = ctx.api.get("/models", asset=asset, status=status)
    emit(ctx, data, lambda d: table(d["models"], MODEL_COLUMNS))


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def show(ctx: Ctx, name: str) -> None:
    """Show a model and its elements."""
    emit(ctx, ctx.api.get(f"/models/{name}"), show_model)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("--asset")
@click.option("--description")
@click.option("--inference-markup", "inference_markups", multiple=True, help="Replaces the inference markups")
@click.option("--no-inference-markups", is_flag=True, help="Remove every inference markup")
@pass_ctx
def edit(ctx: Ctx, name: str, asset: str | None, description: str | None, inference_markups: tuple[str, ...],
         no_inference_markups: bool) -> None:
    """Change a model's asset, description or inference markups."""
    body: dict[str, Any] = {k: v for k, v in (("asset", asset), ("description", description)) if v is not None}
    if inference_markups or no_inference_markups:
        body["inference_markups"] = list(inference_markups)
    if not body:
        raise click.UsageError("nothing to change: give --asset, --description or --inference-markup")
    emit(ctx, ctx.api.patch(f"/models/{name}", body), lambda m: f"model {m['name']}: {m['status']}, revision {m['revision']}")


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def delete(ctx: Ctx, name: str) -> None:
    """Delete a model (not a frozen one)."""
    ctx.api.delete(f"/models/{name}")
    emit(ctx, {"deleted": name}, lambda d: f"deleted model {name}")


def _status_line(verb: str) -> Callable[[dict[str, Any]], str]:
    return lambda m: f"{verb} model {m['name']}: {m['status']}" + (f" (sha256 {m['sha256']})" if m.get("sha256") else "")


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def prepare(ctx: Ctx, name: str) -> None:
    """Prepare for publication: freeze the model and compute its sha256."""
    emit(ctx, ctx.api.post(f"/models/{name}/prepare"), _status_line("prepared"))


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def publish(ctx: Ctx, name: str) -> None:
    """Publish a model READY_FOR_PUBLICATION."""
    emit(ctx, ctx.api.post(f"/models/{name}/publish"), _status_line("published"))


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def activate(ctx: Ctx, name: str) -> None:
    """Activate an imported model (NOT_ACTIVATED → TRAINED)."""
    emit(ctx, ctx.api.post(f"/models/{name}/activate"), _status_line("activated"))


@cli.command(context_settings=CONTEXT)
@click.argument("source")
@click.argument("name")
@click.option("--asset")
@click.option("--description")
@pass_ctx
def clone(ctx: Ctx, source: str, name: str, asset: str | None, description: str | None) -> None:
    """Copy SOURCE as NAME, keeping its training state (editable)."""
    body = {"name": name, "asset": asset, "description": description}
    emit(ctx, ctx.api.post(f"/models/{source}/clone", body), _status_line("cloned into"))


@cli.command(context_settings=CONTEXT)
@click.argument("source")
@click.argument("name")
@click.option("--asset", help="The asset of the new model")
@click.option("--description")
@pass_ctx
def template(ctx: Ctx, source: str, name: str, asset: str | None, description: str | None) -> None:
    """Create NAME from SOURCE used as a template (origin 'template')."""
    body = {"name": name, "asset": asset, "description": description}
    emit(ctx, ctx.api.post(f"/models/{source}/template", body), _status_line("created"))


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: NAME.tar.gz")
@click.option("--format", "fmt", type=click.Choice(["tar.gz", "zip"]), default="tar.gz", show_default=True)
@pass_ctx
def export(ctx: Ctx, name: str, output: Path | None, fmt: str) -> None:
    """Export a trained model with its payloads to an archive."""
    path = output or Path(f"{name}.{fmt}")
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as fh:
            size = ctx.api.download(f"/models/{name}/export", fh, format=fmt)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    emit(ctx, {"model": name, "archive": str(path), "bytes": size}, lambda d: f"exported {name} to {path} ({size} bytes)")


@cli.command("import", context_settings=CONTEXT)
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Import under this name (default: the archive's)")
@click.option("--asset", help="The asset of the imported model")
@pass_ctx
def import_(ctx: Ctx, archive: Path, name: str | None, asset: str | None) -> None:
    """Import a model archive (NOT_ACTIVATED until activated)."""
    m = ctx.api.upload("/models/import", "archive", archive, {"name": name, "asset": asset})
    emit(ctx, m, _status_line("imported"))


# -- elements ------------------------------------------------------------------------------------

@cli.group(context_settings=CONTEXT)
def element() -> None:
    """A model's elements (forecaster, envelope, rule)."""


def _element_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="The element as JSON (the options below override its fields)"),
        click.option("--kind", type=click.Choice(["forecaster", "envelope", "rule"])),
        click.option("--input", "inputs", multiple=True, help="An input tag (repeat)"),
        click.option("--output", "outputs", multiple=True, help="An output tag of a forecaster (repeat)"),
        click.option("--window", type=int, help="Grid points a forecaster reads"),
        click.option("--expression", help="A rule's Stellar expression (params.expression)"),
        click.option("--params", help="params as JSON, or @FILE"),
        click.option("--training", help="training settings as JSON, or @FILE"),
        click.option("--detection", help="detection settings as JSON, or @FILE"),
        click.option("--dataset", help="training.dataset"),
        click.option("--training-markup", "training_markups", multiple=True, help="training.markups (repeat)"),
        click.option("--threshold", type=float, help="detection.threshold"),
    ]):
        fn = decorator(fn)
    return fn


def _element_body(base: dict[str, Any], file: Path | None, kind: str | None, inputs: tuple[str, ...],
                  outputs: tuple[str, ...], window: int | None, expression: str | None, params: str | None,
                  training: str | None, detection: str | None, dataset: str | None,
                  training_markups: tuple[str, ...], threshold: float | None) -> dict[str, Any]:
    body = {k: base[k] for k in ("kind", "inputs", "outputs", "window", "params", "training", "detection") if k in base}
    if file is not None:
        body.update(_json_option("@" + str(file), "--file"))
    if kind:
        body["kind"] = kind
    if inputs:
        body["inputs"] = list(inputs)
    if outputs:
        body["outputs"] = list(outputs)
    if window is not None:
        body["window"] = window
    if params is not None:
        body["params"] = _json_option(params, "--params")
    if expression is not None:
        body["params"] = {**(body.get("params") or {}), "expression": expression}
    if training is not None:
        body["training"] = _json_option(training, "--training")
    if dataset is not None or training_markups:
        t = dict(body.get("training") or {})
        if dataset is not None:
            t["dataset"] = dataset
        if training_markups:
            t["markups"] = list(training_markups)
        body["training"] = t
    if detection is not None:
        body["detection"] = _json_option(detection, "--detection")
    if threshold is not None:
        body["detection"] = {**(body.get("detection") or {}), "threshold": threshold}
    return body


@element.command("add", context_settings=CONTEXT)
@click.argument("model")
@click.argument("name")
@_element_options
@pass_ctx
def element_add(ctx: Ctx, model: str, name: str, **options: Any) -> None:
    """Add the element NAME to MODEL."""
    body = {"name": name, **_element_body({}, **options)}
    if "kind" not in body:
        raise click.UsageError("give --kind (or a --file with one)")
    e = ctx.api.post(f"/models/{model}/elements", body)
    emit(ctx, e, lambda e: f"added {e['kind']} {e['name']} to {model} ({e['training_status']})")


@element.command("change", context_settings=CONTEXT)
@click.argument("model")
@click.argument("name")
@_element_options
@pass_ctx
def element_change(ctx: Ctx, model: str, name: str, **options: Any) -> None:
    """Change the element NAME of MODEL (what is not given stays as it is)."""
    current = ctx.api.get(f"/models/{model}/elements/{name}")
    body = _element_body(current, **options)
    e = ctx.api.put(f"/models/{model}/elements/{name}", body)
    emit(ctx, e, lambda e: f"changed {e['name']} of {model} ({e['training_status']}, revision {e['revision']})")


@element.command("remove", context_settings=CONTEXT)
@click.argument("model")
@click.argument("name")
@pass_ctx
def element_remove(ctx: Ctx, model: str, name: str) -> None:
    """Remove the element NAME from MODEL."""
    ctx.api.delete(f"/models/{model}/elements/{name}")
    emit(ctx, {"removed": name, "model": model}, lambda d: f"removed {name} from {model}")


@element.command("show", context_settings=CONTEXT)
@click.argument("model")
@click.argument("name")
@pass_ctx
def element_show(ctx: Ctx, model: str, name: str) -> None:
    """Show one element with its settings."""
    emit(ctx, ctx.api.get(f"/models/{model}/elements/{name}"),
         lambda e: fields(e, ["name", "kind", "inputs", "outputs", "window", "training_status", "revision", "params",
                              "training", "detection", "artifact"]))


# -- markups -------------------------------------------------------------------------------------

@cli.group(context_settings=CONTEXT)
def markup() -> None:
    """Markups: named time intervals, optionally narrowed by a condition."""


def _interval(text: str) -> dict[str, str]:
    start, sep, end = text.partition("/")
    if not sep:
        raise click.BadParameter(f"{text!r}: expected FROM/TO (ISO 8601)", param_hint="--interval")
    return {"from": start, "to": end}


def _recurrent(text: str) -> dict[str, Any]:
    """``[DAYS ]HH:MM-HH:MM``, DAYS like ``mon,tue`` (omitted: every day)."""
    days, _, times = text.strip().rpartition(" ")
    start, sep, end = times.partition("-")
    if not sep:
        raise click.BadParameter(f"{text!r}: expected [mon,tue ]HH:MM-HH:MM", param_hint="--recurrent")
    out: dict[str, Any] = {"from_time": start, "to_time": end}
    if days:
        out["days"] = [d.strip().lower() for d in days.split(",") if d.strip()]
    return out


def _markup_body(file: Path | None, description: str | None, intervals: tuple[str, ...], recurrent: tuple[str, ...],
                 condition: str | None, inconclusive_positive: bool | None, grid_step: float | None) -> dict[str, Any]:
    body: dict[str, Any] = _json_option("@" + str(file), "--file") if file else {}
    if description is not None:
        body["description"] = description
    if intervals:
        body["intervals"] = [_interval(i) for i in intervals]
    if recurrent:
        body["recurrent"] = [_recurrent(r) for r in recurrent]
    if condition is not None:
        body["condition"] = condition
    if inconclusive_positive is not None:
        body["inconclusive_positive"] = inconclusive_positive
    if grid_step is not None:
        body["grid_step_s"] = grid_step
    return body


def _markup_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The markup as JSON"),
        click.option("--description"),
        click.option("--interval", "intervals", multiple=True, help="FROM/TO in ISO 8601, UTC (repeat)"),
        click.option("--recurrent", multiple=True, help="'[mon,tue ]HH:MM-HH:MM' in UTC (repeat)"),
        click.option("--condition", help="A Stellar boolean expression over tags"),
        click.option("--inconclusive-positive/--inconclusive-negative", default=None,
                     help="Count points where the condition is inconclusive as in the markup"),
        click.option("--grid-step", type=float, help="grid_step_s"),
    ]):
        fn = decorator(fn)
    return fn


MARKUP_COLUMNS = [("name", "name"), ("revision", "rev"), ("intervals", "intervals"), ("recurrent", "recurrent"),
                  ("condition", "condition"), ("inconclusive_positive", "inconclusive+")]


def _markup_row(m: dict[str, Any]) -> dict[str, Any]:
    return {**m, "intervals": len(m.get("intervals") or []), "recurrent": len(m.get("recurrent") or [])}


@markup.command("create", context_settings=CONTEXT)
@click.argument("name")
@_markup_options
@pass_ctx
def markup_create(ctx: Ctx, name: str, **options: Any) -> None:
    """Create the markup NAME."""
    m = ctx.api.post("/markups", {**_markup_body(**options), "name": name})
    emit(ctx, m, lambda m: f"created markup {m['name']}")


@markup.command("edit", context_settings=CONTEXT)
@click.argument("name")
@_markup_options
@pass_ctx
def markup_edit(ctx: Ctx, name: str, **options: Any) -> None:
    """Change the markup NAME (what is not given stays)."""
    current = ctx.api.get(f"/markups/{name}")
    base = {k: current[k] for k in ("description", "grid_step_s", "intervals", "recurrent", "condition",
                                    "inconclusive_positive") if k in current}
    m = ctx.api.put(f"/markups/{name}", {**base, **_markup_body(**options)})
    emit(ctx, m, lambda m: f"changed markup {m['name']} (revision {m['revision']})")


@markup.command("list", context_settings=CONTEXT)
@pass_ctx
def markup_list(ctx: Ctx) -> None:
    """List markups."""
    emit(ctx, ctx.api.get("/markups"), lambda d: table([_markup_row(m) for m in d["markups"]], MARKUP_COLUMNS))


@markup.command("show", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def markup_show(ctx: Ctx, name: str) -> None:
    """Show a markup."""
    emit(ctx, ctx.api.get(f"/markups/{name}"),
         lambda m: fields(m, ["name", "description", "revision", "grid_step_s", "intervals", "recurrent", "condition",
                              "inconclusive_positive", "frozen_by", "created_by", "updated"]))


@markup.command("delete", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def markup_delete(ctx: Ctx, name: str) -> None:
    """Delete a markup no model uses."""
    ctx.api.delete(f"/markups/{name}")
    emit(ctx, {"deleted": name}, lambda d: f"deleted markup {name}")


@markup.command("mask", context_settings=CONTEXT)
@click.argument("name")
@click.option("--dataset", required=True)
@click.option("--from", "start", help="ISO 8601")
@click.option("--to", "end", help="ISO 8601")
@click.option("--grid-step", type=float, help="Grid step in seconds (default: the markup's or the dataset's)")
@pass_ctx
def markup_mask(ctx: Ctx, name: str, dataset: str, start: str | None, end: str | None, grid_step: float | None) -> None:
    """Evaluate a markup over a dataset: its intervals and point count."""
    data = ctx.api.get(f"/markups/{name}/mask", dataset=dataset, **{"from": start, "to": end, "grid_step_s": grid_step})

    def human(d: dict[str, Any]) -> str:
        head = fields(d, ["markup", "dataset", "grid_step_s", "points", "grid_points", "inconclusive_points",
                          "missing_tags"])
        return head + "\n\n" + table(d.get("intervals") or [], [("from", "from"), ("to", "to")])

    emit(ctx, data, human)


# -- datasets ------------------------------------------------------------------------------------

@cli.group(context_settings=CONTEXT)
def dataset() -> None:
    """Datasets: telemetry tables uploaded once."""


@dataset.command("upload", context_settings=CONTEXT)
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--time-column", help="The timestamp column (default: found by name)")
@click.option("--grid-step", type=float, help="The dataset's grid step in seconds")
@pass_ctx
def dataset_upload(ctx: Ctx, name: str, file: Path, time_column: str | None, grid_step: float | None) -> None:
    """Upload FILE (CSV or Parquet) as the dataset NAME."""
    d = ctx.api.upload("/datasets", "file", file, {"name": name, "time_column": time_column, "grid_step_s": grid_step})
    emit(ctx, d, lambda d: f"uploaded dataset {d['name']}: {d.get('rows')} rows, {len(d.get('tags') or [])} tags, "
                           f"{d.get('start')} → {d.get('end')}")


DATASET_COLUMNS = [("name", "name"), ("rows", "rows"), ("tags", "tags"), ("start", "start"), ("end", "end")]


@dataset.command("list", context_settings=CONTEXT)
@pass_ctx
def dataset_list(ctx: Ctx) -> None:
    """List datasets."""
    emit(ctx, ctx.api.get("/datasets"), lambda d: table(
        [{**x, "tags": len(x.get("tags") or [])} for x in d["datasets"]], DATASET_COLUMNS))


@dataset.command("show", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def dataset_show(ctx: Ctx, name: str) -> None:
    """Describe a dataset."""
    emit(ctx, ctx.api.get(f"/datasets/{name}"), lambda d: fields(d, list(d)))


# -- training and jobs ---------------------------------------------------------------------------

def wait_for_job(ctx: Ctx, job: dict[str, Any], timeout: float, interval: float = 0.5) -> dict[str, Any]:
    """Poll the job until it ends; JobFailed when it failed or was cancelled, exit 8 on time-out."""
    deadline = time.monotonic() + timeout
    last = ""
    while job["state"] not in FINAL_JOB_STATES:
        if time.monotonic() > deadline:
            click.echo(f"maas_model: job {job['id']} is still {job['state']} after {timeout:g} s", err=True)
            sys.exit(WAIT_TIMED_OUT)
        time.sleep(interval)
        job = ctx.api.get(f"/jobs/{job['id']}")
        line = progress_bar(job)
        if line != last and not ctx.as_json and sys.stderr.isatty():
            click.echo(f"\rjob {job['id']}: {line}\033[K", err=True, nl=False)
            last = line
    if last:
        click.echo("", err=True)
    if job["state"] != "done":
        emit(ctx, job, show_job)
        raise JobFailed(f"job {job['id']} {job['state']}: {job.get('error') or 'no reason given'}")
    return job


@cli.command(context_settings=CONTEXT)
@click.argument("model")
@click.option("--element", "elements", multiple=True, help="Train only these elements (default: every untrained one)")
@click.option("--wait/--no-wait", default=False, help="Wait for the job to end")
@click.option("--wait-timeout", type=float, default=3600.0, show_default=True, help="Seconds --wait waits")
@pass_ctx
def train(ctx: Ctx, model: str, elements: tuple[str, ...], wait: bool, wait_timeout: float) -> None:
    """Queue the training of a model's elements."""
    job = ctx.api.post(f"/models/{model}/train", {"elements": list(elements) or None})
    if not wait:
        emit(ctx, job, lambda j: f"job {j['id']}: train {model} {j['state']}")
        return
    job = wait_for_job(ctx, job, wait_timeout)
    status = ctx.api.get(f"/models/{model}")["status"]
    emit(ctx, job, lambda j: show_job(j) + f"\nmodel {model}: {status}")


@cli.command(context_settings=CONTEXT)
@click.argument("model")
@click.option("--dataset", required=True, help="Run historical inference over this dataset")
@click.option("--from", "start", required=True, help="ISO 8601, inclusive")
@click.option("--to", "end", required=True, help="ISO 8601, exclusive")
@click.option("--wait/--no-wait", default=False, help="Wait for the job to end")
@click.option("--wait-timeout", type=float, default=3600.0, show_default=True)
@pass_ctx
def infer(ctx: Ctx, model: str, dataset: str, start: str, end: str, wait: bool, wait_timeout: float) -> None:
    """Queue historical inference of MODEL over a dataset's [from, to) (registers incidents)."""
    job = ctx.api.post(f"/models/{model}/inference", {"mode": "historical", "dataset": dataset, "from": start,
                                                      "to": end})
    if wait:
        job = wait_for_job(ctx, job, wait_timeout)
    emit(ctx, job, lambda j: f"job {j['id']}: inference of {model} {j['state']}")


@cli.command("infer-stop", context_settings=CONTEXT)
@click.argument("model")
@pass_ctx
def infer_stop(ctx: Ctx, model: str) -> None:
    """Stop MODEL's inference: cancel its inference jobs and remove its instances."""
    emit(ctx, ctx.api.delete(f"/models/{model}/inference"), lambda d: f"stopped inference of {model}")


RESULT_COLUMNS = [("time", "time"), ("element", "element"), ("artifact", "artifact"), ("threshold", "threshold"),
                  ("anomalous", "anomalous")]


@cli.command(context_settings=CONTEXT)
@click.argument("model")
@click.option("--element")
@click.option("--from", "start", help="ISO 8601")
@click.option("--to", "end", help="ISO 8601")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--cursor", help="The 'next' of the previous page")
@pass_ctx
def results(ctx: Ctx, model: str, element: str | None, start: str | None, end: str | None, limit: int,
            cursor: str | None) -> None:
    """Inference results per grid point: artifact, threshold, anomalous."""
    data = ctx.api.get(f"/models/{model}/results", element=element, limit=limit, cursor=cursor,
                       **{"from": start, "to": end})
    emit(ctx, data, lambda d: table(d["points"], RESULT_COLUMNS)
         + (f"\n(more: --cursor {d['next']})" if d.get("next") else ""))


JOB_COLUMNS = [("id", "id"), ("kind", "kind"), ("model", "model"), ("state", "state"), ("created_by", "by"),
               ("created_at", "created"), ("ended_at", "ended"), ("error", "error")]


@cli.command(context_settings=CONTEXT)
@click.argument("job_id", required=False, type=int)
@click.option("--state")
@click.option("--model")
@click.option("--kind")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--wait", is_flag=True, help="With JOB_ID: wait for it to end")
@click.option("--wait-timeout", type=float, default=3600.0, show_default=True)
@pass_ctx
def jobs(ctx: Ctx, job_id: int | None, state: str | None, model: str | None, kind: str | None, limit: int,
         wait: bool, wait_timeout: float) -> None:
    """List jobs, or show (and --wait for) the job JOB_ID."""
    if job_id is None:
        data = ctx.api.get("/jobs", state=state, model=model, kind=kind, limit=limit)
        emit(ctx, data, lambda d: table(d["jobs"], JOB_COLUMNS))
        return
    job = ctx.api.get(f"/jobs/{job_id}")
    if wait:
        job = wait_for_job(ctx, job, wait_timeout)
    emit(ctx, job, show_job)


@cli.command(context_settings=CONTEXT)
@click.argument("job_id", type=int)
@pass_ctx
def cancel(ctx: Ctx, job_id: int) -> None:
    """Cancel a queued or running job."""
    emit(ctx, ctx.api.post(f"/jobs/{job_id}/cancel"), lambda j: f"job {j['id']}: {j['state']}"
         + (" (cancel requested)" if j.get("cancel_requested") and j["state"] == "running" else ""))


# -- audit ---------------------------------------------------------------------------------------

AUDIT_COLUMNS = [("at", "time"), ("actor", "actor"), ("action", "action"), ("object", "object"),
                 ("status_before", "before"), ("status_after", "after"), ("outcome", "outcome")]


@cli.command(context_settings=CONTEXT)
@click.option("--object", "obj", help="Object name (a model, model/element, a markup …)")
@click.option("--type", "object_type", help="Object type (model, element, markup, role, user …)")
@click.option("--actor")
@click.option("--action", help="e.g. models.publish")
@click.option("--outcome", type=click.Choice(["ok", "refused", "failed"]))
@click.option("--from", "start", help="ISO 8601, inclusive")
@click.option("--to", "end", help="ISO 8601, exclusive")
@click.option("--limit", type=click.IntRange(1, 5000), default=500, show_default=True)
@pass_ctx
def audit(ctx: Ctx, obj: str | None, object_type: str | None, actor: str | None, action: str | None,
          outcome: str | None, start: str | None, end: str | None, limit: int) -> None:
    """Query the audit trail ("which models were published on 1 March, and by whom")."""
    data = ctx.api.get("/audit", object=obj, type=object_type, actor=actor, action=action, outcome=outcome,
                       limit=limit, **{"from": start, "to": end})

    def human(d: dict[str, Any]) -> str:
        rows = [{**e, "outcome": e["outcome"] + (f" ({e['detail'].get('reason')})" if e["outcome"] != "ok"
                                                  and e.get("detail") else "")} for e in d["entries"]]
        return table(rows, AUDIT_COLUMNS)

    emit(ctx, data, human)


# -- incidents -----------------------------------------------------------------------------------

INCIDENT_COLUMNS = [("id", "id"), ("model", "model"), ("element", "element"), ("start", "start"), ("end", "end"),
                    ("status", "status"), ("cause", "cause"), ("top", "top tags"), ("production", "prod")]


def _incident_row(i: dict[str, Any]) -> dict[str, Any]:
    return {**i, "end": i.get("end") or "open", "top": [t.get("tag") for t in (i.get("top_tags") or [])[:3]]}


def _incident_filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--model"), click.option("--element"), click.option("--status"),
        click.option("--from", "start", help="Incidents overlapping [from, to), ISO 8601"),
        click.option("--to", "end"),
        click.option("--production/--test", "production", default=None,
                     help="Only incidents of PUBLISHED models / of the others"),
        click.option("--group", type=int, help="Only this group of similar incidents"),
    ]):
        fn = decorator(fn)
    return fn


def _filters(model: str | None, element: str | None, status: str | None, start: str | None, end: str | None,
             production: bool | None, group: int | None) -> dict[str, Any]:
    return {"model": model, "element": element, "status": status, "from": start, "to": end, "group": group,
            "production": None if production is None else str(production).lower()}


@cli.command(context_settings=CONTEXT)
@_incident_filters
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@pass_ctx
def incidents(ctx: Ctx, limit: int, **filters: Any) -> None:
    """List incidents, newest first."""
    data = ctx.api.get("/incidents", limit=limit, **_filters(**filters))
    emit(ctx, data, lambda d: table([_incident_row(i) for i in d["incidents"]], INCIDENT_COLUMNS))


@cli.group(context_settings=CONTEXT)
def incident() -> None:
    """One incident: show, triage, export; the statuses an incident may have."""


@incident.command("show", context_settings=CONTEXT)
@click.argument("incident_id", type=int)
@pass_ctx
def incident_show(ctx: Ctx, incident_id: int) -> None:
    emit(ctx, ctx.api.get(f"/incidents/{incident_id}"), lambda i: fields(i, list(i)))


@incident.command("triage", context_settings=CONTEXT)
@click.argument("incident_id", type=int)
@click.option("--status")
@click.option("--cause")
@click.option("--opinion", help="The expert's opinion")
@click.option("--note")
@pass_ctx
def incident_triage(ctx: Ctx, incident_id: int, status: str | None, cause: str | None, opinion: str | None,
                    note: str | None) -> None:
    """Set an incident's status, cause, opinion or note (the right 'incidents.edit')."""
    body = {k: v for k, v in (("status", status), ("cause", cause), ("opinion", opinion), ("note", note))
            if v is not None}
    if not body:
        raise click.UsageError("nothing to change: give --status, --cause, --opinion or --note")
    emit(ctx, ctx.api.patch(f"/incidents/{incident_id}", body),
         lambda i: f"incident {i['id']}: {i['status']}" + (f", cause {i['cause']}" if i.get("cause") else ""))


@incident.command("export", context_settings=CONTEXT)
@_incident_filters
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: incidents.FORMAT")
@pass_ctx
def incident_export(ctx: Ctx, fmt: str, output: Path | None, **filters: Any) -> None:
    """Write every matching incident to a CSV or JSON file."""
    path = output or Path(f"incidents.{fmt}")
    params = {k: v for k, v in _filters(**filters).items() if v is not None}
    with open(path, "wb") as fh:
        size = ctx.api.download("/incidents/export", fh, format=fmt, **params)
    emit(ctx, {"file": str(path), "bytes": size}, lambda d: f"wrote {path} ({size} bytes)")


@incident.command("statuses", context_settings=CONTEXT)
@pass_ctx
def incident_statuses(ctx: Ctx) -> None:
    """The statuses an incident may have."""
    emit(ctx, ctx.api.get("/incident-statuses"), lambda d: table(
        d["statuses"], [("name", "status"), ("builtin", "built-in"), ("created_by", "added by")]))


@incident.command("add-status", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def incident_add_status(ctx: Ctx, name: str) -> None:
    """Add an incident status (the right 'admin')."""
    emit(ctx, ctx.api.post("/incident-statuses", {"name": name}), lambda d: f"added incident status {name}")


@incident.command("remove-status", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def incident_remove_status(ctx: Ctx, name: str) -> None:
    """Remove an added incident status no incident uses (the right 'admin')."""
    ctx.api.delete(f"/incident-statuses/{name}")
    emit(ctx, {"removed": name}, lambda d: f"removed incident status {name}")


# -- users and roles -----------------------------------------------------------------------------

@cli.command(context_settings=CONTEXT)
@pass_ctx
def whoami(ctx: Ctx) -> None:
    """Who the token belongs to, and its rights."""
    emit(ctx, ctx.api.get("/whoami"), lambda d: fields(d, ["name", "rights", "token"]))


@cli.group(context_settings=CONTEXT)
def user() -> None:
    """Users and their tokens (the right 'admin')."""


USER_COLUMNS = [("name", "name"), ("roles", "roles"), ("active", "active"), ("rights", "rights")]


@user.command("list", context_settings=CONTEXT)
@pass_ctx
def user_list(ctx: Ctx) -> None:
    emit(ctx, ctx.api.get("/users"), lambda d: table(d["users"], USER_COLUMNS))


@user.command("create", context_settings=CONTEXT)
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="A role (repeat)")
@pass_ctx
def user_create(ctx: Ctx, name: str, roles: tuple[str, ...]) -> None:
    """Create a user; its token is printed once."""
    u = ctx.api.post("/users", {"name": name, "roles": list(roles)})
    emit(ctx, u, lambda u: f"created user {u['name']} (roles: {_cell(u['roles'])})\ntoken (shown only now):\n{u['token']}")


@user.command("show", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def user_show(ctx: Ctx, name: str) -> None:
    u = ctx.api.get(f"/users/{name}")
    tokens = ctx.api.get(f"/users/{name}/tokens")["tokens"]
    emit(ctx, {**u, "tokens": tokens}, lambda u: fields(u, ["name", "roles", "active", "rights"]) + "\n\n" + table(
        tokens, [("id", "token"), ("description", "description"), ("created", "created"), ("revoked", "revoked")]))


@user.command("edit", context_settings=CONTEXT)
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="Replaces the user's roles (repeat)")
@click.option("--no-roles", is_flag=True)
@click.option("--active/--inactive", default=None)
@pass_ctx
def user_edit(ctx: Ctx, name: str, roles: tuple[str, ...], no_roles: bool, active: bool | None) -> None:
    body: dict[str, Any] = {}
    if roles or no_roles:
        body["roles"] = list(roles)
    if active is not None:
        body["active"] = active
    if not body:
        raise click.UsageError("nothing to change: give --role, --no-roles or --active/--inactive")
    emit(ctx, ctx.api.patch(f"/users/{name}", body), lambda u: fields(u, ["name", "roles", "active", "rights"]))


@user.command("delete", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def user_delete(ctx: Ctx, name: str) -> None:
    ctx.api.delete(f"/users/{name}")
    emit(ctx, {"deleted": name}, lambda d: f"deleted user {name}")


@user.command("token", context_settings=CONTEXT)
@click.argument("name")
@click.option("--description", default="", help="What the token is for")
@pass_ctx
def user_token(ctx: Ctx, name: str, description: str) -> None:
    """Issue a new token for NAME (printed once)."""
    t = ctx.api.post(f"/users/{name}/tokens", {"description": description})
    emit(ctx, t, lambda t: f"token {t['id']} of {name} (shown only now):\n{t['token']}")


@user.command("revoke", context_settings=CONTEXT)
@click.argument("token_id")
@pass_ctx
def user_revoke(ctx: Ctx, token_id: str) -> None:
    """Revoke the token with the public id TOKEN_ID."""
    t = ctx.api.delete(f"/tokens/{token_id}")
    emit(ctx, t, lambda t: f"revoked token {t['id']} of {t['user']}")


@cli.group(context_settings=CONTEXT)
def role() -> None:
    """Roles: named sets of rights (the right 'admin')."""


ROLE_COLUMNS = [("name", "name"), ("active", "active"), ("builtin", "built-in"), ("rights", "rights")]


@role.command("list", context_settings=CONTEXT)
@pass_ctx
def role_list(ctx: Ctx) -> None:
    emit(ctx, ctx.api.get("/roles"), lambda d: table(d["roles"], ROLE_COLUMNS))


@role.command("show", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def role_show(ctx: Ctx, name: str) -> None:
    emit(ctx, ctx.api.get(f"/roles/{name}"), lambda r: fields(r, ["name", "active", "builtin", "rights"]))


@role.command("create", context_settings=CONTEXT)
@click.argument("name")
@click.option("--right", "rights", multiple=True, help="A right (repeat)")
@click.option("--inactive", is_flag=True, help="Create it inactive (it grants nothing)")
@pass_ctx
def role_create(ctx: Ctx, name: str, rights: tuple[str, ...], inactive: bool) -> None:
    r = ctx.api.post("/roles", {"name": name, "rights": list(rights), "active": not inactive})
    emit(ctx, r, lambda r: f"created role {r['name']}: {_cell(r['rights'])}")


@role.command("edit", context_settings=CONTEXT)
@click.argument("name")
@click.option("--right", "rights", multiple=True, help="Replaces the role's rights (repeat)")
@click.option("--no-rights", is_flag=True)
@click.option("--active/--inactive", default=None)
@pass_ctx
def role_edit(ctx: Ctx, name: str, rights: tuple[str, ...], no_rights: bool, active: bool | None) -> None:
    body: dict[str, Any] = {}
    if rights or no_rights:
        body["rights"] = list(rights)
    if active is not None:
        body["active"] = active
    if not body:
        raise click.UsageError("nothing to change: give --right, --no-rights or --active/--inactive")
    emit(ctx, ctx.api.patch(f"/roles/{name}", body), lambda r: fields(r, ["name", "active", "rights"]))


@role.command("delete", context_settings=CONTEXT)
@click.argument("name")
@pass_ctx
def role_delete(ctx: Ctx, name: str) -> None:
    ctx.api.delete(f"/roles/{name}")
    emit(ctx, {"deleted": name}, lambda d: f"deleted role {name}")


from lifecycle.cli import stream as _stream  # noqa: E402,F401  (registers maas_model stream)


def run(args: list[str] | None = None) -> int:
    """Run the CLI; errors of the service become a message on stderr and the exit code."""
    try:
        cli.main(args=args, prog_name="maas_model", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except LifecycleError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        right = getattr(exc, "right", "")
        click.echo(f"maas_model: {exc.message}{where}" + (f" (right: {right})" if right and right not in exc.message
                                                            else ""), err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"maas_model: {exc}", err=True)
        return 1
    return 0


def main() -> None:
    """The ``maas_model`` console script."""
    sys.exit(run())


if __name__ == "__main__":
    main()
