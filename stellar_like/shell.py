"""The interactive Stellar shell behind ``stellar shell``: a read-evaluate-print loop with history.

Each line is one of:

* an expression — evaluated with the shell's variables, the result printed as JSON;
* ``NAME := EXPRESSION`` — evaluated and kept as variable ``NAME`` for the next lines;
* ``?NAME`` — the documentation of function ``NAME``;
* ``%functions [TEXT]`` — the functions (whose name contains ``TEXT``) with one-line summaries;
* ``%vars`` — the variables; ``%del NAME`` forgets one; ``%help``; ``quit`` / ``exit`` (or end of
  input, Ctrl-D).

An error is printed with its position and the shell goes on. With ``readline`` available (it is
on Linux and macOS), lines are edited and recalled with the arrow keys, function names and
variables complete with Tab, and the history is kept in a file across sessions. The prompt and
banner are shown only when the input is a terminal, so a script can be piped through the shell.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from stellar_like.context import Context
from stellar_like.errors import StellarError
from stellar_like.evaluator import compile as compile_expression

__all__ = ["Shell", "History", "PROMPT"]

PROMPT = "[Stellar]>>> "
HISTORY_LENGTH = 1000
ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.:-]*)\s*:=\s*(.*)$", re.DOTALL)
HELP = """\
EXPRESSION            evaluate it and print the result as JSON
NAME := EXPRESSION    evaluate it and keep the result as variable NAME
?NAME                 the documentation of function NAME
%functions [TEXT]     the functions (whose name contains TEXT)
%vars                 the variables;  %del NAME forgets one
quit, exit, Ctrl-D    leave the shell"""

Render = Callable[[Any], str]
Report = Callable[[StellarError, TextIO], None]


class History:
    """Line editing, completion and a history file through the standard library's ``readline``
    (absent on some platforms: then lines are read plainly and nothing is kept)."""

    def __init__(self, path: Path | None, words: Callable[[], list[str]]) -> None:
        self.path = path
        self.words = words
        try:
            import readline
        except ImportError:  # pragma: no cover - not on Linux
            self.readline: Any = None
            return
        self.readline = readline
        readline.set_history_length(HISTORY_LENGTH)
        readline.set_completer(self._complete)
        readline.set_completer_delims(" \t\n()[]{},=+-*/<>!&|'\"")
        readline.parse_and_bind("tab: complete")
        if path is not None and path.is_file():
            try:
                readline.read_history_file(str(path))
            except OSError:
                pass

    def _complete(self, text: str, state: int) -> str | None:
        matches = [w for w in self.words() if w.startswith(text) or w.startswith(text.upper())]
        return matches[state] if state < len(matches) else None

    def add(self, line: str, *, interactive: bool) -> None:
        """Remember ``line`` (``input()`` remembers the lines typed at a terminal by itself)."""
        if self.readline is not None and not interactive and line.strip():
            self.readline.add_history(line)

    def save(self) -> str | None:
        """Write the history file; the problem, if it cannot be written."""
        if self.readline is None or self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(str(self.path))
        except OSError as exc:
            return f"cannot write the history to {self.path}: {exc.strerror or exc}"
        return None


class Shell:
    """Evaluates shell lines against ``context`` and its own variables, writing to ``out``/``err``."""

    def __init__(self, context: Context, variables: dict[str, Any], *, render: Render, report: Report,
                 out: TextIO, err: TextIO) -> None:
        self.context = context
        self.variables = dict(variables)
        self.render = render
        self.report = report
        self.out = out
        self.err = err

    def words(self) -> list[str]:
        """What Tab completes: function names, variables, the shell's commands."""
        from stellar_like import list_functions

        return sorted({*(s.name for s in list_functions()), *self.variables, "%functions", "%vars", "%del",
                       "%help", "quit", "exit"})

    def execute(self, line: str) -> bool:
        """Run one line; False when the line asks to leave."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        if text in ("quit", "exit", "%quit", "%exit"):
            return False
        if text.startswith("?"):
            self._describe(text[1:].strip())
        elif text.startswith("%"):
            self._command(text[1:])
        else:
            self._evaluate(text)
        return True

    def _evaluate(self, text: str) -> None:
        assignment = ASSIGNMENT.match(text)
        name, expression = (assignment.group(1), assignment.group(2)) if assignment else (None, text)
        try:
            value = compile_expression(expression).evaluate(self.variables, self.context)
        except StellarError as error:
            self.report(error, self.err)
            return
        if name is not None:
            self.variables[name] = value
        print(self.render(value), file=self.out)

    def _describe(self, name: str) -> None:
        from stellar_like import describe_function

        try:
            print(describe_function(name.upper()), file=self.out)
        except StellarError as error:
            print(f"error: {error}", file=self.err)

    def _command(self, text: str) -> None:
        from stellar_like import list_functions

        command, _, rest = text.partition(" ")
        rest = rest.strip()
        if command == "functions":
            specs = [s for s in list_functions() if not rest or rest.upper() in s.name]
            width = max((len(s.name) for s in specs), default=0)
            for spec in specs:
                print(f"{spec.name.ljust(width)}  {spec.summary}", file=self.out)
        elif command == "vars":
            for name in sorted(self.variables):
                print(f"{name} := {self.render(self.variables[name])}", file=self.out)
        elif command == "del" and rest:
            if self.variables.pop(rest, _MISSING) is _MISSING:
                print(f"error: no variable {rest}", file=self.err)
        elif command == "help":
            print(HELP, file=self.out)
        else:
            print(f"error: unknown command %{command}; %help lists the commands", file=self.err)

    def run(self, lines: Iterator[str] | None = None, *, history: History | None = None,
            interactive: bool | None = None) -> None:
        """Read lines (from ``input()`` unless ``lines`` are given) until one says quit or they end."""
        if interactive is None:
            interactive = lines is None and sys.stdin.isatty()
        if interactive:
            print("Stellar shell: expressions, NAME := EXPRESSION, ?FUNCTION, %functions, %help; "
                  "quit or Ctrl-D to leave.", file=self.out)
        source = lines if lines is not None else _read(PROMPT if interactive else "")
        try:
            while True:
                try:
                    line = next(source)
                except StopIteration:
                    break
                except KeyboardInterrupt:  # Ctrl-C drops the line being typed, not the shell
                    print(file=self.out)
                    source = _read(PROMPT if interactive else "")
                    continue
                if history is not None:
                    history.add(line, interactive=interactive)
                if not self.execute(line):
                    break
        finally:
            if history is not None and (problem := history.save()):
                print(f"warning: {problem}", file=self.err)


_MISSING = object()


def _read(prompt: str) -> Iterator[str]:
    while True:
        try:
            yield input(prompt)
        except EOFError:
            return
