"""The Metron-style REST protocol, independent of the web framework.

``GET /<function>?k=v&…`` is one row whose values are text (parsed by each argument's dtype);
``POST /<function>`` carries a JSON object (one row, answered with one object) or a JSON list of
objects (a batch, answered with a list). These functions turn a query string or a body into rows,
raising :class:`~model_server.errors.BadRequest` for what the protocol cannot accept;
:class:`MetronProtocol` decodes the rows into tensors (so a bad row is refused before it can join a
batch), runs them through :mod:`model_server.batcher` and encodes the outputs per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from starlette.concurrency import run_in_threadpool

from model_server import jsonio
from model_server.batcher import Batcher
from model_server.codec import json_type_name
from model_server.errors import BadRequest, FunctionNotFound
from model_server.runtime import ModelRuntime

OFFLOAD_BYTES = 64 * 1024  # bodies larger than this are parsed and decoded in the thread pool
OFFLOAD_ROWS = 256         # answers with more rows are encoded in the thread pool


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


def rows_from_body(body: bytes, *, max_rows: int | None = None) -> Rows:
    """Rows from a JSON body: an object (one row) or a non-empty list of objects (a batch)."""
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON object or a list of JSON objects")
    try:
        data = jsonio.loads(body)
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
                raise BadRequest(f"row {index} of the batch is a {json_type_name(row)}, not a JSON object")
        return Rows(data, batch=True, text=False)
    raise BadRequest(f"the request body is a JSON {json_type_name(data)}; send a JSON object or a list of JSON objects")



class MetronProtocol:
    """The Metron-style function of one model, served through ``batcher``."""

    def __init__(self, runtime: ModelRuntime, batcher: Batcher, *, max_rows: int) -> None:
        self.runtime = runtime
        self.batcher = batcher
        self.max_rows = max_rows

    @property
    def function(self) -> str:
        return self.runtime.function

    def check_function(self, function: str) -> None:
        if function != self.runtime.function:
            raise FunctionNotFound(f"unknown function {function!r}; this model offers {self.runtime.function!r}")

    async def apply_query(self, function: str, params: Iterable[tuple[str, str]]) -> Any:
        """``GET /<function>?k=v&…``: one row of text values."""
        self.check_function(function)
        return await self._apply(rows_from_query(params), offload=False)

    async def apply_body(self, function: str, body: bytes) -> Any:
        """``POST /<function>`` with a JSON object (one row) or a list of objects (a batch)."""
        self.check_function(function)
        self.runtime.check_ready()
        if len(body) > OFFLOAD_BYTES:  # large: parse in the thread pool, keep the event loop free
            rows = await run_in_threadpool(rows_from_body, body, max_rows=self.max_rows)
            return await self._apply(rows, offload=True)
        return await self._apply(rows_from_body(body, max_rows=self.max_rows), offload=False)

    async def _apply(self, rows: Rows, *, offload: bool) -> Any:
        self.runtime.check_ready()
        if offload:
            tensors = await run_in_threadpool(self.runtime.decode, rows.rows, text=rows.text)
        else:
            tensors = self.runtime.decode(rows.rows, text=rows.text)
        results = await self.batcher.infer(tensors, self.runtime.output_names)
        if len(rows.rows) > OFFLOAD_ROWS:
            return rows.answer(await run_in_threadpool(self.runtime.encode, results, len(rows.rows)))
        return rows.answer(self.runtime.encode(results, len(rows.rows)))
