"""DOMAIN_TYPOSQUAT, FUZZY_*, HASH(..., 'TLSH'), TLSH_DIST and THREAT_TRIAGE_*."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from stellar_like import StellarEvaluationError, evaluate
from stellar_like.functions.security import TYPOSQUAT_STRATEGIES, ThreatTriageEngine


def run(expression: str, **variables: Any) -> Any:
    return evaluate(expression, variables)


# ---- typosquatting --------------------------------------------------------------------------------------


def test_typosquat_finds_the_classic_misspellings() -> None:
    candidates = run("DOMAIN_TYPOSQUAT('latimes')")
    assert "latlmes" in candidates  # homoglyph i -> l, the example of Metron's use case
    assert {"latime", "lattimes", "altimes", "lat-imes", "la.times", "latimesa", "letimes"} <= candidates
    assert "latimes" not in candidates
    assert run("DOMAIN_TYPOSQUAT(null)") is None
    with pytest.raises(StellarEvaluationError, match="DOMAIN_TYPOSQUAT: argument 1 5 is not a string"):
        run("DOMAIN_TYPOSQUAT(5)")


@pytest.mark.parametrize(
    ("strategy", "domain", "expected"),
    [
        ("Omission", "abc", {"bc", "ac", "ab"}),
        ("Repetition", "ab1", {"aab1", "abb1"}),
        ("Transposition", "abb", {"bab"}),
        ("Hyphenation", "abc", {"a-bc", "ab-c"}),
        ("Subdomain", "ab-c", {"a.b-c"}),
        ("Vowel-swap", "ax", {"ax", "ex", "ix", "ox", "ux"}),
        ("Addition", "a", {"a" + chr(c) for c in range(97, 123)}),
    ],
)
def test_each_strategy(strategy: str, domain: str, expected: set[str]) -> None:
    assert TYPOSQUAT_STRATEGIES[strategy](domain) == expected


def test_keyboard_and_bit_strategies() -> None:
    replacement = TYPOSQUAT_STRATEGIES["Replacement"]("a")
    assert {"q", "w", "s", "z"} <= replacement  # QWERTY neighbours of a
    assert "y" in replacement  # QWERTZ
    insertion = TYPOSQUAT_STRATEGIES["Insertion"]("cat")
    assert "caqt" in insertion and "cqat" in insertion
    bits = TYPOSQUAT_STRATEGIES["Bitsquatting"]("a")
    assert bits == {"c", "e", "i", "q"}  # the flips of 'a' that are letters, digits or '-'
    assert TYPOSQUAT_STRATEGIES["Bitsquatting"]("m") == {"l", "o", "i", "e", "-"}


def test_homoglyphs_include_the_ascii_form_of_unicode_lookalikes() -> None:
    candidates = TYPOSQUAT_STRATEGIES["Homoglyph"]("go")
    assert "g0" in candidates
    unicode_forms = [c for c in candidates if not c.isascii()]
    assert unicode_forms
    assert any(c.startswith("xn--") for c in candidates)


# ---- fuzzy scores -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "query", "score"),
    [
        ("", "", 0),
        ("Workshop", "b", 0),
        ("Room", "o", 1),
        ("Workshop", "w", 1),
        ("Workshop", "ws", 2),
        ("Workshop", "wo", 4),
        ("Apache Software Foundation", "asf", 3),
        ("metron", "METRON", 16),
    ],
)
def test_fuzzy_score(term: str, query: str, score: int) -> None:
    assert run("FUZZY_SCORE(t, q, 'en')", t=term, q=query) == score


def test_fuzzy_score_arguments() -> None:
    assert run("FUZZY_SCORE(null, 'a', 'en')") == 0
    assert run("FUZZY_SCORE('a', 1, 'en')") == 0
    with pytest.raises(StellarEvaluationError, match="FUZZY_SCORE: argument 3 'xx-nope' is not a known"):
        run("FUZZY_SCORE('a', 'a', 'xx-nope')")
    languages = run("FUZZY_LANGS()")
    assert {"en", "fr", "de", "en-US"} <= set(languages)


# ---- TLSH -----------------------------------------------------------------------------------------------------

TLSH_TEXT = (
    "The best documentation is the UNIX source. After all, this is what the system uses for documentation when "
    "it decides what to do next! The manuals paraphrase the source code, often having been written at different "
    "times and by different people than who wrote the code. Think of them as guidelines. Sometimes they are more "
    "like wishes... Nonetheless, it is all too common to turn to the source and find options and behaviors that "
    "are not documented in the manual. Sometimes you find options described in the manual that are unimplemented "
    "and ignored by the source."
)
TLSH_DIGEST = "6FF02BEF718027B0160B4391212923ED7F1A463D563B1549B86CF62973B197AD2731F8"  # TLSH's canonical example


def test_tlsh_hash_matches_the_reference_digest() -> None:
    assert run("HASH(text, 'tlsh')", text=TLSH_TEXT) == TLSH_DIGEST
    assert run("HASH(text, 'TLSH')", text=TLSH_TEXT) == TLSH_DIGEST
    assert run("HASH('too short', 'TLSH')") is None
    assert run("HASH(text, 'TLSH', {'force': false})", text=TLSH_TEXT[:200]) is None
    assert "TLSH" in run("GET_HASHES_AVAILABLE()")


def test_tlsh_bins_and_distance() -> None:
    similar = TLSH_TEXT.replace("source", "sources")
    first = run("HASH(a, 'tlsh', {'hashes': [8, 16, 32]})", a=TLSH_TEXT)
    assert set(first) == {"tlsh", "tlsh_bin_8", "tlsh_bin_16", "tlsh_bin_32"}
    single = run("HASH(a, 'tlsh', {'hashes': 4})", a=TLSH_TEXT)
    assert set(single) == {"tlsh", "tlsh_bin"} and single["tlsh_bin"].startswith("4")
    other = run("HASH(b, 'tlsh')", b=similar)
    assert run("TLSH_DIST(h, h)", h=TLSH_DIGEST) == 0
    near = run("TLSH_DIST(h1, h2)", h1=TLSH_DIGEST, h2=other)
    assert near == run("TLSH_DIST(h2, h1)", h1=TLSH_DIGEST, h2=other)
    assert 0 < near < 100
    far = run(
        "TLSH_DIST(h1, HASH(x, 'tlsh'))", h1=TLSH_DIGEST, x="".join(chr(33 + (i * 7919) % 90) for i in range(600))
    )
    assert far > near
    assert run("TLSH_DIST(h1, h2, true)", h1=TLSH_DIGEST, h2=other) >= near
    assert run("TLSH_DIST(null, h)", h=TLSH_DIGEST) == -1
    with pytest.raises(StellarEvaluationError, match="TLSH_DIST: argument 1"):
        run("TLSH_DIST('abc', 'def')")
    with pytest.raises(StellarEvaluationError, match="HASH: argument 3"):
        run("HASH(a, 'tlsh', {'bucketSize': 256})", a=TLSH_TEXT)


# ---- threat triage ---------------------------------------------------------------------------------------------


def engine_with_three_rules() -> ThreatTriageEngine:
    engine = run("THREAT_TRIAGE_INIT()")
    for n in (1, 2, 3):
        run("THREAT_TRIAGE_ADD(t, r)", t=engine, r={"name": f"rule{n}", "rule": f"value > {n * 10}", "score": n * 10})
    return engine


def test_triage_scores_the_rules_that_fire() -> None:
    engine = engine_with_three_rules()
    assert repr(engine) == "ThreatTriage{3 rule(s)}"
    result = run("THREAT_TRIAGE_SCORE('{ \"value\": 22 }', t)", t=engine)
    assert result == {
        "score": 20.0,
        "aggregator": "MAX",
        "rules": [
            {"name": "rule1", "rule": "value > 10", "score": 10.0},
            {"name": "rule2", "rule": "value > 20", "score": 20.0},
        ],
    }
    assert run("THREAT_TRIAGE_SCORE({'value': 44}, t)", t=engine)["score"] == 30.0
    assert run("THREAT_TRIAGE_SCORE({'value': 1}, t)", t=engine) == {"score": 0.0, "rules": [], "aggregator": "MAX"}


@pytest.mark.parametrize(
    ("aggregator", "expected"), [("MAX", 30.0), ("MIN", 10.0), ("SUM", 60.0), ("MEAN", 20.0), ("POSITIVE_MEAN", 20.0)]
)
def test_triage_aggregators(aggregator: str, expected: float) -> None:
    engine = engine_with_three_rules()
    run("THREAT_TRIAGE_SET_AGGREGATOR(t, a)", t=engine, a=aggregator)
    assert run("THREAT_TRIAGE_SCORE({'value': 99}, t)", t=engine)["score"] == expected


def test_negative_scores_trump_unless_configured_otherwise() -> None:
    engine = run("THREAT_TRIAGE_INIT()")
    run("THREAT_TRIAGE_ADD(t, [{'rule': 'true', 'score': -5}, {'rule': 'true', 'score': 10}])", t=engine)
    run("THREAT_TRIAGE_SET_AGGREGATOR(t, 'SUM')", t=engine)
    assert run("THREAT_TRIAGE_SCORE({}, t)", t=engine)["score"] == -math.inf
    run("THREAT_TRIAGE_SET_AGGREGATOR(t, 'SUM', {'negativeValuesTrump': false})", t=engine)
    assert run("THREAT_TRIAGE_SCORE({}, t)", t=engine)["score"] == 5.0


def test_score_and_reason_expressions_see_the_message() -> None:
    engine = run("THREAT_TRIAGE_INIT()")
    run(
        "THREAT_TRIAGE_ADD(t, {'name': 'big', 'rule': 'bytes > 100', 'score': 'bytes / 10', "
        "'reason': 'FORMAT(\"%s sent %d bytes\", ip, bytes)', 'comment': 'volume'})",
        t=engine,
    )
    result = run("THREAT_TRIAGE_SCORE({'ip': '10.0.0.1', 'bytes': 500}, t)", t=engine)
    assert result["score"] == 50.0
    assert result["rules"] == [
        {"name": "big", "rule": "bytes > 100", "score": 50.0, "reason": "10.0.0.1 sent 500 bytes", "comment": "volume"}
    ]


def test_config_print_remove_and_init_from_config() -> None:
    engine = engine_with_three_rules()
    table = run("THREAT_TRIAGE_PRINT(t)", t=engine)
    assert "║ rule2 │" in table and "value > 30" in table and table.endswith("Aggregation: MAX")
    config = run("THREAT_TRIAGE_CONFIG(t)", t=engine)
    rules = json.loads(config)["threatIntel"]["triageConfig"]["riskLevelRules"]
    assert [r["name"] for r in rules] == ["rule1", "rule2", "rule3"]
    assert rules[0]["score"] == "10"
    removed = run("THREAT_TRIAGE_REMOVE(t, ['rule1', 'value > 30'])", t=engine)
    assert [r["name"] for r in json.loads(removed)["threatIntel"]["triageConfig"]["riskLevelRules"]] == ["rule2"]
    copy = run("THREAT_TRIAGE_INIT(c)", c=config)
    assert len(copy.rules) == 3
    # a JSON configuration given to ADD comes back changed; the original string is untouched
    added = run("THREAT_TRIAGE_ADD(c, {'rule': 'x == 1', 'score': 1})", c=config)
    assert len(json.loads(added)["threatIntel"]["triageConfig"]["riskLevelRules"]) == 4
    assert run("THREAT_TRIAGE_PRINT(THREAT_TRIAGE_INIT())").startswith("╔")


def test_triage_errors_are_clear() -> None:
    engine = run("THREAT_TRIAGE_INIT()")
    with pytest.raises(
        StellarEvaluationError, match="THREAT_TRIAGE_ADD: argument 2 .*'rule' that is not valid Stellar"
    ):
        run("THREAT_TRIAGE_ADD(t, {'rule': 'value >', 'score': 1})", t=engine)
    with pytest.raises(StellarEvaluationError, match="THREAT_TRIAGE_SET_AGGREGATOR: argument 2 'MEDIAN'"):
        run("THREAT_TRIAGE_SET_AGGREGATOR(t, 'MEDIAN')", t=engine)
    with pytest.raises(StellarEvaluationError, match="THREAT_TRIAGE_SCORE: argument 1 'not json'"):
        run("THREAT_TRIAGE_SCORE('not json', t)", t=engine)
    with pytest.raises(StellarEvaluationError, match="THREAT_TRIAGE_SCORE: argument 2 null is not a threat triage"):
        run("THREAT_TRIAGE_SCORE('{}', null)")
    run("THREAT_TRIAGE_ADD(t, {'name': 'bad', 'rule': 'true', 'score': \"'high'\"})", t=engine)
    with pytest.raises(StellarEvaluationError, match="triage rule 'bad' scored 'high', which is not a number"):
        run("THREAT_TRIAGE_SCORE('{}', t)", t=engine)
    # a definition without both 'rule' and 'score' is skipped, as Metron does
    assert (
        len(
            json.loads(run("THREAT_TRIAGE_ADD(THREAT_TRIAGE_INIT(), {'rule': 'true'})"))["threatIntel"]["triageConfig"][
                "riskLevelRules"
            ]
        )
        == 0
    )
