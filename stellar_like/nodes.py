"""The abstract syntax tree of a Stellar expression.

:mod:`stellar_like.parser` builds these nodes from lark's parse tree; :mod:`stellar_like.compiler`
turns them into Python closures. Every node records the :class:`~stellar_like.errors.Position` of
its first character so that compile and evaluation errors can point into the expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stellar_like.errors import Position


class Node:
    """Base class of all syntax tree nodes."""

    __slots__ = ()
    pos: Position


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A constant: string, number, boolean, null or NaN."""

    value: Any
    pos: Position


@dataclass(frozen=True, slots=True)
class Var(Node):
    """A variable reference; ``_`` stands for the whole variables map."""

    name: str
    pos: Position


@dataclass(frozen=True, slots=True)
class Exists(Node):
    """``exists(name)``: whether the variable is present and not null."""

    name: str
    pos: Position


@dataclass(frozen=True, slots=True)
class ListNode(Node):
    """A list literal ``[a, b, ...]``."""

    items: tuple[Node, ...]
    pos: Position


@dataclass(frozen=True, slots=True)
class MapNode(Node):
    """A map literal ``{k: v, ...}``; keys are expressions too."""

    pairs: tuple[tuple[Node, Node], ...]
    pos: Position


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call ``NAME(args...)``."""

    name: str
    args: tuple[Node, ...]
    pos: Position


@dataclass(frozen=True, slots=True)
class Negate(Node):
    """Unary minus."""

    operand: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Not(Node):
    """Logical negation ``not x`` / ``not(x)``."""

    operand: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """A non-short-circuiting binary operator: ``+ - * /``, ``== != < <= > >=``, ``in``, ``not in``."""

    op: str
    left: Node
    right: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Logical(Node):
    """A short-circuiting ``and`` / ``or`` (also spelled ``&&`` / ``||``)."""

    op: str
    left: Node
    right: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    """``if c then a else b`` and ``c ? a : b``."""

    condition: Node
    then: Node
    otherwise: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Match(Node):
    """``match{ cond => value, ..., default => value }``."""

    clauses: tuple[tuple[Node, Node], ...]
    default: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Lambda(Node):
    """``(a, b) -> body``, ``x -> body`` or ``() -> body``."""

    params: tuple[str, ...]
    body: Node
    pos: Position
    source: str = ""
