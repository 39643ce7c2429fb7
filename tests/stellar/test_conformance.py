"""The Stellar conformance cases: every expression must give the expected value or fail.

The cases live in the repository (``tests/data/stellar/cases.json``) so a fresh clone needs nothing
beside it. They are a copy of the project's shared conformance file
(``../shared/conformance/stellar/cases.json`` beside the repository, or the directory named by
``MAAS_CONFORMANCE_DIR``); when that file is present, the copy must equal it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

import stellar_like
from stellar_like import StellarError

REPO_ROOT = Path(__file__).resolve().parents[2]
CASES_FILE = REPO_ROOT / "tests" / "data" / "stellar" / "cases.json"


def shared_cases_path() -> Path | None:
    """The shared conformance file, if it is beside the repository (or where the override says)."""
    override = os.environ.get("MAAS_CONFORMANCE_DIR")
    if override:
        candidates = [Path(override) / "stellar" / "cases.json", Path(override) / "cases.json"]
    else:
        candidates = [REPO_ROOT.parent / "shared" / "conformance" / "stellar" / "cases.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def load_cases() -> list[dict[str, Any]]:
    return list(json.loads(CASES_FILE.read_text(encoding="utf-8"))["cases"])


CASES = load_cases()


def test_cases_file_is_in_the_repository() -> None:
    assert CASES_FILE.is_file()
    assert len(CASES) >= 93


def test_copy_equals_the_shared_cases() -> None:
    shared = shared_cases_path()
    if shared is None:
        pytest.skip("the shared conformance directory is not beside this repository")
    assert json.loads(shared.read_text(encoding="utf-8")) == json.loads(CASES_FILE.read_text(encoding="utf-8")), (
        f"{CASES_FILE} differs from {shared}: copy the shared file into the repository"
    )


def same(actual: Any, expected: Any) -> bool:
    """Equal, with floats within 1e-9 and integers (and booleans) keeping their type."""
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    if isinstance(expected, int):
        return type(actual) is int and actual == expected
    if isinstance(expected, float):
        return (
            isinstance(actual, (int, float))
            and not isinstance(actual, bool)
            and (
                math.isclose(actual, expected, rel_tol=0, abs_tol=1e-9) or (math.isnan(actual) and math.isnan(expected))
            )
        )
    if isinstance(expected, str):
        return actual == expected and isinstance(actual, str)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same(actual[k], expected[k]) for k in expected)
        )
    return bool(actual == expected)


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['expr']}" for i, c in enumerate(CASES)])
def test_conformance_case(case: dict[str, Any]) -> None:
    expression, variables = case["expr"], case.get("vars", {})
    if case.get("error"):
        with pytest.raises(StellarError):
            stellar_like.evaluate(expression, variables)
        return
    actual = stellar_like.evaluate(expression, variables)
    assert same(actual, case["expected"]), f"{expression!r} gave {actual!r}, expected {case['expected']!r}"
