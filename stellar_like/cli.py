"""The ``stellar`` command: evaluate an expression, list the functions, describe one.

::

    stellar eval "TO_UPPER(name)" --var name=casey          # prints "CASEY"
    stellar eval "a + b" --vars-json '{"a": 1, "b": 2}'      # prints 3
    stellar functions [SUBSTRING]                           # names with one-line descriptions
    stellar describe DOMAIN_TO_TLD                          # one function's documentation

``eval`` prints the result as JSON. A ``--var`` value is read as JSON when it is valid JSON
(``5``, ``true``, ``[1, 2]``) and as a plain string otherwise. Errors go to stderr with the
position in the expression, and the exit code is 2.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Any

import click

from stellar_like import StellarError, describe_function, evaluate, list_functions

ERROR_EXIT = 2


def _to_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            str(k) if not isinstance(k, (str, int, float, bool)) and k is not None else k: _to_json(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _render(value: Any) -> str:
    data = _to_json(value)
    if isinstance(data, float) and (math.isnan(data) or math.isinf(data)):
        return "NaN" if math.isnan(data) else ("Infinity" if data > 0 else "-Infinity")
    return json.dumps(data, ensure_ascii=False, sort_keys=False)


def _parse_vars(pairs: tuple[str, ...], vars_json: str | None) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if vars_json is not None:
        try:
            loaded = json.loads(vars_json)
        except ValueError as exc:
            raise click.UsageError(f"--vars-json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise click.UsageError("--vars-json must be a JSON object")
        variables.update(loaded)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--var expects NAME=VALUE, got {pair!r}")
        try:
            variables[name] = json.loads(raw)
        except ValueError:
            variables[name] = raw
    return variables


def _report(error: StellarError) -> None:
    click.echo(f"error: {error}", err=True)
    expression = error.expression
    position = error.position
    if expression and position is not None and "\n" not in expression:
        click.echo(f"  {expression}", err=True)
        click.echo(f"  {' ' * (position.column - 1)}^", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Evaluate Stellar expressions and browse the Stellar function library."""


@main.command("eval")
@click.argument("expression")
@click.option(
    "--var",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A variable (value read as JSON if it parses, else as a string). Repeatable.",
)
@click.option("--vars-json", metavar="JSON", help="Variables as one JSON object.")
def eval_command(expression: str, pairs: tuple[str, ...], vars_json: str | None) -> None:
    """Evaluate EXPRESSION and print the result as JSON."""
    variables = _parse_vars(pairs, vars_json)
    try:
        result = evaluate(expression, variables)
    except StellarError as error:
        _report(error)
        sys.exit(ERROR_EXIT)
    click.echo(_render(result))


@main.command("functions")
@click.argument("contains", required=False)
def functions_command(contains: str | None) -> None:
    """List the functions (those whose name contains CONTAINS, if given) with one-line descriptions."""
    specs = [s for s in list_functions() if contains is None or contains.upper() in s.name]
    width = max((len(s.name) for s in specs), default=0)
    for spec in specs:
        click.echo(f"{spec.name.ljust(width)}  {spec.summary}")


@main.command("describe")
@click.argument("name")
def describe_command(name: str) -> None:
    """Print the documentation of function NAME."""
    try:
        click.echo(describe_function(name.upper()))
    except StellarError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(ERROR_EXIT)


if __name__ == "__main__":  # pragma: no cover
    main()
