"""``maas_flatfile_loader``: load CSV files into the enrichment store that ENRICHMENT_GET reads.

It reads Metron's extractor configuration (the CSV extractor) and Metron's flatfile loader options::

    maas_flatfile_loader -i top-domains.csv -t enrichment -c t -e extractor.json -s enrichment.db

with ``extractor.json`` such as::

    {"config": {"columns": {"rank": 0, "domain": 1}, "indicator_column": "domain",
                "type": "top_domains", "separator": ",",
                "value_transform": {"domain": "DOMAIN_REMOVE_TLD(domain)"},
                "value_filter": "LENGTH(domain) > 0",
                "indicator_transform": {"indicator": "DOMAIN_REMOVE_TLD(indicator)"},
                "indicator_filter": "LENGTH(indicator) > 0"},
     "extractor": "CSV"}

Each line becomes one row keyed by (type, indicator) whose value maps every named column to its
text. Blank lines and lines starting with ``#`` are skipped. The input is checked whole first:
if any line is bad (too few columns, a failing transform), every problem is reported with its
file and line and nothing is written; otherwise all rows are written in one transaction.

Planning (:func:`read_extractor_config`, :func:`extract`) is separate from writing
(:func:`load`), so tests and other tools can use the parts.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson

from stellar_like.enrichment_store import EnrichmentStore, EnrichmentStoreError, SqliteEnrichmentStore
from stellar_like.errors import StellarError
from stellar_like.semantics import java_str, truthy

__all__ = ["ExtractorConfig", "Row", "LoadProblem", "read_extractor_config", "extract", "load", "main"]

EXIT_BAD_INPUT = 2
EXIT_STORE_FAILED = 1


class LoaderError(StellarError):
    """The extractor configuration or the input cannot be used."""


@dataclass(frozen=True)
class ExtractorConfig:
    """Metron's CSV extractor configuration."""

    columns: dict[str, int]
    indicator_column: str
    enrichment_type: str
    separator: str = ","
    value_transform: dict[str, str] = field(default_factory=dict)
    value_filter: str | None = None
    indicator_transform: dict[str, str] = field(default_factory=dict)
    indicator_filter: str | None = None


@dataclass(frozen=True)
class Row:
    enrichment_type: str
    indicator: str
    value: dict[str, Any]


@dataclass(frozen=True)
class LoadProblem:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


def _expressions(config: Mapping[str, Any], key: str) -> dict[str, str]:
    raw = config.get(key) or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise LoaderError(f"extractor config: '{key}' must map names to Stellar expressions")
    return {str(k): v for k, v in raw.items()}


def read_extractor_config(document: Mapping[str, Any]) -> ExtractorConfig:
    """Check and read an extractor configuration document (``{"config": {...}, "extractor": "CSV"}``)."""
    extractor = str(document.get("extractor", "CSV"))
    if extractor.upper() != "CSV":
        raise LoaderError(f"extractor config: only the CSV extractor is supported, not {extractor!r}")
    config = document.get("config")
    if not isinstance(config, Mapping):
        raise LoaderError("extractor config: 'config' must be an object")
    raw_columns = config.get("columns")
    if isinstance(raw_columns, list):
        columns = {str(name): i for i, name in enumerate(raw_columns)}
    elif isinstance(raw_columns, Mapping):
        columns = {}
        for name, position in raw_columns.items():
            if not isinstance(position, int) or isinstance(position, bool) or position < 0:
                raise LoaderError(f"extractor config: column {name!r} needs a position of 0 or more, not {position!r}")
            columns[str(name)] = position
    else:
        raise LoaderError("extractor config: 'columns' must map column names to positions (or list the names)")
    indicator = config.get("indicator_column")
    if indicator not in columns:
        raise LoaderError(
            f"extractor config: 'indicator_column' {indicator!r} is not one of the columns {sorted(columns)}"
        )
    kind = config.get("type")
    if not isinstance(kind, str) or not kind:
        raise LoaderError("extractor config: 'type' (the enrichment type) is required")
    separator = config.get("separator", ",")
    if not isinstance(separator, str) or len(separator) != 1:
        raise LoaderError(f"extractor config: 'separator' must be one character, not {separator!r}")
    parsed = ExtractorConfig(
        columns=columns,
        indicator_column=str(indicator),
        enrichment_type=kind,
        separator=separator,
        value_transform=_expressions(config, "value_transform"),
        value_filter=config.get("value_filter"),
        indicator_transform=_expressions(config, "indicator_transform"),
        indicator_filter=config.get("indicator_filter"),
    )
    _compile_all(parsed)
    return parsed


def _compile_all(config: ExtractorConfig) -> None:
    from stellar_like.evaluator import compile as compile_expression

    texts = [*config.value_transform.values(), *config.indicator_transform.values()]
    texts += [t for t in (config.value_filter, config.indicator_filter) if t]
    for text in texts:
        try:
            compile_expression(text)
        except StellarError as exc:
            raise LoaderError(f"extractor config: {text!r} is not valid Stellar: {exc}") from None


def _apply(config: ExtractorConfig, fields: list[str]) -> Row | None:
    from stellar_like.evaluator import evaluate

    width = max(config.columns.values()) + 1
    if len(fields) < width:
        raise LoaderError(f"has {len(fields)} columns, the extractor config needs {width}")
    value: dict[str, Any] = {name: fields[position] for name, position in config.columns.items()}
    for name, expression in config.value_transform.items():
        value[name] = evaluate(expression, value)
    if config.value_filter and not truthy(evaluate(config.value_filter, value)):
        return None
    variables = {**value, "indicator": fields[config.columns[config.indicator_column]]}
    indicator: Any = variables["indicator"]
    for name, expression in config.indicator_transform.items():
        variables[name] = evaluate(expression, variables)
        if name == "indicator":
            indicator = variables[name]
    if config.indicator_filter and not truthy(evaluate(config.indicator_filter, variables)):
        return None
    if indicator is None:
        raise LoaderError("has a null indicator")
    return Row(config.enrichment_type, indicator if isinstance(indicator, str) else java_str(indicator), value)


def extract(config: ExtractorConfig, source: str, lines: Iterable[str]) -> tuple[list[Row], list[LoadProblem]]:
    """The rows of one input, and the problems of its bad lines (rows are only good lines)."""
    rows: list[Row] = []
    problems: list[LoadProblem] = []
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader(io.StringIO(text), delimiter=config.separator))
            row = _apply(config, [f.strip() for f in fields])
        except (LoaderError, StellarError, csv.Error) as exc:
            problems.append(LoadProblem(source, number, str(exc)))
            continue
        if row is not None:
            rows.append(row)
    return rows, problems


def _inputs(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    else:
        yield path


def load(
    store: EnrichmentStore, table: str, column_family: str, config: ExtractorConfig, inputs: Iterable[Path]
) -> tuple[int, list[LoadProblem]]:
    """Extract every input; write all rows in one go if no line is bad. Returns (rows written, problems)."""
    rows: list[Row] = []
    problems: list[LoadProblem] = []
    for root in inputs:
        for path in _inputs(root):
            try:
                with path.open(encoding="utf-8", newline="") as handle:
                    found, bad = extract(config, str(path), handle)
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(LoadProblem(str(path), 0, f"cannot be read: {exc}"))
                continue
            rows.extend(found)
            problems.extend(bad)
    if problems:
        return 0, problems
    written = store.put_many(table, column_family, ((r.enrichment_type, r.indicator, r.value) for r in rows))
    return written, []


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A CSV file, or a directory whose files are loaded recursively (repeatable).",
)
@click.option(
    "-e",
    "--extractor_config",
    "extractor_config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The JSON extractor configuration (Metron's CSV extractor).",
)
@click.option("-t", "--hbase_table", "--table", "table", required=True, help="The table to load into.")
@click.option(
    "-c", "--hbase_cf", "--column-family", "column_family", required=True, help="The column family to load into."
)
@click.option(
    "-s",
    "--store",
    "store_path",
    envvar="MAAS_ENRICHMENT_STORE",
    default="enrichment.db",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The SQLite enrichment store file (created if missing); or set MAAS_ENRICHMENT_STORE.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def main(
    inputs: tuple[Path, ...], extractor_config: Path, table: str, column_family: str, store_path: Path, quiet: bool
) -> None:
    """Load CSV enrichment data into the enrichment store read by ENRICHMENT_GET and ENRICHMENT_EXISTS."""
    try:
        document = orjson.loads(extractor_config.read_bytes())
        if not isinstance(document, dict):
            raise LoaderError("extractor config: the document must be a JSON object")
        config = read_extractor_config(document)
    except (OSError, orjson.JSONDecodeError) as exc:
        click.echo(f"error: cannot read the extractor config {extractor_config}: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except LoaderError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    try:
        store = SqliteEnrichmentStore(store_path)
        written, problems = load(store, table, column_family, config, inputs)
    except EnrichmentStoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STORE_FAILED)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"nothing was loaded: {len(problems)} bad line(s)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if not quiet:
        click.echo(
            f"loaded {written} row(s) of type {config.enrichment_type!r} into {table}:{column_family} in {store_path}"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
