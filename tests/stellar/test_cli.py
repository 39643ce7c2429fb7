"""The ``stellar`` command line: eval, functions, describe."""

from __future__ import annotations

import json

from click.testing import CliRunner

from stellar_like.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_prints_json() -> None:
    assert run("eval", "TO_UPPER(name)", "--var", "name=casey") == (0, '"CASEY"\n', "")
    code, out, _ = run("eval", "a + b", "--vars-json", '{"a": 1, "b": 2.5}')
    assert code == 0 and json.loads(out) == 3.5
    code, out, _ = run("eval", "SPLIT(s, ',')", "--var", "s=a,b")
    assert json.loads(out) == ["a", "b"]
    code, out, _ = run("eval", "{'n': n, 'l': l, 'nothing': null}", "--var", "n=5", "--var", "l=[1, 2]")
    assert json.loads(out) == {"n": 5, "l": [1, 2], "nothing": None}


def test_var_overrides_vars_json() -> None:
    code, out, _ = run("eval", "x", "--vars-json", '{"x": 1}', "--var", "x=2")
    assert out.strip() == "2"


def test_eval_non_json_values() -> None:
    assert run("eval", "1 / 0.0")[1].strip() == "Infinity"
    assert run("eval", "(x) -> x")[1].startswith('"<lambda')


def test_eval_parse_error_goes_to_stderr_with_position() -> None:
    code, out, err = run("eval", "1 +")
    assert code == 2 and out == ""
    assert "unexpected end of expression" in err and "line 1, column 4" in err
    assert "   ^" in err


def test_eval_evaluation_error() -> None:
    code, _, err = run("eval", "ABS('abc')")
    assert code == 2 and "ABS: argument 1 'abc' is not a number" in err


def test_eval_bad_options() -> None:
    assert run("eval", "1", "--var", "novalue")[0] == 2
    assert run("eval", "1", "--vars-json", "{bad")[0] == 2
    assert run("eval", "1", "--vars-json", "[1]")[0] == 2


def test_functions_lists_names_with_summaries() -> None:
    code, out, _ = run("functions")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("TO_UPPER ") and "uppercase" in line for line in lines)
    assert len(lines) >= 80
    code, out, _ = run("functions", "domain_")
    assert [line.split()[0] for line in out.splitlines()] == [
        "DOMAIN_REMOVE_SUBDOMAINS",
        "DOMAIN_REMOVE_TLD",
        "DOMAIN_TO_TLD",
        "DOMAIN_TYPOSQUAT",
    ]


def test_describe() -> None:
    code, out, _ = run("describe", "map_get")
    assert code == 0 and out.startswith("MAP_GET(key, map, default?)") and "desc:" in out
    code, _, err = run("describe", "NOPE")
    assert code == 2 and "unknown function NOPE" in err


def test_describe_suggests_close_names() -> None:
    code, _, err = run("describe", "to_uper")
    assert code == 2 and "unknown function TO_UPPER" not in err
    assert "unknown function TO_UPER; did you mean TO_UPPER" in err
    code, _, err = run("describe", "DOMAIN")  # a part of names
    assert code == 2 and "did you mean" in err and "DOMAIN_TO_TLD" in err


def test_function_summaries_end_at_a_sentence_end() -> None:
    _, out, _ = run("functions")
    summaries = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()}
    assert summaries["DAY_OF_WEEK"] == "The number of the day within the week (UTC); Sunday is 1, Saturday 7."
    assert summaries["DATE_FORMAT"].endswith("with a Java date format.")  # not cut inside its parentheses
    assert summaries["FILTER"].endswith("gives ['foo'].")  # not cut at "e.g."
    assert all(s.endswith((".", "!", "?")) or ";" not in s for s in summaries.values())


def test_first_sentence_rules() -> None:
    from stellar_like.functions.registry import first_sentence

    assert first_sentence("One. Two.") == "One."
    assert first_sentence("Uses x, i.e. the first; then more. Second.") == "Uses x, i.e. the first; then more."
    assert first_sentence("Splits 'a. b' (see SPLIT. Really) at dots. Next.") == \
        "Splits 'a. b' (see SPLIT. Really) at dots."
    assert first_sentence("The model's output\n  map") == "The model's output map"
    assert first_sentence("Version 1.5 is fine. Next") == "Version 1.5 is fine."


def test_module_entry_point_exists() -> None:
    import stellar_like.cli

    assert callable(stellar_like.cli.main)
