"""JSON on the inference routes: orjson's speed with the standard library's acceptance and messages."""

from __future__ import annotations

import json

import pytest

from model_server import jsonio

DOCUMENTS = [
    {"host": "xjwqkzvbtpqmd.com"},
    [{"x": [1.5, -2.25e-8, 3]}, {"x": [0, 1e300, -0.0]}],
    {"id": "1", "inputs": [{"name": "h", "datatype": "BYTES", "shape": [2], "data": ["ünï", "漢字"]}]},
    {"nested": {"a": [True, False, None, 18446744073709551615, -9223372036854775808]}},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_loads_reads_what_the_standard_library_reads(document: object) -> None:
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False, indent=2)):
        assert jsonio.loads(text.encode()) == jsonio.loads(text) == json.loads(text)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_refused_by_name(literal: str) -> None:
    for text in (f'{{"x": [1, {literal}]}}', f'[{literal}]'):
        for data in (text, text.encode()):
            with pytest.raises(ValueError, match=f"{literal} is not valid JSON"):
                jsonio.loads(data)


def test_what_orjson_refuses_the_standard_library_still_reads() -> None:
    assert jsonio.loads('{"a": "\\ud800"}'.encode()) == {"a": "\ud800"}  # an escaped lone surrogate
    assert jsonio.loads('{"a": 1}'.encode("utf-16")) == {"a": 1}       # UTF-16, as json.loads detects it
    assert jsonio.loads(b'\xef\xbb\xbf[1]') == [1]                         # a UTF-8 byte order mark
    assert jsonio.loads(b"[" + b"9" * 400 + b"]") == [int("9" * 400)]      # beyond a double's range


def test_malformed_json_raises_the_standard_library_errors() -> None:
    with pytest.raises(json.JSONDecodeError):
        jsonio.loads(b'{"a": ')
    with pytest.raises(UnicodeDecodeError):
        jsonio.loads(b'{"a": "\xff\xfe\xfd"}')
    with pytest.raises(RecursionError):
        jsonio.loads(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("value", [
    *DOCUMENTS,
    {"a": "\ud800"},     # a lone surrogate: orjson refuses it, the fallback escapes it
    {1: "one"},          # a non-string key: written as "1"
    [10 ** 30],          # an integer beyond 64 bits
])
def test_dumps_writes_compact_json_that_reads_back(value: object) -> None:
    text = jsonio.dumps(value)
    assert isinstance(text, bytes) and b", " not in text and b": " not in text
    assert json.loads(text) == json.loads(json.dumps(value))


def test_dumps_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        jsonio.dumps({"a": object()})
