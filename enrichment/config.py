"""The enrichment config: which fields to set on every event, with which Stellar expressions.

Three shapes are accepted (docs/enrichment.md):

- ours: ``{"enrichments": {"field": "expr", …}}`` (or a list of ``"field := expr"`` strings);
- Metron's sensor enrichment config: ``{"enrichment": {"fieldMap": {"stellar": {"config": …}}},
  "threatIntel": {"fieldMap": {"stellar": {"config": …}}}}``, where ``config`` is a map of field →
  expression, a list of ``"field := expr"`` statements, or a map of named groups of either;
- Metron's parser ``fieldTransformations`` with ``"transformation": "STELLAR"`` (its ``config``,
  and ``output`` naming the fields to keep).

Everything flattens to one ordered list of :class:`Assignment` — enrichment before threat intel,
groups and statements in file order — so a later field may read an earlier one. Every expression
is compiled here, once; one that does not compile is a :class:`ConfigError` naming the field and
the position.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from enrichment.errors import EnrichmentError
from stellar_like.errors import StellarParseError
from stellar_like.evaluator import CompiledExpression, compile
from stellar_like.functions.registry import FunctionRegistry

__all__ = ["Assignment", "ConfigError", "EnrichmentConfig", "load_config", "parse_config"]

NullPolicy = Literal["keep", "drop"]
MapPolicy = Literal["keep", "unfold"]

_ASSIGN = re.compile(r"^\s*([^\s:=][^:=]*?)\s*:=(.*)$", re.DOTALL)
_MODEL_CALL = re.compile(r"\bMAAS_(?:MODEL_APPLY|GET_ENDPOINT)\s*\(")
_OURS = {"enrichments", "nulls", "maps", "description", "comment"}
_METRON_STAGES = {"enrichment": "enrichment", "threatIntel": "threat_intel"}


class ConfigError(EnrichmentError, ValueError):
    """The config cannot be used; ``where`` is the JSON path of the problem (``enrichments.x``)."""

    exit_code = 2

    def __init__(self, message: str, where: str = "", *, field: str | None = None, expression: str | None = None,
                 column: int | None = None) -> None:
        self.where = where
        self.message = message
        self.field = field
        self.expression = expression
        self.column = column
        place = f"field {field!r} ({where})" if field is not None else where
        super().__init__(f"{place}: {message}" if place else message)

    def render(self) -> str:
        """The message, with the expression and a caret under the position when there is one."""
        text = str(self)
        if self.expression is not None and self.column is not None and "\n" not in self.expression:
            text += f"\n  {self.expression}\n  {' ' * (self.column - 1)}^"
        return text


@dataclass(frozen=True)
class Assignment:
    """``field := expression``, compiled."""

    field: str
    expression: str
    compiled: CompiledExpression
    where: str  # JSON path in the config, for messages
    stage: str = "enrichment"  # "enrichment" or "threat_intel" (Metron's error types follow it)

    @property
    def calls_models(self) -> bool:
        return bool(_MODEL_CALL.search(self.expression))


@dataclass(frozen=True)
class EnrichmentConfig:
    """The ordered assignments and what to do with null and map values."""

    assignments: tuple[Assignment, ...]
    nulls: NullPolicy = "keep"  # "drop": a null value removes the field (Metron)
    maps: MapPolicy = "keep"  # "unfold": a map value ``f`` becomes fields ``f.key`` (Metron)
    keep: frozenset[str] | None = None  # assigned fields to output (None: all); Metron's ``output``
    shape: str = "enrichments"  # which of the accepted shapes the file had
    warnings: tuple[str, ...] = ()

    @property
    def fields(self) -> list[str]:
        return [a.field for a in self.assignments]

    @property
    def calls_models(self) -> bool:
        """Whether some expression calls MAAS functions (and so needs a model gateway)."""
        return any(a.calls_models for a in self.assignments)


def load_config(path: str | Path, *, registry: FunctionRegistry | None = None) -> EnrichmentConfig:
    """Read and compile the config file at ``path``; raises :class:`ConfigError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the enrichment config {path}: {exc}") from exc
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return parse_config(data, registry=registry)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ConfigError(f"key {key!r} appears twice in one JSON object; later fields may read earlier ones, "
                              "so give each field once (or use the list form to set it again)")
        result[key] = value
    return result


def parse_config(data: Any, *, registry: FunctionRegistry | None = None) -> EnrichmentConfig:
    """Compile a config already read from JSON (any accepted shape); raises :class:`ConfigError`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"the enrichment config must be a JSON object, not {_kind(data)}")
    ours = "enrichments" in data
    metron = any(k in data for k in _METRON_STAGES)
    parser = "fieldTransformations" in data
    if ours + metron + parser > 1:
        raise ConfigError("give either 'enrichments', or Metron's 'enrichment'/'threatIntel', "
                          "or Metron's 'fieldTransformations', not several")
    warnings: list[str] = []
    keep: frozenset[str] | None = None
    if ours:
        unknown = sorted(set(data) - _OURS)
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected "
                              f"{', '.join(sorted(_OURS))}")
        assignments = _statements(data["enrichments"], "enrichments", registry, groups=False)
        shape, nulls, maps = "enrichments", "keep", "keep"
    elif metron:
        assignments = []
        for key, stage in _METRON_STAGES.items():
            if key in data:
                assignments += _metron_stage(data[key], key, stage, registry, warnings)
        shape, nulls, maps = "metron-enrichment", "drop", "unfold"
    elif parser:
        assignments, keep = _field_transformations(data["fieldTransformations"], registry, warnings)
        shape, nulls, maps = "metron-parser", "drop", "keep"
    else:
        raise ConfigError("no enrichments: expected 'enrichments' (a map of field to Stellar expression), "
                          "Metron's 'enrichment'/'threatIntel' with fieldMap.stellar.config, "
                          "or Metron's 'fieldTransformations'")
    nulls = _choice(data, "nulls", ("keep", "drop"), nulls)
    maps = _choice(data, "maps", ("keep", "unfold"), maps)
    if not assignments:
        warnings.append("the config sets no field: events pass through unchanged")
    return EnrichmentConfig(tuple(assignments), nulls=nulls, maps=maps, keep=keep,  # type: ignore[arg-type]
                            shape=shape, warnings=tuple(warnings))


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise ConfigError(f"must be one of {', '.join(map(repr, allowed))}, not {value!r}", key)
    return str(value)


def _metron_stage(stage: Any, where: str, stage_name: str, registry: FunctionRegistry | None,
                  warnings: list[str]) -> list[Assignment]:
    if stage is None:
        return []
    if not isinstance(stage, Mapping):
        raise ConfigError(f"must be an object, not {_kind(stage)}", where)
    field_map = stage.get("fieldMap") or {}
    if not isinstance(field_map, Mapping):
        raise ConfigError(f"must be an object, not {_kind(field_map)}", f"{where}.fieldMap")
    for adapter in field_map:
        if adapter != "stellar":
            raise ConfigError(f"the {adapter!r} enrichment adapter is not supported; only 'stellar' is "
                              "(express the enrichment as a Stellar expression)", f"{where}.fieldMap.{adapter}")
    if stage.get("triageConfig"):
        warnings.append(f"{where}.triageConfig: threat triage (riskLevelRules) is not supported and is ignored")
    stellar = field_map.get("stellar")
    if stellar is None:
        return []
    if not isinstance(stellar, Mapping):
        raise ConfigError(f"must be an object with a 'config', not {_kind(stellar)}", f"{where}.fieldMap.stellar")
    return _statements(stellar.get("config") or {}, f"{where}.fieldMap.stellar.config", registry,
                       groups=True, stage=stage_name)


def _field_transformations(items: Any, registry: FunctionRegistry | None,
                           warnings: list[str]) -> tuple[list[Assignment], frozenset[str] | None]:
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise ConfigError(f"must be a list, not {_kind(items)}", "fieldTransformations")
    assignments: list[Assignment] = []
    outputs: set[str] = set()
    limited = False
    for index, item in enumerate(items):
        where = f"fieldTransformations[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"must be an object, not {_kind(item)}", where)
        kind = str(item.get("transformation", ""))
        if kind.upper() != "STELLAR":
            raise ConfigError(f"the {kind!r} transformation is not supported; only 'STELLAR' is", where)
        mine = _statements(item.get("config") or {}, f"{where}.config", registry, groups=False)
        assignments += mine
        output = item.get("output")
        if output is None:
            outputs.update(a.field for a in mine)
        else:
            if isinstance(output, str):
                output = [output]
            if not isinstance(output, Sequence) or not all(isinstance(o, str) for o in output):
                raise ConfigError("must be a list of field names", f"{where}.output")
            outputs.update(output)
            limited = True
    return assignments, (frozenset(outputs) if limited else None)


def _statements(value: Any, where: str, registry: FunctionRegistry | None, *, groups: bool,
                stage: str = "enrichment") -> list[Assignment]:
    """A map of field → expression (values may be groups when ``groups``), or a list of
    ``field := expression`` strings."""
    result: list[Assignment] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.strip():
                raise ConfigError("a field name must be a non-empty string", where)
            path = f"{where}.{key}"
            if isinstance(item, str):
                result.append(_assignment(key, item, path, registry, stage))
            elif groups and isinstance(item, (Mapping, list)):
                result += _statements(item, path, registry, groups=False, stage=stage)
            else:
                expected = "a Stellar expression (string)" + (", or a group (map or list)" if groups else "")
                raise ConfigError(f"must be {expected}, not {_kind(item)}", path)
        return result
    if isinstance(value, list):
        for index, item in enumerate(value):
            path = f"{where}[{index}]"
            if not isinstance(item, str):
                raise ConfigError(f"must be a 'field := expression' string, not {_kind(item)}", path)
            match = _ASSIGN.match(item)
            if match is None or not match.group(2).strip():
                raise ConfigError(f"{item!r} is not of the form 'field := expression'", path)
            field = match.group(1).strip()
            result.append(_assignment(field, match.group(2).strip(), path, registry, stage))
        return result
    raise ConfigError(f"must be a map of field to Stellar expression or a list of 'field := expression', "
                      f"not {_kind(value)}", where)


def _assignment(field: str, expression: str, where: str, registry: FunctionRegistry | None,
                stage: str) -> Assignment:
    try:
        compiled = compile(expression, registry=registry)
    except StellarParseError as exc:
        column = exc.position.column if exc.position is not None else None
        raise ConfigError(str(exc), where, field=field, expression=expression, column=column) from exc
    return Assignment(field, expression, compiled, where, stage)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__
