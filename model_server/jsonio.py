"""JSON in and out of the model server: orjson on the hot path, the standard library's rules kept.

Every JSON the model server reads goes through :func:`loads` — request bodies, JSON lists in query
strings, the signature file — so NaN and Infinity are refused alike everywhere.

Parsing and writing JSON is a large share of a small model's request (a stdlib round trip of a
one-row request costs about 7 µs of the event loop's time, orjson's 0.5 µs). orjson accepts a subset
of what the standard library accepts, so whatever orjson refuses — NaN and Infinity literals
(refused here too, with a message naming them), numbers beyond a double's range, escaped lone
surrogates, UTF-16/32 bodies, deep nesting — is handed to the standard library, which accepts or
refuses it and names the problem. One difference remains: orjson reads an integer beyond 64 bits as
the nearest float (no model input holds such an integer, so it is refused as out of range either
way). On output, what orjson cannot write (a lone surrogate, an integer beyond 64 bits, a
non-string key) is written by the standard library, ASCII-escaped.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))  # ASCII-only output


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """The JSON document in ``data``, with NaN/Infinity refused. Raises what :func:`json.loads`
    raises: :class:`ValueError` (:class:`json.JSONDecodeError`), :class:`UnicodeDecodeError`,
    :class:`RecursionError`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass  # the standard library decides, and its message names the problem
    if isinstance(data, str):
        return _DECODER.decode(data)
    raw = bytes(data)
    return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def dumps(value: Any) -> bytes:
    """Compact JSON for ``value``: dicts, lists, str, int, float, bool and None. Callers write
    non-finite floats as None themselves (orjson would write null, the fallback refuses them).
    Raises :class:`TypeError` for what JSON cannot hold."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError included
        return _ENCODER.encode(value).encode("ascii")
