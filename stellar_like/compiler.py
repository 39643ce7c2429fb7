"""Compilation: syntax tree → one Python closure per node.

Each node becomes a function ``(variables, context) -> value`` that calls its children's
functions directly, so evaluating a compiled expression does no dispatch on node types. Work that
does not depend on the variables is done here, once: function lookup and argument-count checks
(unknown functions are compile errors), and folding of constant sub-expressions (``2 * 3``,
``TO_UPPER('a')``) whose result is an immutable scalar. A constant sub-expression that fails
(``1 / 0``) is not folded, so it still fails only if and when it is evaluated.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import Any

from stellar_like.context import Context
from stellar_like.errors import Position, StellarError, StellarEvaluationError, StellarParseError, describe
from stellar_like.functions.registry import FunctionRegistry, FunctionSpec
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
from stellar_like.semantics import (
    add,
    contains,
    divide,
    equals,
    greater,
    greater_equal,
    less,
    less_equal,
    multiply,
    negate,
    subtract,
    truthy,
)

__all__ = ["Evaluator", "StellarLambda", "compile_tree"]

Evaluator = Callable[[Mapping[str, Any], Context], Any]

_SCALARS = (type(None), bool, int, float, str)


def _not_equals(a: Any, b: Any) -> bool:
    return not equals(a, b)


def _not_contains(a: Any, b: Any) -> bool:
    return not contains(a, b)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "==": equals,
    "!=": _not_equals,
    "<": less,
    "<=": less_equal,
    ">": greater,
    ">=": greater_equal,
    "in": contains,
    "not in": _not_contains,
}


class StellarLambda:
    """A lambda value: calling it binds the parameters over the variables it was created with."""

    __slots__ = ("params", "_body", "_scope", "_context", "_text")

    def __init__(
        self, params: tuple[str, ...], body: Evaluator, scope: Mapping[str, Any], context: Context, text: str
    ) -> None:
        self.params = params
        self._body = body
        self._scope = scope
        self._context = context
        self._text = text

    def __call__(self, *args: Any) -> Any:
        params = self.params
        if len(args) != len(params):
            raise StellarEvaluationError(
                f"lambda {self._text} takes {len(params)} argument{'s' if len(params) != 1 else ''}, got {len(args)}"
            )
        if not params:
            return self._body(self._scope, self._context)
        if len(params) == 1:
            local: dict[str, Any] = {params[0]: args[0]}
        else:
            local = dict(zip(params, args))
        return self._body(ChainMap(local, self._scope), self._context)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<lambda {self._text}>"


_NO_VALUE: Any = object()


class _Code:
    """A compiled node: its evaluator, its value when it is a foldable constant, and — for a
    collection literal of constants — a prebuilt copy that operators may read but never return."""

    __slots__ = ("fn", "const", "value", "readonly")

    def __init__(self, fn: Evaluator, const: bool = False, value: Any = None, readonly: Any = _NO_VALUE) -> None:
        self.fn = fn
        self.const = const
        self.value = value
        self.readonly = value if const else readonly


def _constant(value: Any) -> _Code:
    return _Code(lambda v, c: value, True, value)


def compile_tree(node: Node, registry: FunctionRegistry, expression: str = "") -> Evaluator:
    """Compile a syntax tree into an evaluator; raises :class:`StellarParseError` for unknown functions."""
    try:
        return _Compiler(registry, expression).compile(node).fn
    except RecursionError:
        raise StellarParseError("expression is nested too deeply", Position(1, 1, 0), expression) from None


class _Compiler:
    def __init__(self, registry: FunctionRegistry, expression: str) -> None:
        self.registry = registry
        self.expression = expression
        self._dispatch: dict[type, Callable[[Any], _Code]] = {
            Literal: self._literal,
            Var: self._var,
            Exists: self._exists,
            ListNode: self._list,
            MapNode: self._map,
            Call: self._call,
            Negate: self._negate,
            Not: self._not,
            Binary: self._binary,
            Logical: self._logical,
            Conditional: self._conditional,
            Match: self._match,
            Lambda: self._lambda,
        }

    def compile(self, node: Node) -> _Code:
        return self._dispatch[type(node)](node)

    def _fold(self, compute: Callable[[], Any]) -> _Code | None:
        """Pre-compute a constant sub-expression if it succeeds and gives an immutable scalar."""
        try:
            value = compute()
        except Exception:
            return None
        if isinstance(value, _SCALARS):
            return _constant(value)
        return None

    # ---- leaves ------------------------------------------------------------------------------
    def _literal(self, node: Literal) -> _Code:
        return _constant(node.value)

    def _var(self, node: Var) -> _Code:
        name = node.name
        if name == "_":
            return _Code(lambda v, c: v)

        def variable(v: Mapping[str, Any], c: Context) -> Any:
            return v.get(name)

        return _Code(variable)

    def _exists(self, node: Exists) -> _Code:
        name = node.name

        def exists(v: Mapping[str, Any], c: Context) -> bool:
            return v.get(name) is not None

        return _Code(exists)

    # ---- collections -------------------------------------------------------------------------
    def _list(self, node: ListNode) -> _Code:
        items = [self.compile(item) for item in node.items]
        if all(item.const for item in items):
            values = [item.value for item in items]

            def copy_list(v: Mapping[str, Any], c: Context) -> list[Any]:
                return values.copy()

            return _Code(copy_list, readonly=values)
        fns = tuple(item.fn for item in items)

        def make_list(v: Mapping[str, Any], c: Context) -> list[Any]:
            return [f(v, c) for f in fns]

        return _Code(make_list)

    def _map(self, node: MapNode) -> _Code:
        compiled = [(self.compile(k), self.compile(val)) for k, val in node.pairs]
        pos = node.pos
        if all(k.const and val.const for k, val in compiled):
            try:
                values = {k.value: val.value for k, val in compiled}
            except TypeError:  # pragma: no cover - constant keys are scalars, hence hashable
                values = None
            if values is not None:

                def copy_map(v: Mapping[str, Any], c: Context) -> dict[Any, Any]:
                    return values.copy()

                return _Code(copy_map, readonly=values)
        pairs = tuple((k.fn, val.fn) for k, val in compiled)

        def make_map(v: Mapping[str, Any], c: Context) -> dict[Any, Any]:
            result: dict[Any, Any] = {}
            for kf, vf in pairs:
                key = kf(v, c)
                value = vf(v, c)
                try:
                    result[key] = value
                except TypeError:
                    raise StellarEvaluationError(f"{describe(key)} cannot be a map key", pos) from None
            return result

        return _Code(make_map)

    # ---- operators ---------------------------------------------------------------------------
    def _negate(self, node: Negate) -> _Code:
        operand = self.compile(node.operand)
        if operand.const:
            folded = self._fold(lambda: negate(operand.value))
            if folded is not None:
                return folded
        f = operand.fn
        pos = node.pos

        def negation(v: Mapping[str, Any], c: Context) -> Any:
            try:
                return negate(f(v, c))
            except StellarEvaluationError as exc:
                raise exc.attach(None, pos) from None

        return _Code(negation)

    def _not(self, node: Not) -> _Code:
        operand = self.compile(node.operand)
        if operand.const:
            folded = self._fold(lambda: not truthy(operand.value))
            if folded is not None:
                return folded
        cond = _truth(operand.fn, node.pos)

        def logical_not(v: Mapping[str, Any], c: Context) -> bool:
            return not cond(v, c)

        return _Code(logical_not)

    def _binary(self, node: Binary) -> _Code:
        op = _BINARY[node.op]
        left = self.compile(node.left)
        right = self.compile(node.right)
        if left.const and right.const:
            folded = self._fold(lambda: op(left.value, right.value))
            if folded is not None:
                return folded
        if left.const and right.readonly is not _NO_VALUE:
            folded = self._fold(lambda: op(left.value, right.readonly))
            if folded is not None:
                return folded
        pos = node.pos
        lf = left.fn
        if right.readonly is not _NO_VALUE:
            # A constant right operand (including a list or map literal, read but never returned).
            k = right.readonly
            if isinstance(node.left, Var) and node.left.name != "_":
                name = node.left.name

                def var_op_const(v: Mapping[str, Any], c: Context) -> Any:
                    try:
                        return op(v.get(name), k)
                    except StellarEvaluationError as exc:
                        raise exc.attach(None, pos) from None

                return _Code(var_op_const)

            def expr_op_const(v: Mapping[str, Any], c: Context) -> Any:
                try:
                    return op(lf(v, c), k)
                except StellarEvaluationError as exc:
                    raise exc.attach(None, pos) from None

            return _Code(expr_op_const)
        rf = right.fn

        def binary(v: Mapping[str, Any], c: Context) -> Any:
            try:
                return op(lf(v, c), rf(v, c))
            except StellarEvaluationError as exc:
                raise exc.attach(None, pos) from None

        return _Code(binary)

    def _logical(self, node: Logical) -> _Code:
        left = self.compile(node.left)
        right = self.compile(node.right)
        lf, rf = left.fn, right.fn
        pos = node.pos
        is_and = node.op == "and"
        if left.const:
            try:
                decided = truthy(left.value)
            except StellarEvaluationError:
                decided = None
            if decided is not None:
                if is_and and not decided:
                    return _constant(False)
                if not is_and and decided:
                    return _constant(True)

        def test(value: Any) -> bool:
            if value is True:
                return True
            if value is False or value is None:
                return False
            try:
                return truthy(value)
            except StellarEvaluationError as exc:
                raise exc.attach(None, pos) from None

        if is_and:

            def logical_and(v: Mapping[str, Any], c: Context) -> bool:
                return test(lf(v, c)) and test(rf(v, c))

            return _Code(logical_and)

        def logical_or(v: Mapping[str, Any], c: Context) -> bool:
            return test(lf(v, c)) or test(rf(v, c))

        return _Code(logical_or)

    # ---- conditionals ------------------------------------------------------------------------
    def _condition(self, node: Node) -> Evaluator:
        return _truth(self.compile(node).fn, node.pos)

    def _conditional(self, node: Conditional) -> _Code:
        cond = self._condition(node.condition)
        then = self.compile(node.then).fn
        otherwise = self.compile(node.otherwise).fn

        def conditional(v: Mapping[str, Any], c: Context) -> Any:
            return then(v, c) if cond(v, c) else otherwise(v, c)

        return _Code(conditional)

    def _action(self, node: Node) -> Evaluator:
        # Stellar lets a match action be a no-argument lambda, evaluated when its clause is chosen.
        if isinstance(node, Lambda) and not node.params:
            return self.compile(node.body).fn
        return self.compile(node).fn

    def _match(self, node: Match) -> _Code:
        clauses = tuple((self._condition(cond), self._action(action)) for cond, action in node.clauses)
        default = self._action(node.default)

        def match(v: Mapping[str, Any], c: Context) -> Any:
            for cond, action in clauses:
                if cond(v, c):
                    return action(v, c)
            return default(v, c)

        return _Code(match)

    # ---- lambdas and calls -------------------------------------------------------------------
    def _lambda(self, node: Lambda) -> _Code:
        body = self.compile(node.body).fn
        params = node.params
        text = " ".join(node.source.split()) or f"({', '.join(params)}) -> ..."
        if len(text) > 60:
            text = text[:57] + "..."

        def make_lambda(v: Mapping[str, Any], c: Context) -> StellarLambda:
            return StellarLambda(params, body, v, c, text)

        return _Code(make_lambda)

    def _call(self, node: Call) -> _Code:
        spec = self.registry.get(node.name)
        if spec is None:
            raise StellarParseError(f"unknown function {node.name}", node.pos, self.expression)
        problem = spec.arity_problem(len(node.args))
        if problem is not None:
            raise StellarParseError(problem, node.pos, self.expression)
        args = [self.compile(arg) for arg in node.args]
        if spec.pure and not spec.needs_context and all(a.const for a in args):
            impl = spec.impl
            values = [a.value for a in args]
            folded = self._fold(lambda: impl(*values))
            if folded is not None:
                return folded
        return _Code(_make_call(spec, tuple(a.fn for a in args), node.pos))


def _make_call(spec: FunctionSpec, fns: tuple[Evaluator, ...], pos: Position) -> Evaluator:
    impl = spec.impl
    name = spec.name

    def failed(exc: Exception) -> StellarError:
        if isinstance(exc, StellarEvaluationError):
            return exc.attach(name, pos)
        if isinstance(exc, StellarError):
            return exc
        if isinstance(exc, RecursionError):
            return StellarEvaluationError("expression recursion too deep", pos, function=name)
        return StellarEvaluationError(f"{type(exc).__name__}: {exc}", pos, function=name)

    if spec.needs_context:

        def call_with_context(v: Mapping[str, Any], c: Context) -> Any:
            args = [f(v, c) for f in fns]
            try:
                return impl(c, *args)
            except Exception as exc:
                raise failed(exc) from exc

        return call_with_context

    if len(fns) == 0:

        def call0(v: Mapping[str, Any], c: Context) -> Any:
            try:
                return impl()
            except Exception as exc:
                raise failed(exc) from exc

        return call0

    if len(fns) == 1:
        (f0,) = fns

        def call1(v: Mapping[str, Any], c: Context) -> Any:
            a0 = f0(v, c)
            try:
                return impl(a0)
            except Exception as exc:
                raise failed(exc) from exc

        return call1

    if len(fns) == 2:
        f0, f1 = fns

        def call2(v: Mapping[str, Any], c: Context) -> Any:
            a0 = f0(v, c)
            a1 = f1(v, c)
            try:
                return impl(a0, a1)
            except Exception as exc:
                raise failed(exc) from exc

        return call2

    def call(v: Mapping[str, Any], c: Context) -> Any:
        args = [f(v, c) for f in fns]
        try:
            return impl(*args)
        except Exception as exc:
            raise failed(exc) from exc

    return call


def _truth(f: Evaluator, pos: Position | None) -> Evaluator:
    """``f``'s value as a Stellar condition (null and empty collections are false); an error
    from a value that cannot be a condition is reported at ``pos``."""

    def condition(v: Mapping[str, Any], c: Context) -> bool:
        value = f(v, c)
        if value is True:
            return True
        if value is False or value is None:
            return False
        try:
            return truthy(value)
        except StellarEvaluationError as exc:
            raise exc.attach(None, pos) from None

    return condition
