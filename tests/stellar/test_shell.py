"""``stellar shell``: the REPL's lines (expressions, assignments, ?NAME, %commands), errors that do
not end it, and its history file; driven through the command as a user pipes a script into it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from stellar_like import Context
from stellar_like.cli import _render, _report, main
from stellar_like.shell import Shell


def shell(script: str, *args: str, tmp_path: Path) -> tuple[int, list[str], str, Path]:
    history = tmp_path / "hist"
    result = CliRunner().invoke(main, ["shell", "--history", str(history), *args], input=script)
    return result.exit_code, result.stdout.splitlines(), result.stderr, history


def test_expressions_and_assignments(tmp_path: Path) -> None:
    code, out, err, _ = shell("x := 2 + 3\nx * 10\nname := TO_UPPER(who)\n{'n': name}\n", "--var", "who=casey",
                              tmp_path=tmp_path)
    assert code == 0 and err == ""
    assert [json.loads(line) for line in out] == [5, 50, "CASEY", {"n": "CASEY"}]


def test_an_error_is_reported_and_the_shell_goes_on(tmp_path: Path) -> None:
    code, out, err, _ = shell("1 +\nABS('abc')\nnope := (\n40 + 2\n", tmp_path=tmp_path)
    assert code == 0 and out == ["42"]
    assert "unexpected end of expression" in err and "line 1, column 4" in err and "   ^" in err
    assert "ABS" in err
    assert err.count("error:") == 3


def test_help_describe_functions_and_vars(tmp_path: Path) -> None:
    script = "?map_get\n?MAP_GTE\n%functions domain_\na := 1\n%vars\n%del a\n%vars\n%del a\n%bogus\n%help\n"
    code, out, err, _ = shell(script, tmp_path=tmp_path)
    assert code == 0
    text = "\n".join(out)
    assert out[0].startswith("MAP_GET(key, map, default?)")
    assert any(line.startswith("DOMAIN_TO_TLD ") for line in out)
    assert "a := 1" in out and out.count("a := 1") == 1  # listed once, then deleted
    assert "NAME := EXPRESSION" in text
    assert "unknown function MAP_GTE; did you mean MAP_GET" in err
    assert "no variable a" in err and "unknown command %bogus" in err


def test_quit_ends_the_shell_and_the_history_is_kept(tmp_path: Path) -> None:
    code, out, _, history = shell("1\n# a comment\n\nquit\n2\n", tmp_path=tmp_path)
    assert code == 0 and out == ["1"]
    assert history.read_text().splitlines()[-3:] == ["1", "# a comment", "quit"]
    code, out, _, _ = shell("3\n", tmp_path=tmp_path)  # the next session appends to it
    assert history.read_text().splitlines()[-1] == "3"


def test_no_history_file_when_disabled(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["shell", "--history", ""], input="1\n")
    assert result.exit_code == 0 and result.stdout.strip() == "1"
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_history_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["shell", "--history", str(blocker / "hist")], input="7\n")
    assert result.exit_code == 0 and result.stdout.strip() == "7"
    assert "warning: cannot write the history" in result.stderr


def test_completion_offers_functions_variables_and_commands(tmp_path: Path) -> None:
    import io

    s = Shell(Context(), {"my_var": 1}, render=_render, report=_report, out=io.StringIO(), err=io.StringIO())
    words = s.words()
    assert "TO_UPPER" in words and "my_var" in words and "%functions" in words
