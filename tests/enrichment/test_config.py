"""The enrichment config: the accepted shapes (ours, Metron's enrichment config, Metron's parser
field transformations), order, and errors that name the field and the position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enrichment import ConfigError, load_config, parse_config
from tests.cluster import REPO


def test_simple_shape_keeps_order_and_defaults() -> None:
    config = parse_config({"enrichments": {"b": "1", "a": "b + 1", "c": "a * 2"}})
    assert config.fields == ["b", "a", "c"]
    assert (config.shape, config.nulls, config.maps, config.keep) == ("enrichments", "keep", "keep", None)
    assert not config.calls_models
    assert [a.where for a in config.assignments] == ["enrichments.b", "enrichments.a", "enrichments.c"]


def test_list_form_allows_setting_a_field_again() -> None:
    config = parse_config({"enrichments": ["tmp := 2", "x := tmp * 3", "tmp := null"]})
    assert config.fields == ["tmp", "x", "tmp"]
    assert config.assignments[1].expression == "tmp * 3"


def test_metron_enrichment_shape_with_groups_and_threat_intel() -> None:
    config = parse_config({
        "index": "squid",
        "enrichment": {
            "fieldMap": {"stellar": {"config": {
                "host": "URL_TO_HOST(url)",
                "group1": {"domain": "DOMAIN_REMOVE_SUBDOMAINS(host)"},
                "group2": ["tmp := LENGTH(domain)", "long := tmp > 10", "tmp := null"],
            }}},
            "fieldToTypeMap": {},
        },
        "threatIntel": {"fieldMap": {"stellar": {"config": {"is_alert": "long"}}},
                        "triageConfig": {"riskLevelRules": [{"rule": "long", "score": 10}], "aggregator": "MAX"}},
    })
    assert config.fields == ["host", "domain", "tmp", "long", "tmp", "is_alert"]
    assert [a.stage for a in config.assignments][-1] == "threat_intel"
    assert (config.shape, config.nulls, config.maps) == ("metron-enrichment", "drop", "unfold")
    assert any("triageConfig" in w for w in config.warnings)


def test_metron_parser_field_transformations_with_output() -> None:
    config = parse_config({"fieldTransformations": [{
        "transformation": "STELLAR", "output": ["full_hostname", "is_alert"],
        "config": {"full_hostname": "URL_TO_HOST(url)", "tmp": "1", "is_alert": "tmp == 1"}}]})
    assert config.fields == ["full_hostname", "tmp", "is_alert"]
    assert config.keep == frozenset({"full_hostname", "is_alert"})
    assert config.nulls == "drop"


def test_policies_can_be_overridden() -> None:
    config = parse_config({"enrichment": {"fieldMap": {"stellar": {"config": {"a": "1"}}}}, "nulls": "keep", "maps": "keep"})
    assert (config.nulls, config.maps) == ("keep", "keep")
    with pytest.raises(ConfigError, match="nulls"):
        parse_config({"enrichments": {"a": "1"}, "nulls": "sometimes"})


def test_parse_error_names_field_and_position() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"enrichments": {"ok": "1", "is_alert": "if x == 1 then true els false"}})
    error = info.value
    assert error.where == "enrichments.is_alert"
    assert "'is_alert'" in str(error) and "column" in str(error)
    assert error.column is not None and error.column > 1
    rendered = error.render().splitlines()
    assert rendered[-2].strip() == "if x == 1 then true els false"
    assert rendered[-1].index("^") - 2 == error.column - 1  # the caret is under the position


def test_unknown_function_is_a_startup_error() -> None:
    with pytest.raises(ConfigError, match=r"enrichment\.fieldMap\.stellar\.config\.x.*NOT_A_FUNCTION"):
        parse_config({"enrichment": {"fieldMap": {"stellar": {"config": {"x": "NOT_A_FUNCTION(1)"}}}}})


def test_list_statement_errors() -> None:
    with pytest.raises(ConfigError, match=r"enrichments\[1\]"):
        parse_config({"enrichments": ["a := 1", "b = 2"]})
    with pytest.raises(ConfigError, match=r"field 'a' \(enrichments\[0\]\)"):
        parse_config({"enrichments": ["a := (1"]})


@pytest.mark.parametrize("data, message", [
    ([], "must be a JSON object"),
    ({}, "no enrichments"),
    ({"enrichments": {"a": "1"}, "enrichment": {}}, "not several"),
    ({"enrichments": {"a": 1}}, r"enrichments\.a: must be a Stellar expression"),
    ({"enrichments": {"a": {"b": "1"}}}, r"enrichments\.a: must be a Stellar expression"),
    ({"enrichments": "a"}, "must be a map"),
    ({"enrichments": {"a": "1"}, "typo": 1}, "unknown key"),
    ({"enrichment": {"fieldMap": {"geo": ["ip_dst_addr"]}}}, r"'geo' enrichment adapter is not supported"),
    ({"fieldTransformations": [{"transformation": "REMOVE", "input": ["a"]}]}, "only 'STELLAR'"),
])
def test_shape_errors(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_load_config_rejects_duplicate_fields_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"enrichments": {"a": "1", "a": "2"}}')
    with pytest.raises(ConfigError, match="'a' appears twice"):
        load_config(path)
    path.write_text('{"enrichments": ')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.json")


def test_the_dga_example_config_compiles() -> None:
    config = load_config(REPO / "examples" / "dga" / "enrichment.json")
    assert config.fields == ["full_hostname", "domain_without_subdomains", "is_malicious", "dga_probability", "is_alert"]
    assert config.calls_models
    assert json.loads((REPO / "examples" / "dga" / "enrichment.json").read_text())["enrichment"]["fieldMap"]["stellar"]


def test_metron_maas_readme_parser_config_as_is() -> None:
    # The squid parser config of Metron's MaaS README, verbatim but for whitespace.
    config = parse_config(json.loads("""{
      "parserClassName": "org.apache.metron.parsers.GrokParser",
      "sensorTopic": "squid",
      "parserConfig": {"grokPath": "/patterns/squid", "patternLabel": "SQUID_DELIMITED", "timestampField": "timestamp"},
      "fieldTransformations" : [{
          "transformation" : "STELLAR",
          "output" : [ "full_hostname", "domain_without_subdomains", "is_malicious", "is_alert" ],
          "config" : {
            "full_hostname" : "URL_TO_HOST(url)",
            "domain_without_subdomains" : "DOMAIN_REMOVE_SUBDOMAINS(full_hostname)",
            "is_malicious" : "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host' : domain_without_subdomains}))",
            "is_alert" : "if is_malicious == 'malicious' then 'true' else null"
          }
      }]
    }"""))
    assert config.fields == ["full_hostname", "domain_without_subdomains", "is_malicious", "is_alert"]
    assert config.shape == "metron-parser" and config.calls_models
