"""The ``stellar`` command: evaluate an expression, an interactive shell, list and describe functions.

::

    stellar eval "TO_UPPER(name)" --var name=casey          # prints "CASEY"
    stellar eval "a + b" --vars-json '{"a": 1, "b": 2}'      # prints 3
    stellar eval -zq 127.0.0.1:2181 "MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': 'x.com'})"
    stellar shell [-zq 127.0.0.1:2181]                      # a REPL with history (stellar_like.shell)
    stellar functions [SUBSTRING]                           # names with one-line descriptions
    stellar describe DOMAIN_TO_TLD                          # one function's documentation

``eval`` prints the result as JSON. A ``--var`` value is read as JSON when it is valid JSON
(``5``, ``true``, ``[1, 2]``) and as a plain string otherwise. Errors go to stderr with the
position in the expression, and the exit code is 2.

``-zq``/``-z`` (a ZooKeeper quorum) and ``-zr`` (the cluster's config znode) let the MAAS_*
functions reach deployed models; without them those functions give null with a warning. The
MaaS wiring lives in :mod:`enrichment.stellar_models` and is imported only when ``-zq`` is given:
the language itself depends on nothing of the control plane. When ZooKeeper cannot be reached
the command exits with that error's code (6).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

from stellar_like import Context, StellarError, describe_function, get_default_context, list_functions
from stellar_like.evaluator import compile as compile_expression

ERROR_EXIT = 2
DEFAULT_HISTORY = Path("~/.stellar_history")


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


def _report(error: StellarError, stream: TextIO | None = None) -> None:
    def say(text: str) -> None:
        click.echo(text, file=stream, err=stream is None)

    say(f"error: {error}")
    expression = error.expression
    position = error.position
    if expression and position is not None and "\n" not in expression:
        say(f"  {expression}")
        say(f"  {' ' * (position.column - 1)}^")


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """The language's and the gateway's warnings (a model that failed, no gateway) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("stellar_like", "enrichment")]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.WARNING or logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@contextmanager
def _models(zk_quorum: str | None, zk_root: str | None, zk_timeout: float) -> Iterator[Context]:
    """The evaluation context: with a quorum, one whose gateway reaches the cluster's models."""
    if not zk_quorum:
        yield get_default_context()
        return
    from enrichment.stellar_models import ModelsUnavailable, connect  # only now: see the module docstring

    try:
        connection = connect(zk_quorum, zk_root, timeout=zk_timeout)
    except ModelsUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    try:
        yield connection.context
    finally:
        connection.close()


def _zookeeper_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--zk-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                           help="Seconds to connect to ZooKeeper and load the endpoints")(command)
    command = click.option("-zr", "--zk-root", "--zk_root", "zk_root", metavar="ZNODE",
                           help="Config znode of the MaaS cluster (default: /maas/config)")(command)
    return click.option("-zq", "-z", "--zk-quorum", "--zk_quorum", "--zookeeper", "zk_quorum",
                        metavar="HOST:PORT[,…]",
                        help="ZooKeeper of the MaaS cluster, so MAAS_GET_ENDPOINT / MAAS_MODEL_APPLY reach its "
                             "models (Metron's shell: -z)")(command)


def _var_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--vars-json", metavar="JSON", help="Variables as one JSON object.")(command)
    return click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE",
                        help="A variable (value read as JSON if it parses, else as a string). Repeatable.")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Evaluate Stellar expressions and browse the Stellar function library.

    \b
    Exit status: 0 on success; 2 for an expression error, an unknown function or a usage error;
    6 when -zq names a ZooKeeper that cannot be reached.
    """


@main.command("eval")
@click.argument("expression")
@_var_options
@_zookeeper_options
def eval_command(expression: str, pairs: tuple[str, ...], vars_json: str | None, zk_quorum: str | None,
                 zk_root: str | None, zk_timeout: float) -> None:
    """Evaluate EXPRESSION and print the result as JSON."""
    variables = _parse_vars(pairs, vars_json)
    try:
        compiled = compile_expression(expression)
    except StellarError as error:
        _report(error)
        sys.exit(ERROR_EXIT)
    with _warnings_to_stderr(), _models(zk_quorum, zk_root, zk_timeout) as context:
        try:
            result = compiled.evaluate(variables, context)
        except StellarError as error:
            _report(error)
            sys.exit(ERROR_EXIT)
    click.echo(_render(result))


@main.command("shell")
@_var_options
@_zookeeper_options
@click.option("--history", "history_file", default=str(DEFAULT_HISTORY), show_default=True, metavar="FILE",
              help="Where the shell keeps its history ('' for none)")
def shell_command(pairs: tuple[str, ...], vars_json: str | None, zk_quorum: str | None, zk_root: str | None,
                  zk_timeout: float, history_file: str) -> None:
    """An interactive shell: expressions, NAME := EXPRESSION, ?FUNCTION, %functions, %vars, %help."""
    from stellar_like.shell import History, Shell

    variables = _parse_vars(pairs, vars_json)
    with _warnings_to_stderr(), _models(zk_quorum, zk_root, zk_timeout) as context:
        shell = Shell(context, variables, render=_render, report=_report,
                      out=sys.stdout, err=sys.stderr)
        history = History(Path(history_file).expanduser() if history_file else None, shell.words)
        shell.run(history=history)


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
