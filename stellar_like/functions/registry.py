"""The function registry: Stellar names → Python implementations, with their documentation.

A function is registered with the :func:`stellar_function` decorator, which records the Stellar
name, a description, the parameters and what it returns — the same documentation Stellar keeps in
its ``@Stellar`` annotation, so ``stellar functions`` and ``stellar describe NAME`` can show it::

    @stellar_function(
        "TO_UPPER",
        description="Transforms the first argument to an uppercase string.",
        params=["input - The string to transform"],
        returns="The uppercase string, or null for null input",
    )
    def to_upper(value: object) -> str | None: ...

Each parameter is written ``"name - description"``. A name ending in ``?`` is optional, ``*`` takes
zero or more arguments and ``+`` one or more (only the last parameter may repeat). The call's
argument count is checked against this when an expression is compiled. The Python function is
called with the Stellar arguments positionally; with ``context=True`` it first receives the
evaluation :class:`~stellar_like.context.Context`. ``pure=False`` marks functions whose result is not
determined by their arguments alone (time, model calls) so the compiler never pre-computes them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Param", "FunctionSpec", "FunctionRegistry", "DEFAULT_REGISTRY", "stellar_function"]

F = TypeVar("F", bound=Callable[..., Any])



ABBREVIATIONS = ("e.g", "i.e", "etc", "vs", "cf", "approx", "resp", "incl")


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (whitespace collapsed): up to the first ``.``, ``!`` or ``?``
    that ends a sentence — followed by a space or the end, outside parentheses, brackets and
    quotes (``FILTER(['a'], (x) -> x == 'a')``), and not ending an abbreviation such as "e.g."."""
    text = " ".join(text.split())
    depth = 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`" and (i == 0 or not text[i - 1].isalnum()):
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in ".!?" and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            word = text[:i].rsplit(" ", 1)[-1].lower()
            if ch == "." and word.lstrip("(") in ABBREVIATIONS:
                continue
            return text[:i + 1]
    return text


@dataclass(frozen=True, slots=True)
class Param:
    """One documented parameter of a Stellar function."""

    name: str
    description: str
    optional: bool = False
    repeated: bool = False
    at_least: int = 1

    @classmethod
    def parse(cls, spec: str) -> Param:
        """Read ``"name - description"`` with an optional ``?``, ``*`` or ``+`` after the name."""
        name, sep, description = spec.partition(" - ")
        name = name.strip()
        description = description.strip() if sep else ""
        if name.endswith("?"):
            return cls(name[:-1], description, optional=True, repeated=False, at_least=0)
        if name.endswith("*"):
            return cls(name[:-1], description, optional=True, repeated=True, at_least=0)
        if name.endswith("+"):
            return cls(name[:-1], description, optional=False, repeated=True, at_least=1)
        return cls(name, description)

    @property
    def display(self) -> str:
        suffix = "*" if self.repeated and self.at_least == 0 else "+" if self.repeated else "?" if self.optional else ""
        return self.name + suffix


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A registered Stellar function: implementation, documentation and arity."""

    name: str
    impl: Callable[..., Any]
    description: str
    params: tuple[Param, ...]
    returns: str
    needs_context: bool = False
    pure: bool = True
    category: str = ""
    min_args: int = field(init=False)
    max_args: int | None = field(init=False)

    def __post_init__(self) -> None:
        minimum = 0
        maximum: int | None = 0
        for param in self.params:
            minimum += param.at_least if param.repeated else (0 if param.optional else 1)
            if param.repeated:
                maximum = None
            elif maximum is not None:
                maximum += 1
        object.__setattr__(self, "min_args", minimum)
        object.__setattr__(self, "max_args", maximum)

    @property
    def signature(self) -> str:
        """``NAME(a, b?, c*)``."""
        return f"{self.name}({', '.join(p.display for p in self.params)})"

    @property
    def summary(self) -> str:
        """The first sentence of the description, for one-line listings."""
        return first_sentence(self.description)

    def arity_problem(self, count: int) -> str | None:
        """Why ``count`` arguments are wrong for this function, or None if they are fine."""
        if count < self.min_args or (self.max_args is not None and count > self.max_args):
            if self.max_args is None:
                expected = f"at least {self.min_args} argument{'s' if self.min_args != 1 else ''}"
            elif self.min_args == self.max_args:
                expected = f"{self.min_args} argument{'s' if self.min_args != 1 else ''}"
            else:
                expected = f"{self.min_args} to {self.max_args} arguments"
            return f"{self.name} expects {expected}, got {count}"
        return None

    def describe(self) -> str:
        """Multi-line documentation in the style of the Stellar shell's ``?NAME``."""
        lines = [self.signature, f"  desc: {' '.join(self.description.split())}"]
        if self.params:
            lines.append("  args:")
            for param in self.params:
                notes = []
                if param.repeated:
                    notes.append("repeatable")
                elif param.optional:
                    notes.append("optional")
                note = f" ({', '.join(notes)})" if notes else ""
                lines.append(f"    {param.name}{note} - {param.description}")
        else:
            lines.append("  args: none")
        lines.append(f"   ret: {' '.join(self.returns.split())}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The documentation as plain data (for JSON output)."""
        return {
            "name": self.name,
            "signature": self.signature,
            "description": self.description,
            "params": [
                {"name": p.name, "description": p.description, "optional": p.optional, "repeated": p.repeated}
                for p in self.params
            ],
            "returns": self.returns,
            "category": self.category,
        }


class FunctionRegistry:
    """A set of Stellar functions by name. :data:`DEFAULT_REGISTRY` holds the core library."""

    def __init__(self, specs: list[FunctionSpec] | None = None) -> None:
        self._functions: dict[str, FunctionSpec] = {}
        for spec in specs or ():
            self.register(spec)

    def register(self, spec: FunctionSpec, *, replace: bool = False) -> FunctionSpec:
        """Add ``spec``; a second function under the same name is an error unless ``replace``."""
        if not replace and spec.name in self._functions:
            raise ValueError(f"Stellar function {spec.name} is already registered")
        _check_signature(spec)
        self._functions[spec.name] = spec
        return spec

    def function(
        self,
        name: str,
        *,
        description: str,
        params: list[str] | tuple[str, ...] = (),
        returns: str,
        context: bool = False,
        pure: bool = True,
        replace: bool = False,
    ) -> Callable[[F], F]:
        """Decorator registering the decorated Python function under the Stellar ``name``."""
        if not name or not name.replace("_", "A").isalnum() or not (name[0].isalpha() or name[0] == "_"):
            raise ValueError(f"invalid Stellar function name {name!r}")

        def decorate(impl: F) -> F:
            module = getattr(impl, "__module__", "") or ""
            spec = FunctionSpec(
                name=name,
                impl=impl,
                description=description,
                params=tuple(Param.parse(p) for p in params),
                returns=returns,
                needs_context=context,
                pure=pure,
                category=module.rsplit(".", 1)[-1],
            )
            self.register(spec, replace=replace)
            return impl

        return decorate

    def get(self, name: str) -> FunctionSpec | None:
        """The function registered as ``name``, if any."""
        return self._functions.get(name)

    def names(self) -> list[str]:
        """All function names, sorted."""
        return sorted(self._functions)

    def specs(self) -> list[FunctionSpec]:
        """All functions, sorted by name."""
        return [self._functions[n] for n in self.names()]

    def copy(self) -> FunctionRegistry:
        """A new registry with the same functions, to extend without touching this one."""
        return FunctionRegistry(list(self._functions.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._functions)


def _check_signature(spec: FunctionSpec) -> None:
    """Make sure the Python function can take every argument count the documentation allows."""
    try:
        signature = inspect.signature(spec.impl)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return
    positional = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_positional = any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values())
    offset = 1 if spec.needs_context else 0
    required = sum(1 for p in positional if p.default is p.empty) - offset
    capacity = None if var_positional else len(positional) - offset
    if required > spec.min_args or (capacity is not None and (spec.max_args is None or capacity < spec.max_args)):
        raise TypeError(
            f"the Python signature of {spec.name} {signature} does not fit its documented parameters {spec.signature}"
        )


DEFAULT_REGISTRY = FunctionRegistry()
"""The core function library; the modules of :mod:`stellar_like.functions` register into it."""

stellar_function = DEFAULT_REGISTRY.function
"""Register a function in :data:`DEFAULT_REGISTRY` (see :meth:`FunctionRegistry.function`)."""
