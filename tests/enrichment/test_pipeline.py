"""The pipeline with a fake gateway: field order and dependencies, error records, and micro-batched
model calls that give exactly what unbatched calls give, in fewer requests."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from stellar_like import DEFAULT_REGISTRY
from enrichment import EnrichmentPipeline, Line, load_config, parse_config
from enrichment.batching import CallMemo, Deferred, DeferringGateway, ModelCall, resolve
from tests.cluster import REPO
from tests.enrichment.conftest import FakeGateway, score

APPLY = "MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host})"


def lines(*events: Any) -> list[Line]:
    return [Line(e if isinstance(e, str) else json.dumps(e), f"test:{i + 1}") for i, e in enumerate(events)]


def outputs(pipeline: EnrichmentPipeline, batch: list[Line]) -> tuple[list[dict], list[dict]]:
    done = pipeline.process(batch)
    return [json.loads(o.text) for o in done if o.ok], [json.loads(o.text) for o in done if not o.ok]


def test_fields_are_evaluated_in_order_and_see_earlier_ones() -> None:
    config = parse_config({"enrichments": {
        "host": "URL_TO_HOST(url)",
        "domain": "DOMAIN_REMOVE_SUBDOMAINS(host)",
        "size": "LENGTH(domain)",
        "url": "TO_UPPER(url)",  # an existing field is replaced in place
        "label": "FORMAT('%s has %d characters', domain, size)",
    }})
    ok, errors = outputs(EnrichmentPipeline(config), lines({"url": "http://mail.example.co.uk/x", "n": 1}))
    assert errors == []
    assert ok == [{"url": "HTTP://MAIL.EXAMPLE.CO.UK/X", "n": 1, "host": "mail.example.co.uk",
                   "domain": "example.co.uk", "size": 13, "label": "example.co.uk has 13 characters"}]
    assert list(ok[0]) == ["url", "n", "host", "domain", "size", "label"]


def test_malformed_lines_and_failing_expressions_go_to_errors_and_the_stream_goes_on() -> None:
    config = parse_config({"enrichments": {"n2": "n * 2", "inverse": "10 / n", "after": "'reached'"}})
    pipeline = EnrichmentPipeline(config)
    batch = lines({"n": 5}, '{"n": 1', "[1, 2]", {"n": 0}, '{"n": NaN}', {"n": "abc"}, {"n": 2})
    done = pipeline.process(batch)
    assert [o.ok for o in done] == [True, False, False, False, False, False, True]
    ok = [json.loads(o.text) for o in done if o.ok]
    assert ok == [{"n": 5, "n2": 10, "inverse": 2, "after": "reached"}, {"n": 2, "n2": 4, "inverse": 5, "after": "reached"}]
    errors = [json.loads(o.text) for o in done if not o.ok]
    bad_json, not_object, divide, nan, text = errors
    assert bad_json["error_type"] == "parser_error" and "not valid JSON" in bad_json["message"]
    assert bad_json["raw_message"] == '{"n": 1' and bad_json["source"] == "test:2"
    assert not_object["error_type"] == "parser_invalid" and "not an object" in not_object["message"]
    assert not_object["raw_message"] == "[1, 2]"
    assert divide["error_type"] == "enrichment_error" and divide["field"] == "inverse"
    assert divide["expression"] == "10 / n" and divide["position"]["line"] == 1
    assert "inverse" in divide["message"] and divide["raw_message"] == '{"n": 0}'
    assert nan["error_type"] == "parser_error"  # NaN is not JSON
    assert text["field"] == "n2" and text["source"] == "test:6"
    assert isinstance(text["timestamp"], int)
    assert (pipeline.stats.lines, pipeline.stats.enriched, pipeline.stats.errors) == (7, 2, 5)


def test_undecodable_line_and_value_without_json_form() -> None:
    pipeline = EnrichmentPipeline(parse_config({"enrichments": {"x": "TO_DOUBLE('NaN')"}}))
    done = pipeline.process([Line("{\"a\": \ufffd}", "f:1", "the line is not UTF-8 text"), *lines({"a": 1})])
    first, second = (json.loads(o.text) for o in done)
    assert first["error_type"] == "parser_error" and "UTF-8" in first["message"]
    assert second["error_type"] == "enrichment_error" and "'x'" in second["message"] and "JSON" in second["message"]


def test_threat_intel_failures_are_typed_as_such() -> None:
    config = parse_config({"enrichment": {"fieldMap": {"stellar": {"config": {"a": "1"}}}},
                           "threatIntel": {"fieldMap": {"stellar": {"config": {"b": "a / 0"}}}}})
    _, errors = outputs(EnrichmentPipeline(config), lines({}))
    assert errors[0]["error_type"] == "threat_intel_error" and errors[0]["field"] == "b"


def test_metron_semantics_drop_nulls_and_unfold_maps() -> None:
    config = parse_config({"enrichment": {"fieldMap": {"stellar": {"config": [
        "tmp := 'x'", "m := {'a': 1, 'b': tmp}", "gone := null", "keep := MAP_GET('a', m)", "tmp := null"]}}}})
    ok, _ = outputs(EnrichmentPipeline(config), lines({"gone": 1, "keep": 0, "raw": {"nested": True}}))
    assert ok == [{"keep": 1, "raw": {"nested": True}, "m.a": 1, "m.b": "x"}]


def test_our_semantics_keep_nulls_and_maps() -> None:
    config = parse_config({"enrichments": {"m": "{'a': 1}", "n": "null"}})
    ok, _ = outputs(EnrichmentPipeline(config), lines({}))
    assert ok == [{"m": {"a": 1}, "n": None}]


def test_parser_output_keeps_only_listed_fields() -> None:
    config = parse_config({"fieldTransformations": [{"transformation": "STELLAR", "output": ["b"],
                                                     "config": {"a": "1", "b": "a + 1"}}]})
    ok, _ = outputs(EnrichmentPipeline(config), lines({"orig": True}))
    assert ok == [{"orig": True, "b": 2}]


# -- micro-batching ------------------------------------------------------------------------------

def dga_config() -> Any:
    return parse_config({"enrichments": {
        "label": f"MAP_GET('is_malicious', {APPLY})",
        "length": f"MAP_GET('length', {APPLY})",  # the same call again: answered from the batch
        "alert": "label == 'malicious'",
        "second": "MAP_GET('echo', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('other', '7'), 'score', {'host': label, 'n': length}))",
        "nothing": "MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('missing'), {'host': host})",
    }})


def random_events(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    hosts = ["xkqwz.com", "google.com", "xyz.net", "bbc.co.uk", "example.org", None, 42]
    return [{"host": rng.choice(hosts), "i": i} for i in range(n)]


def test_batched_equals_unbatched_event_for_event() -> None:
    events = random_events(200)
    batched_gw, direct_gw = FakeGateway(), FakeGateway(batches=False)
    batched = EnrichmentPipeline(dga_config(), batched_gw).enrich(events)
    direct = EnrichmentPipeline(dga_config(), direct_gw, batch_calls=False).enrich(events)
    assert batched == direct
    assert batched[0]["second"] == {"host": batched[0]["label"], "n": batched[0]["length"]}
    assert all(e["nothing"] is None for e in batched)
    # Unbatched: two calls per event (the 'dga' ones) plus one to 'other'; batched: per field, one
    # request per model for the whole batch.
    assert len(direct_gw.applies) == 3 * 200 and direct_gw.batches == []
    assert len(batched_gw.batches) == 2 and batched_gw.applies == []
    assert [len(b) for b in batched_gw.batches] == [7, 7]  # the distinct hosts; the distinct (label, length)
    assert {tuple(sorted(r)) for r in batched_gw.batches[0]} == {("host",)}


def test_batched_equals_unbatched_with_rejected_rows() -> None:
    events = random_events(50, seed=5)
    config = dga_config()
    a = EnrichmentPipeline(config, FakeGateway(reject=["google.com"])).enrich(events)
    b = EnrichmentPipeline(config, FakeGateway(reject=["google.com"], batches=False), batch_calls=False).enrich(events)
    assert a == b
    assert any(e["host"] == "google.com" and e["label"] is None for e in a)


def test_calls_depending_on_earlier_answers_take_rounds_but_stay_exact() -> None:
    # Within one expression: the second call's arguments come from the first call's answer.
    expr = ("MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), "
            "{'host': MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))}))")
    config = parse_config({"enrichments": {"twice": expr,
                                           "each": "MAP(hosts, (h) -> MAP_GET('length', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': h})))"}})
    events = [{"host": f"x{i}", "hosts": [f"a{i}", f"bb{i}", "ccc"]} for i in range(20)]
    gw = FakeGateway()
    pipeline = EnrichmentPipeline(config, gw)
    got = pipeline.enrich(events)
    assert got == EnrichmentPipeline(config, FakeGateway(), batch_calls=False).enrich(events)
    assert got[3]["twice"] == "legit" and got[3]["each"] == [2, 3, 3]
    # 2 rounds for 'twice' and 3 for the three items of 'each', one request each.
    assert len(gw.batches) + len(gw.applies) == 5 and pipeline.stats.rounds == 5


def test_unbounded_rounds_fall_back_to_direct_calls() -> None:
    # TICK() differs on every evaluation, so every evaluation asks for a call not answered yet and
    # batching cannot settle. After max_rounds the field is evaluated with direct calls.
    registry = DEFAULT_REGISTRY.copy()
    ticks = iter(range(1, 1000))

    @registry.function("TICK", description="A new number each call.", returns="the number", pure=False)
    def tick() -> int:
        return next(ticks)

    gw = FakeGateway()
    config = parse_config({"enrichments": {"n": "MAP_GET('echo', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'t': TICK()}))"}},
                          registry=registry)
    pipeline = EnrichmentPipeline(config, gw, max_rounds=3)
    got = pipeline.enrich([{"host": "h"}])
    assert got == [{"host": "h", "n": {"t": 4}}]  # 3 deferred rounds, then one direct evaluation
    assert [a["t"] for a in gw.applies] == [1, 2, 3, 4] and pipeline.stats.rounds == 3


def test_endpoint_is_looked_up_once_per_model_and_batch() -> None:
    gw = FakeGateway()
    EnrichmentPipeline(dga_config(), gw).enrich(random_events(100))
    assert gw.lookups == 3  # 'dga', ('other', '7') and 'missing', for 100 events and 3 rounds


def test_no_gateway_means_maas_functions_give_null() -> None:
    config = parse_config({"enrichments": {"x": f"MAP_GET('a', {APPLY})"}})
    ok, errors = outputs(EnrichmentPipeline(config, None), lines({"host": "a"}))
    assert ok == [{"host": "a", "x": None}] and errors == []  # as Metron's functions do (and a warning)


def test_resolve_falls_back_row_by_row_when_apply_batch_breaks() -> None:
    class Broken(FakeGateway):
        mode = "raise"

        def apply_batch(self, endpoint, function, rows):  # type: ignore[no-untyped-def]
            self.batches.append(list(rows))
            if self.mode == "raise":
                raise RuntimeError("boom")
            return [None]  # wrong length

    for mode in ("raise", "short"):
        gw = Broken()
        gw.mode = mode
        endpoint = {"name": "dga", "version": "1", "url": "http://x"}
        calls = [ModelCall.of(endpoint, None, {"host": h}) for h in ("a", "b", "xc")]
        answers = resolve(gw, calls)
        assert [answers[c.key]["is_malicious"] for c in calls] == ["legit", "legit", "malicious"]
        assert len(gw.batches) == 1 and len(gw.applies) == 3


def test_resolve_groups_by_model_version_and_function_not_by_instance() -> None:
    gw = FakeGateway()
    a1 = {"name": "dga", "version": "1", "url": "http://one"}
    a2 = {"name": "dga", "version": "1", "url": "http://two"}
    b = {"name": "dga", "version": "2", "url": "http://one"}
    calls = [ModelCall.of(a1, None, {"host": "1"}), ModelCall.of(a2, None, {"host": "2"}),
             ModelCall.of(b, None, {"host": "3"}), ModelCall.of(a1, "score", {"host": "4"}),
             ModelCall.of({"url": "http://bare"}, None, {"host": "5"})]
    assert calls[0].group == calls[1].group and len({c.group for c in calls}) == 4
    answers = resolve(gw, calls)
    assert len(answers) == 5 and len(gw.batches) == 1 and len(gw.applies) == 3
    assert answers[calls[3].key]["function"] == "score"


def test_deferring_gateway_answers_from_memo_or_defers() -> None:
    memo = CallMemo()
    gw = DeferringGateway(FakeGateway(), memo)
    endpoint = gw.get_endpoint("dga")
    assert endpoint is not None
    with pytest.raises(Deferred) as info:
        gw.apply(endpoint, None, {"host": "a"})
    assert not isinstance(info.value, Exception)  # MAAS_MODEL_APPLY's guard must not swallow it
    memo.update({info.value.call.key: score({"host": "a"})})
    other_instance = {**endpoint, "url": "http://elsewhere"}
    assert gw.apply(other_instance, None, {"host": "a"}) == score({"host": "a"})
    # Types matter: 1 and '1' are different calls.
    assert ModelCall.of(endpoint, None, {"n": 1}).key != ModelCall.of(endpoint, None, {"n": "1"}).key


def test_the_dga_example_config_on_its_events_batched_and_not() -> None:
    config = load_config(REPO / "examples" / "dga" / "enrichment.json")
    text = (REPO / "examples" / "dga" / "events.jsonl").read_text().splitlines()
    batch = [Line(t, f"events.jsonl:{i + 1}") for i, t in enumerate(text)]
    gw = FakeGateway()
    batched = EnrichmentPipeline(config, gw).process(batch)
    direct = EnrichmentPipeline(config, FakeGateway(batches=False), batch_calls=False).process(batch)
    assert [o.ok for o in batched] == [o.ok for o in direct] and [o.ok for o in batched].count(False) == 1
    assert [o.text for o in batched if o.ok] == [o.text for o in direct if o.ok]
    assert len(gw.batches) == 1 and gw.applies == []  # one request for the whole file
    events = [json.loads(o.text) for o in batched if o.ok]
    assert all("is_malicious" in e and "full_hostname" in e for e in events)
    assert {e["domain_without_subdomains"] for e in events if e.get("is_alert")} == {
        e["domain_without_subdomains"] for e in events if e["domain_without_subdomains"].startswith("x")}
