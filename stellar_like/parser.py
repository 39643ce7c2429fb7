"""Parsing: expression text → lark parse tree → :mod:`stellar_like.nodes` syntax tree.

The grammar lives in ``grammar.lark`` beside this module and is loaded with
:mod:`importlib.resources`; lark's LALR(1) parser with its contextual lexer reads it once per
process, on first use. Every lark error is turned into a :class:`StellarParseError` carrying the
line, column and offset of the offending character or token.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.tree import Meta

from stellar_like.errors import Position, StellarParseError
from stellar_like.nodes import (
    Binary,
    Call,
    Conditional,
    Exists,
    Lambda,
    ListNode,
    Literal,
    Logical,
    MapNode,
    Match,
    Negate,
    Node,
    Not,
    Var,
)

__all__ = ["parse"]

_lock = threading.Lock()
_parser: Lark | None = None

# What to call terminals in "expected ..." messages when they are not plain strings.
_TERMINAL_NAMES = {
    "NAME": "identifier",
    "STRING": "string",
    "INT": "number",
    "LONG": "number",
    "FLOAT": "number",
    "DOUBLE": "number",
    "COMP_OP": "comparison operator",
    "IF": "if",
    "THEN": "then",
    "ELSE": "else",
    "NOT_IN": "not in",
    "NOT": "not",
    "IN": "in",
    "AND": "and",
    "OR": "or",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "NAN": "NaN",
    "EXISTS": "exists",
    "MATCH": "match",
    "DEFAULT": "default",
}

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0", "'": "'", '"': '"', "\\": "\\", "/": "/"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _get_parser() -> Lark:
    global _parser
    if _parser is None:
        grammar = resources.files("stellar_like").joinpath("grammar.lark").read_text(encoding="utf-8")
        _parser = Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=True)
    return _parser


def parse(expression: str) -> Node:
    """Parse ``expression`` into a syntax tree; raises :class:`StellarParseError`."""
    if not isinstance(expression, str):
        raise StellarParseError(f"a Stellar expression must be a string, not {type(expression).__name__}")
    with _lock:
        parser = _get_parser()
        try:
            tree = parser.parse(expression)
        except UnexpectedInput as exc:
            raise _convert(exc, expression, parser) from None
        except LarkError as exc:  # pragma: no cover - defensive: lark's other errors
            raise StellarParseError(f"cannot parse expression: {exc}", Position(1, 1, 0), expression) from None
        except RecursionError:
            raise StellarParseError("expression is nested too deeply", Position(1, 1, 0), expression) from None
    try:
        return _ToNodes(expression).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, StellarParseError):
            raise exc.orig_exc from None
        raise StellarParseError(f"cannot parse expression: {exc.orig_exc}", Position(1, 1, 0), expression) from None
    except RecursionError:
        raise StellarParseError("expression is nested too deeply", Position(1, 1, 0), expression) from None


def _convert(exc: UnexpectedInput, text: str, parser: Lark) -> StellarParseError:
    if isinstance(exc, UnexpectedCharacters):
        offset = exc.pos_in_stream or 0
        char = text[offset] if 0 <= offset < len(text) else ""
        if char in ("'", '"'):
            message = "unterminated string literal"
        else:
            message = f"unexpected character {char!r}"
        return StellarParseError(message, Position.at_offset(text, offset), text)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        expected = _expected(exc.expected, parser)
        if token.type == "$END":
            message = "unexpected end of expression"
            position = Position.at_offset(text, len(text))
        else:
            message = f"unexpected {token.value!r}"
            position = Position(token.line, token.column, token.start_pos)
        if expected:
            message += f"; expected {expected}"
        return StellarParseError(message, position, text)
    if isinstance(exc, UnexpectedEOF):
        return StellarParseError("unexpected end of expression", Position.at_offset(text, len(text)), text)
    return StellarParseError(f"cannot parse expression: {exc}", Position(1, 1, 0), text)  # pragma: no cover


def _expected(names: set[str] | Any, parser: Lark) -> str:
    shown: set[str] = set()
    for name in names or ():
        if name in _TERMINAL_NAMES:
            shown.add(_TERMINAL_NAMES[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except (KeyError, AttributeError):
            continue
        if pattern.type == "str":
            shown.add(repr(pattern.value))
    if not shown:
        return ""
    items = sorted(shown)
    if len(items) > 6:  # LALR's merged states make long lists more noise than help
        return ""
    return items[0] if len(items) == 1 else "one of " + ", ".join(items)


def decode_string(token: str) -> str:
    """The value of a quoted string literal: quotes removed, escapes resolved.

    ``\\' \\" \\\\ \\n \\t \\r \\b \\f \\0 \\/`` and ``\\uXXXX`` are escapes; a backslash before any
    other character is kept as written, so ``'\\d+'`` reaches a regex function unchanged.
    """
    body = token[1:-1]
    if "\\" not in body:
        return body

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5 and code[0] == "u":
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, "\\" + code)

    return _ESCAPE_RE.sub(replace, body)


def _tok_pos(token: Token) -> Position:
    return Position(token.line or 1, token.column or 1, token.start_pos or 0)


def _meta_pos(meta: Meta) -> Position:
    if getattr(meta, "empty", True):
        return Position(1, 1, 0)
    return Position(meta.line, meta.column, meta.start_pos)


@v_args(meta=True)
class _ToNodes(Transformer[Token, Node]):
    """Turns lark's parse tree into syntax tree nodes, checking what the grammar cannot."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _error(self, message: str, position: Position) -> StellarParseError:
        return StellarParseError(message, position, self.text)

    # literals
    def string(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(decode_string(str(children[0])), _tok_pos(children[0]))

    def int_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(int(children[0]), _tok_pos(children[0]))

    def long_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(int(children[0][:-1]), _tok_pos(children[0]))

    def float_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(float(children[0][:-1]), _tok_pos(children[0]))

    def double_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(float(children[0].rstrip("dD")), _tok_pos(children[0]))

    def true_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(True, _tok_pos(children[0]))

    def false_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(False, _tok_pos(children[0]))

    def null_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(None, _tok_pos(children[0]))

    def nan_lit(self, meta: Meta, children: list[Token]) -> Node:
        return Literal(float("nan"), _tok_pos(children[0]))

    # names, calls and collections
    def var(self, meta: Meta, children: list[Token]) -> Node:
        return Var(str(children[0]), _tok_pos(children[0]))

    def exists(self, meta: Meta, children: list[Token]) -> Node:
        return Exists(str(children[1]), _tok_pos(children[0]))

    def call(self, meta: Meta, children: list[Any]) -> Node:
        name, args = children
        return Call(str(name), tuple(args or ()), _tok_pos(name))

    def args(self, meta: Meta, children: list[Node]) -> tuple[Node, ...]:
        return tuple(children)

    def list_lit(self, meta: Meta, children: list[Any]) -> Node:
        return ListNode(tuple(children[0] or ()), _meta_pos(meta))

    def pairs(self, meta: Meta, children: list[tuple[Node, Node]]) -> tuple[tuple[Node, Node], ...]:
        return tuple(children)

    def pair(self, meta: Meta, children: list[Node]) -> tuple[Node, Node]:
        return (children[0], children[1])

    def map_lit(self, meta: Meta, children: list[Any]) -> Node:
        return MapNode(tuple(children[0] or ()), _meta_pos(meta))

    # operators
    def arith(self, meta: Meta, children: list[Any]) -> Node:
        left, op, right = children
        return Binary(str(op), left, right, _tok_pos(op))

    def compare(self, meta: Meta, children: list[Any]) -> Node:
        left, op, right = children
        return Binary(str(op), left, right, _tok_pos(op))

    def in_op(self, meta: Meta, children: list[Any]) -> Node:
        left, op, right = children
        return Binary("in", left, right, _tok_pos(op))

    def not_in_op(self, meta: Meta, children: list[Any]) -> Node:
        left, op, right = children
        return Binary("not in", left, right, _tok_pos(op))

    def and_op(self, meta: Meta, children: list[Any]) -> Node:
        left, op, right = children
        return Logical("and", left, right, _tok_pos(op))

    def or_op(self, meta: Meta, children: list[Any]) -> Node:
        left, op, right = children
        return Logical("or", left, right, _tok_pos(op))

    def not_op(self, meta: Meta, children: list[Any]) -> Node:
        return Not(children[1], _tok_pos(children[0]))

    def negate(self, meta: Meta, children: list[Any]) -> Node:
        return Negate(children[1], _tok_pos(children[0]))

    # conditionals
    def if_then_else(self, meta: Meta, children: list[Any]) -> Node:
        if_tok, condition, _then, then, _else, otherwise = children
        return Conditional(condition, then, otherwise, _tok_pos(if_tok))

    def ternary(self, meta: Meta, children: list[Any]) -> Node:
        condition, then, otherwise = children
        return Conditional(condition, then, otherwise, _meta_pos(meta))

    def match_case(self, meta: Meta, children: list[Node]) -> tuple[str, Node, Node]:
        return ("case", children[0], children[1])

    def match_default(self, meta: Meta, children: list[Any]) -> tuple[str, Position, Node]:
        return ("default", _tok_pos(children[0]), children[1])

    def match(self, meta: Meta, children: list[Any]) -> Node:
        match_tok, *clauses = children
        cases: list[tuple[Node, Node]] = []
        default: Node | None = None
        for index, (kind, first, action) in enumerate(clauses):
            if kind == "default":
                if index != len(clauses) - 1:
                    raise self._error("the default clause must be the last clause of a match", first)
                default = action
            else:
                cases.append((first, action))
        if default is None:
            raise self._error("match requires a default clause (default => value)", _tok_pos(match_tok))
        return Match(tuple(cases), default, _tok_pos(match_tok))

    # lambdas
    def lambda_expr(self, meta: Meta, children: list[Any]) -> Node:
        params, body = children
        source = self.text[meta.start_pos : meta.end_pos] if not getattr(meta, "empty", True) else ""
        return Lambda(params, body, _meta_pos(meta), source)

    def params_none(self, meta: Meta, children: list[Any]) -> tuple[str, ...]:
        return ()

    def params_one(self, meta: Meta, children: list[Node]) -> tuple[str, ...]:
        return self._param_names(children)

    def params_many(self, meta: Meta, children: list[Node]) -> tuple[str, ...]:
        return self._param_names(children)

    def params_bare(self, meta: Meta, children: list[Token]) -> tuple[str, ...]:
        return self._param_names([Var(str(children[0]), _tok_pos(children[0]))])

    def _param_names(self, nodes: list[Node]) -> tuple[str, ...]:
        names: list[str] = []
        for node in nodes:
            if not isinstance(node, Var):
                raise self._error("lambda parameters must be plain names", node.pos)
            if node.name == "_":
                raise self._error("'_' cannot be a lambda parameter", node.pos)
            if node.name in names:
                raise self._error(f"duplicate lambda parameter {node.name!r}", node.pos)
            names.append(node.name)
        return tuple(names)
