"""Exceptions raised by the Stellar-like language, and source positions.

Everything the package raises on bad input is a :class:`StellarError`:

- :class:`StellarParseError` — the expression is not valid Stellar: a syntax error, an unknown
  function, a call with the wrong number of arguments, a ``match`` without ``default``, a bad
  lambda parameter list. It is raised by ``compile()`` and always carries a :class:`Position`.
- :class:`StellarEvaluationError` — evaluation failed: a function rejected an argument, integer
  division by zero, arithmetic on a string. It names the function and argument where there is one
  (``"TO_INTEGER: argument 1 'abc' is not a number"``) and carries the position of the call or
  operator in the expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Position:
    """A place in an expression: 1-based line and column, 0-based character offset."""

    line: int
    column: int
    offset: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"

    @classmethod
    def at_offset(cls, text: str, offset: int) -> Position:
        """The position of character ``offset`` of ``text`` (clamped to the text's end)."""
        offset = max(0, min(offset, len(text)))
        line = text.count("\n", 0, offset) + 1
        line_start = text.rfind("\n", 0, offset) + 1
        return cls(line=line, column=offset - line_start + 1, offset=offset)


class StellarError(Exception):
    """The single base class of every error the Stellar-like language raises."""

    def __init__(self, message: str, position: Position | None = None, expression: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.expression = expression

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        return f"{self.message} (at {self.position})"


class StellarParseError(StellarError):
    """The expression could not be compiled: a syntax error or an unknown or misused function."""


class StellarEvaluationError(StellarError):
    """Evaluating a compiled expression failed.

    ``function`` names the Stellar function that failed (if any) and ``argument`` the 1-based index
    of the argument it rejected (if any). The message is rebuilt when the compiler fills those in,
    so function implementations can raise :func:`argument_error` without knowing their own name.
    """

    def __init__(
        self,
        message: str,
        position: Position | None = None,
        expression: str | None = None,
        *,
        function: str | None = None,
        argument: int | None = None,
    ) -> None:
        super().__init__(message, position, expression)
        self.reason = message
        self.function = function
        self.argument = argument
        self._rebuild()

    def _rebuild(self) -> None:
        message = self.reason
        if self.function is not None:
            message = f"{self.function}: {message}"
        self.message = message
        self.args = (message,)

    def attach(
        self, function: str | None, position: Position | None, expression: str | None = None
    ) -> StellarEvaluationError:
        """Fill in the function name and position if they are not known yet; returns ``self``."""
        if self.function is None and function is not None:
            self.function = function
            self._rebuild()
        if self.position is None:
            self.position = position
        if self.expression is None:
            self.expression = expression
        return self


def describe(value: Any) -> str:
    """A short, quoted rendering of a value for error messages (``'abc'``, ``null``, ``[1, 2]``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def argument_error(index: int, value: Any, problem: str) -> StellarEvaluationError:
    """An error about argument ``index`` (1-based): ``argument 1 'abc' is not a number``."""
    return StellarEvaluationError(f"argument {index} {describe(value)} {problem}", argument=index)


def type_name(value: Any) -> str:
    """The Stellar-ish name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "map"
    if callable(value):
        return "lambda"
    return type(value).__name__
