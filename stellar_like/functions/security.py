"""Security functions: DOMAIN_TYPOSQUAT, FUZZY_SCORE, FUZZY_LANGS, TLSH_DIST and THREAT_TRIAGE_*.

DOMAIN_TYPOSQUAT generates the candidates of Metron's eleven strategies (addition, bitsquatting,
homoglyph, hyphenation, insertion, omission, repetition, replacement, subdomain, transposition,
vowel swap), which follow dnstwist's fuzzers. The keyboard-neighbour and look-alike character
tables come from the ``dnstwist`` package itself; the strategies are applied here as Metron
applies them, to the bare domain (no TLD), so ten of the strategies give Metron's candidates; the
homoglyph strategy uses dnstwist's current look-alike tables (plus the few two-letter look-alikes
Metron also tries), so its candidates are most of Metron's and more.

THREAT_TRIAGE_* build and run a triage engine: rules are Stellar conditions with a score (a
number or an expression) and an optional reason; scoring a message evaluates every rule against
it and aggregates the scores of those that fire with MAX, MIN, SUM, MEAN or POSITIVE_MEAN.
"""

from __future__ import annotations

import copy
import functools
import locale
import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from stellar_like.context import Context
from stellar_like.errors import StellarError, StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import is_number, java_str, truthy
from stellar_like.tables import render_table

# ---- typosquatting ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[list[dict[str, str]], dict[str, list[str]]]:
    from dnstwist import Fuzzer  # the tables are class attributes; nothing is resolved or fetched

    keyboards = [dict(Fuzzer.qwerty), dict(Fuzzer.qwertz), dict(Fuzzer.azerty)]
    glyphs: dict[str, list[str]] = {}
    for table in (Fuzzer.glyphs_ascii, Fuzzer.glyphs_unicode):
        for key, values in table.items():
            if len(key) == 1:
                glyphs.setdefault(key, []).extend(v for v in values if v not in glyphs.get(key, []))
    for key, value in Fuzzer.latin_to_cyrillic.items():
        if value not in glyphs.setdefault(key, []):
            glyphs[key].append(value)
    for key, values in _ASCII_LOOKALIKES.items():
        glyphs.setdefault(key, []).extend(v for v in values if v not in glyphs[key])
    return keyboards, glyphs


# Letter pairs that read as one letter, which Metron's homoglyph strategy also tries.
_ASCII_LOOKALIKES = {"b": ("ib",), "d": ("di",), "h": ("ih",), "k": ("ik", "lk"), "m": ("rr",)}


def _addition(d: str) -> set[str]:
    return {d + chr(c) for c in range(ord("a"), ord("z") + 1)}


def _bitsquatting(d: str) -> set[str]:
    out = set()
    for i, ch in enumerate(d):
        for bit in range(8):
            flipped = ord(ch) ^ (1 << bit)
            if 48 <= flipped <= 57 or 97 <= flipped <= 122 or flipped == 45:
                out.add(d[:i] + chr(flipped) + d[i + 1 :])
    return out


def _is_ace(d: str) -> bool:
    lowered = d.lower()
    return lowered.startswith("xn--") or ".xn--" in lowered


def _homoglyph(d: str) -> set[str]:
    _, glyphs = _tables()
    out: set[str] = set()
    if not d:
        return out
    if _is_ace(d):
        try:
            d = d.encode("ascii").decode("idna")
        except UnicodeError:
            return out
    n = len(d)
    for width in range(n):
        for start in range(n - width + 1):
            window = d[start : start + width]
            for ch in window:
                for glyph in glyphs.get(ch, ()):
                    candidate = d[:start] + window.replace(ch, glyph) + d[start + width :]
                    out.add(candidate)
                    if not _is_ace(candidate):
                        try:
                            ascii_form = candidate.encode("idna").decode("ascii")
                        except UnicodeError:
                            continue
                        if ascii_form != candidate:
                            out.add(ascii_form)
    return out


def _hyphenation(d: str) -> set[str]:
    return {d[:i] + "-" + d[i:] for i in range(1, len(d))}


def _insertion(d: str) -> set[str]:
    keyboards, _ = _tables()
    out = set()
    for i in range(1, len(d) - 1):
        for keyboard in keyboards:
            for c in keyboard.get(d[i], ""):
                out.add(d[:i] + c + d[i] + d[i + 1 :])
                out.add(d[:i] + d[i] + c + d[i + 1 :])
    return out


def _omission(d: str) -> set[str]:
    return {d[:i] + d[i + 1 :] for i in range(len(d))}


def _repetition(d: str) -> set[str]:
    return {d[:i] + c + c + d[i + 1 :] for i, c in enumerate(d) if c.isalpha()}


def _replacement(d: str) -> set[str]:
    keyboards, _ = _tables()
    return {d[:i] + c + d[i + 1 :] for i in range(len(d)) for kb in keyboards for c in kb.get(d[i], "")}


def _subdomain(d: str) -> set[str]:
    return {d[:i] + "." + d[i:] for i in range(1, len(d)) if d[i] not in "-." and d[i - 1] not in "-."}


def _transposition(d: str) -> set[str]:
    return {d[:i] + d[i + 1] + d[i] + d[i + 2 :] for i in range(len(d) - 1) if d[i] != d[i + 1]}


def _vowel_swap(d: str) -> set[str]:
    return {d[:i] + v + d[i + 1 :] for i, c in enumerate(d) if c in "aeiou" for v in "aeiou"}


TYPOSQUAT_STRATEGIES: dict[str, Callable[[str], set[str]]] = {
    "Addition": _addition,
    "Bitsquatting": _bitsquatting,
    "Homoglyph": _homoglyph,
    "Hyphenation": _hyphenation,
    "Insertion": _insertion,
    "Omission": _omission,
    "Repetition": _repetition,
    "Replacement": _replacement,
    "Subdomain": _subdomain,
    "Transposition": _transposition,
    "Vowel-swap": _vowel_swap,
}


def typosquat_candidates(domain: str) -> set[str]:
    """Every candidate of every strategy, without the domain itself."""
    out: set[str] = set()
    for strategy in TYPOSQUAT_STRATEGIES.values():
        candidates = strategy(domain)
        candidates.discard(domain)
        out |= candidates
    return out


@stellar_function(
    "DOMAIN_TYPOSQUAT",
    description="Generates potential typosquatted domains of a domain with dnstwist's strategies (addition, "
    "bitsquatting, homoglyph, hyphenation, insertion, omission, repetition, replacement, subdomain, "
    "transposition, vowel swap). Pass the domain without subdomains or TLD.",
    params=["domain - The domain without subdomains or TLD, e.g. 'google'"],
    returns="A set of potential typosquatted domains, or null for null input",
)
def domain_typosquat(domain: Any) -> set[str] | None:
    if domain is None:
        return None
    return typosquat_candidates(A.string(1, domain))


# ---- fuzzy matching ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _language_tags() -> tuple[str, ...]:
    tags: set[str] = set()
    for name in locale.locale_alias.values():
        base = name.split(".")[0].split("@")[0]
        if not base or base in ("C", "POSIX"):
            continue
        tags.add(base.replace("_", "-"))
        tags.add(base.split("_")[0])
    return tuple(sorted(tags))


@stellar_function(
    "FUZZY_LANGS",
    description="Lists the IETF BCP 47 language tags (en, fr, de-DE...) FUZZY_SCORE accepts.",
    params=[],
    returns="A list of language tags",
)
def fuzzy_langs() -> list[str]:
    return list(_language_tags())


def fuzzy_score(term: str, query: str) -> int:
    """The fuzzy score of commons-text's ``FuzzyScore``: one point per query character found in order in
    the term, two bonus points when it directly follows the previous match.

    Written here: the algorithm is a single loop; the fuzzy-matching libraries (rapidfuzz...) score
    differently (edit distances, ratios), and Metron's results must be reproduced exactly.
    """
    term_lower, query_lower = term.lower(), query.lower()
    score = 0
    term_index = 0
    previous = -2
    for query_char in query_lower:
        while term_index < len(term_lower):
            matched = term_lower[term_index] == query_char
            if matched:
                score += 1
                if previous + 1 == term_index:
                    score += 2
                previous = term_index
            term_index += 1
            if matched:
                break
    return score


@stellar_function(
    "FUZZY_SCORE",
    description="Returns the fuzzy score of a query against a term: one point for every query character "
    "matched in order, two bonus points for consecutive matches; a higher score means more similar.",
    params=[
        "string - The term that should be matched against",
        "string - The query to match against the term",
        "string - The IETF BCP 47 language tag (en, fr, de...; see FUZZY_LANGS)",
    ],
    returns="The score as an integer (0 if the term or query is empty or not a string)",
)
def fuzzy_score_(term: Any, query: Any, language: Any) -> int:
    if not isinstance(term, str) or not isinstance(query, str) or not isinstance(language, str):
        return 0
    if language not in _language_tags():
        raise argument_error(3, language, "is not a known IETF BCP 47 language tag (see FUZZY_LANGS)")
    if not term or not query:
        return 0
    return fuzzy_score(term, query)


# ---- TLSH -----------------------------------------------------------------------------------------------


@stellar_function(
    "TLSH_DIST",
    description="Returns the distance between two TLSH hashes (computed with the same parameters); roughly a "
    "Hamming distance, so 0 is very similar.",
    params=[
        "hash1 - The first TLSH hash",
        "hash2 - The second TLSH hash",
        "includeLength? - Whether the data lengths count in the distance; default false",
    ],
    returns="The distance as an integer; -1 if either hash is null",
)
def tlsh_dist(hash1: Any, hash2: Any, include_length: Any = None) -> int:
    import tlsh

    if hash1 is None or hash2 is None:
        return -1
    first, second = A.string(1, hash1), A.string(2, hash2)
    if first == second:
        return 0
    length = False if include_length is None else bool(include_length)
    measure = tlsh.diff if length else tlsh.diffxlen
    try:
        distance = int(measure(_tlsh_form(first), _tlsh_form(second)))
    except (ValueError, TypeError) as exc:
        raise argument_error(1, hash1, f"and {hash2!r} are not comparable TLSH hashes ({exc})") from None
    if distance < 0:
        raise argument_error(1, hash1, f"and {hash2!r} are not comparable TLSH hashes")
    return distance


def _tlsh_form(text: str) -> str:
    return text if text[:2].upper() == "T1" else "T1" + text


# ---- threat triage ---------------------------------------------------------------------------------------

AGGREGATORS = ("MAX", "MIN", "SUM", "MEAN", "POSITIVE_MEAN")


def _negative_trumps(config: Mapping[str, Any]) -> bool:
    value = config.get("negativeValuesTrump")
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)


def aggregate(name: str, scores: list[float], config: Mapping[str, Any]) -> float:
    """Metron's triage aggregation; a negative score makes the result -Infinity unless
    ``negativeValuesTrump`` is false in the aggregation config."""
    trump = _negative_trumps(config)
    if name == "POSITIVE_MEAN":
        positive = []
        for score in scores:
            if score < 0 and trump:
                return -math.inf
            if score > 0:
                positive.append(score)
        return sum(positive) / len(positive) if positive else 0.0
    if not scores:
        return 0.0
    if trump and any(s < 0 for s in scores):
        return -math.inf
    if name == "MAX":
        return max([0.0, *scores])
    if name == "MIN":
        return min(scores)
    total = sum(scores)
    return total if name == "SUM" else total / len(scores)


def _empty_config() -> dict[str, Any]:
    return {
        "enrichment": {"fieldMap": {}, "fieldToTypeMap": {}, "config": {}},
        "threatIntel": {
            "fieldMap": {},
            "fieldToTypeMap": {},
            "config": {},
            "triageConfig": {"riskLevelRules": [], "aggregator": "MAX", "aggregationConfig": {}},
        },
        "configuration": {},
    }


def _triage(config: dict[str, Any]) -> dict[str, Any]:
    intel = config.setdefault("threatIntel", {})
    if not isinstance(intel, dict):
        raise ValueError("'threatIntel' is not an object")
    intel.setdefault("config", {})
    triage = intel.setdefault("triageConfig", {})
    if not isinstance(triage, dict):
        raise ValueError("'threatIntel.triageConfig' is not an object")
    triage.setdefault("riskLevelRules", [])
    triage.setdefault("aggregator", "MAX")
    triage.setdefault("aggregationConfig", {})
    return triage


class ThreatTriageEngine:
    """A set of triage rules and an aggregator, scoring messages."""

    __slots__ = ("config", "_compiled")

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config if config is not None else _empty_config()
        _triage(self.config)
        self._compiled: dict[str, Any] = {}

    @property
    def rules(self) -> list[dict[str, Any]]:
        return list(_triage(self.config)["riskLevelRules"])

    @property
    def aggregator(self) -> str:
        return str(_triage(self.config)["aggregator"]).upper()

    def _compile(self, text: str) -> Any:
        from stellar_like.evaluator import compile as compile_expression

        compiled = self._compiled.get(text)
        if compiled is None:
            compiled = self._compiled[text] = compile_expression(text)
        return compiled

    def score(self, message: Mapping[str, Any], context: Context | None) -> dict[str, Any]:
        intel = self.config.get("threatIntel", {})
        variables = {**dict(intel.get("config", {})), **dict(self.config.get("configuration", {})), **message}
        fired: list[dict[str, Any]] = []
        scores: list[float] = []
        for rule in self.rules:
            label = rule.get("name") or rule.get("rule")
            try:
                if not truthy(self._compile(str(rule["rule"])).evaluate(variables, context)):
                    continue
                reason = rule.get("reason")
                reason_value = None if reason is None else self._compile(str(reason)).evaluate(variables, context)
                score_value = self._compile(str(rule["score"])).evaluate(variables, context)
            except StellarError as exc:
                raise StellarEvaluationError(f"triage rule {label!r} failed: {exc}") from None
            if not is_number(score_value):
                raise StellarEvaluationError(f"triage rule {label!r} scored {score_value!r}, which is not a number")
            entry: dict[str, Any] = {}
            for key in ("name", "rule"):
                if rule.get(key) is not None:
                    entry[key] = rule[key]
            entry["score"] = float(score_value)
            if reason_value is not None:
                entry["reason"] = java_str(reason_value)
            if rule.get("comment") is not None:
                entry["comment"] = rule["comment"]
            fired.append(entry)
            scores.append(float(score_value))
        triage = _triage(self.config)
        total = aggregate(self.aggregator, scores, triage.get("aggregationConfig") or {})
        return {"score": total, "rules": fired, "aggregator": self.aggregator}

    def __repr__(self) -> str:
        return f"ThreatTriage{{{len(self.rules)} rule(s)}}"


def _config_of(index: int, value: Any) -> dict[str, Any]:
    """The configuration an engine holds (shared, so changes reach the engine) or one parsed from JSON."""
    if isinstance(value, ThreatTriageEngine):
        return value.config
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise argument_error(index, value, f"is not a JSON configuration ({exc})") from None
        if not isinstance(parsed, dict):
            raise argument_error(index, value, "is not a JSON object")
        try:
            _triage(parsed)
        except ValueError as exc:
            raise argument_error(index, value, f"is not a triage configuration: {exc}") from None
        return parsed
    if isinstance(value, Mapping):
        config = copy.deepcopy(dict(value))
        _triage(config)
        return config
    raise argument_error(index, value, "is not a threat triage engine or a JSON configuration")


def _to_json(config: Mapping[str, Any]) -> str:
    return orjson.dumps(config, option=orjson.OPT_INDENT_2).decode("utf-8")


@stellar_function(
    "THREAT_TRIAGE_INIT",
    description="Creates a threat triage engine to run triage rules.",
    params=["config? - The configuration as JSON (a sensor enrichment configuration with threatIntel.triageConfig)"],
    returns="A threat triage engine",
    pure=False,
)
def threat_triage_init(config: Any = None) -> ThreatTriageEngine:
    if config is None:
        return ThreatTriageEngine()
    if not isinstance(config, str):
        raise argument_error(1, config, "is not a JSON configuration")
    return ThreatTriageEngine(_config_of(1, config))


@stellar_function(
    "THREAT_TRIAGE_SCORE",
    description="Scores a message with the triage rules of an engine.",
    params=["message - The message, as a JSON string or a map", "engine - The engine made by THREAT_TRIAGE_INIT"],
    returns="A map: score (the aggregate), aggregator, and rules (each rule that fired, with its score and reason)",
    context=True,
    pure=False,
)
def threat_triage_score(context: Context, message: Any, engine: Any) -> dict[str, Any]:
    if message is None:
        raise argument_error(1, message, "is not a message")
    if isinstance(message, str):
        try:
            parsed = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise argument_error(1, message, f"is not a JSON message ({exc})") from None
    else:
        parsed = message
    if not isinstance(parsed, Mapping):
        raise argument_error(1, message, "is not a JSON object")
    if not isinstance(engine, ThreatTriageEngine):
        raise argument_error(2, engine, "is not a threat triage engine (see THREAT_TRIAGE_INIT)")
    return engine.score(parsed, context)


@stellar_function(
    "THREAT_TRIAGE_CONFIG",
    description="Exports the configuration used by a threat triage engine.",
    params=["engine - The engine made by THREAT_TRIAGE_INIT"],
    returns="The configuration as JSON",
)
def threat_triage_config(engine: Any) -> str:
    if not isinstance(engine, ThreatTriageEngine):
        raise argument_error(1, engine, "is not a threat triage engine (see THREAT_TRIAGE_INIT)")
    return _to_json(engine.config)


@stellar_function(
    "THREAT_TRIAGE_PRINT",
    description="Shows the triage rules of an engine or configuration as a table.",
    params=["config - A threat triage engine, or a configuration as JSON"],
    returns="The rules as a text table, followed by the aggregator; empty if there are no rules",
)
def threat_triage_print(config: Any) -> str:
    triage = _triage(_config_of(1, config))
    rules = triage.get("riskLevelRules") or []
    rows = [
        [
            str(r.get("name") or ""),
            str(r.get("comment") or ""),
            str(r.get("rule", "")),
            java_str(r.get("score")),
            str(r.get("reason") or ""),
        ]
        for r in rules
    ]
    text = render_table(["Name", "Comment", "Triage Rule", "Score", "Reason"], rows)
    if rules:
        text += f"Aggregation: {str(triage.get('aggregator', 'MAX')).upper()}"
    return text


def _rule(index: int, raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        raise argument_error(index, raw, "is not a triage rule (a map with 'rule' and 'score')")
    if "rule" not in raw or "score" not in raw:
        return None  # as in Metron, a definition without both is skipped
    rule = raw["rule"]
    score = raw["score"]
    if not isinstance(rule, str):
        raise argument_error(index, raw, "has a 'rule' that is not a Stellar expression string")
    if not (is_number(score) or isinstance(score, str)):
        raise argument_error(index, raw, "has a 'score' that is neither a number nor an expression")
    from stellar_like.evaluator import compile as compile_expression

    for key in ("rule", "score", "reason"):
        text = raw.get(key)
        if isinstance(text, str):
            try:
                compile_expression(text)
            except StellarError as exc:
                raise argument_error(index, raw, f"has a '{key}' that is not valid Stellar: {exc}") from None
    out: dict[str, Any] = {"rule": rule, "score": java_str(score) if is_number(score) else score}
    for key in ("name", "comment", "reason"):
        if raw.get(key) is not None:
            out[key] = str(raw[key])
    return out


@stellar_function(
    "THREAT_TRIAGE_ADD",
    description="Adds threat triage rules. Each rule is a map with 'rule' (a Stellar condition) and 'score' "
    "(a number or an expression), and optionally 'name', 'comment' and 'reason' (an expression).",
    params=[
        "sensorConfig - A threat triage engine (changed in place) or a configuration as JSON",
        "triageRules - A rule map, or a list of them",
    ],
    returns="The resulting configuration as JSON",
    pure=False,
)
def threat_triage_add(config: Any, rules: Any) -> str:
    target = _config_of(1, config)
    if isinstance(rules, Mapping):
        definitions = [rules]
    elif isinstance(rules, (list, tuple)):
        definitions = list(rules)
    else:
        raise argument_error(2, rules, "is not a triage rule map or a list of them")
    new_rules = [r for r in (_rule(2, d) for d in definitions if d is not None) if r is not None]
    triage = _triage(target)
    triage["riskLevelRules"] = list(triage["riskLevelRules"]) + new_rules
    if isinstance(config, ThreatTriageEngine):
        config._compiled.clear()
    return _to_json(target)


@stellar_function(
    "THREAT_TRIAGE_REMOVE",
    description="Removes threat triage rules, given by their rule expression or their name.",
    params=[
        "sensorConfig - A threat triage engine (changed in place) or a configuration as JSON",
        "rules - A list of rule expressions or rule names to remove",
    ],
    returns="The resulting configuration as JSON",
    pure=False,
)
def threat_triage_remove(config: Any, rules: Any) -> str:
    target = _config_of(1, config)
    names = set() if rules is None else {str(r) for r in A.sequence(2, rules)}
    triage = _triage(target)
    triage["riskLevelRules"] = [
        r
        for r in triage["riskLevelRules"]
        if r.get("rule") not in names and (r.get("name") is None or r.get("name") not in names)
    ]
    return _to_json(target)


@stellar_function(
    "THREAT_TRIAGE_SET_AGGREGATOR",
    description="Sets the aggregator of the triage scores: MIN, MAX, MEAN, SUM or POSITIVE_MEAN.",
    params=[
        "sensorConfig - A threat triage engine (changed in place) or a configuration as JSON",
        "aggregator - The aggregator",
        "aggregatorConfig? - The aggregator's configuration, e.g. {'negativeValuesTrump': false}",
    ],
    returns="The resulting configuration as JSON",
    pure=False,
)
def threat_triage_set_aggregator(config: Any, aggregator: Any, aggregator_config: Any = None) -> str:
    target = _config_of(1, config)
    name = A.string(2, aggregator).upper()
    if name not in AGGREGATORS:
        raise argument_error(2, aggregator, f"is not an aggregator ({', '.join(AGGREGATORS)})")
    triage = _triage(target)
    triage["aggregator"] = name
    if aggregator_config is not None:
        triage["aggregationConfig"] = dict(A.mapping(3, aggregator_config))
    return _to_json(target)
