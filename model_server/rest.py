"""The Metron-style REST protocol, independent of the web framework.

``GET /<function>?k=v&…`` is one row whose values are text (parsed by each argument's dtype);
``POST /<function>`` carries a JSON object (one row, answered with one object) or a JSON list of
objects (a batch, answered with a list). These functions turn a query string or a body into rows
for :meth:`model_server.runtime.ModelRuntime.predict`, raising
:class:`~model_server.errors.BadRequest` for what the protocol cannot accept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from model_server.errors import BadRequest


@dataclass(frozen=True)
class Rows:
    """Rows parsed from a request, and whether the caller sent a batch (a list)."""

    rows: list[dict[str, Any]]
    batch: bool
    text: bool  # the values are query-string text

    def answer(self, results: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
        """The response body for ``results``: one object, or a list for a batch."""
        return results if self.batch else results[0]


def rows_from_query(params: Iterable[tuple[str, str]]) -> Rows:
    """One row from query parameters; a parameter given twice is an error."""
    row: dict[str, Any] = {}
    for key, value in params:
        if key in row:
            raise BadRequest(f"argument {key!r} is given more than once")
        row[key] = value
    return Rows([row], batch=False, text=True)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def rows_from_body(body: bytes, *, max_rows: int | None = None) -> Rows:
    """Rows from a JSON body: an object (one row) or a non-empty list of objects (a batch)."""
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON object or a list of JSON objects")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise BadRequest("the request body is nested too deeply") from exc
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request body is not UTF-8 text: {exc.reason}") from exc
    except ValueError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        return Rows([data], batch=False, text=False)
    if isinstance(data, list):
        if not data:
            raise BadRequest("the batch is empty; send at least one row")
        if max_rows is not None and len(data) > max_rows:
            raise BadRequest(f"the batch has {len(data)} rows; at most {max_rows} are allowed")
        for index, row in enumerate(data):
            if not isinstance(row, dict):
                raise BadRequest(f"row {index} of the batch is a {_json_type(row)}, not a JSON object")
        return Rows(data, batch=True, text=False)
    raise BadRequest(f"the request body is a JSON {_json_type(data)}; send a JSON object or a list of JSON objects")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"
