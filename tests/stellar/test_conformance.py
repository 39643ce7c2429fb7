"""The shared Stellar conformance cases: every expression must give the expected value or fail.

The cases file is ``shared/conformance/stellar/cases.json`` beside the repository (override the
conformance directory with ``MAAS_CONFORMANCE_DIR``). A missing file is a failure, not a skip.
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


def cases_path() -> Path | None:
    override = os.environ.get("MAAS_CONFORMANCE_DIR")
    if override:  # the override is used alone: a wrong override fails rather than falling back
        candidates = [Path(override) / "stellar" / "cases.json", Path(override) / "cases.json"]
    else:
        candidates = [REPO_ROOT.parent / "shared" / "conformance" / "stellar" / "cases.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def load_cases() -> list[dict[str, Any]]:
    path = cases_path()
    if path is None:
        return []
    return list(json.loads(path.read_text(encoding="utf-8"))["cases"])


CASES = load_cases()


def test_cases_file_is_present() -> None:
    path = cases_path()
    assert path is not None, (
        "Stellar conformance cases not found: expected ../shared/conformance/stellar/cases.json "
        "relative to the repository, or set MAAS_CONFORMANCE_DIR"
    )
    assert len(CASES) >= 93


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
