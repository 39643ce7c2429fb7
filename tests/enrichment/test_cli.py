"""The ``maas_enrich`` command as a process (``python -m enrichment``): stdin to stdout,
files to files, startup errors, and a followed directory stopped by SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cluster import REPO

COMMAND = [sys.executable, "-m", "enrichment"]


def write_config(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "enrichment.json"
    path.write_text(json.dumps(data))
    return path


def enrich(*args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=timeout)


def test_stdin_to_stdout_with_errors_on_stderr(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"enrichments": {"domain": "DOMAIN_REMOVE_SUBDOMAINS(URL_TO_HOST(url))",
                                                     "short": "LENGTH(domain) < 10"}})
    stdin = '{"url": "http://www.example.com/a"}\nnot json\n{"url": "http://a.b.bbc.co.uk"}\n'
    result = enrich("--config", str(config), stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"url": "http://www.example.com/a", "domain": "example.com", "short": False},
        {"url": "http://a.b.bbc.co.uk", "domain": "bbc.co.uk", "short": True},
    ]
    (error,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert error["error_type"] == "parser_error" and error["raw_message"] == "not json"
    assert error["source"] == "<stdin>:2"


def test_files_in_files_out(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"enrichments": ["double := n * 2", "half := 10 / n"]})
    events = tmp_path / "in.jsonl"
    events.write_text("".join(json.dumps({"n": n}) + "\n" for n in (1, 0, 5)))
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    result = enrich("-c", str(config), "-i", str(events), "-o", str(out), "-e", str(err), "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"n": 1, "double": 2, "half": 10}, {"n": 5, "double": 10, "half": 2}]
    (error,) = [json.loads(line) for line in err.read_text().splitlines()]
    assert error["field"] == "half" and error["source"] == f"{events}:2" and error["raw_message"] == '{"n": 0}'


def test_bad_expression_is_a_startup_error_with_field_and_position(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"enrichment": {"fieldMap": {"stellar": {"config": {
        "ok": "1", "is_alert": "if is_malicious == 'malicious' then true else"}}}}})
    result = enrich("--config", str(config), stdin='{"a": 1}\n')
    assert result.returncode == 2 and result.stdout == ""
    assert "field 'is_alert' (enrichment.fieldMap.stellar.config.is_alert)" in result.stderr
    assert "line 1, column" in result.stderr and "^" in result.stderr


def test_model_calls_need_a_quorum(tmp_path: Path) -> None:
    result = enrich("--config", str(REPO / "examples" / "dga" / "enrichment.json"), stdin="")
    assert result.returncode == 2 and "--zk-quorum" in result.stderr


def test_unreachable_zookeeper_exits_6_like_every_command(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"enrichments": {"a": "1"}})
    result = enrich("--config", str(config), "-zq", "127.0.0.1:1", "--zk-timeout", "1", stdin="", timeout=60)
    assert result.returncode == 6 and "is ZooKeeper running at 127.0.0.1:1?" in result.stderr


def test_follow_a_directory_until_sigterm(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"enrichments": {"m": "n * 10"}})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([*COMMAND, "-c", str(config), "-i", str(inbox), "--follow", "-o", str(out),
                             "--poll-interval", "0.05", "--linger-ms", "10"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def lines() -> list[dict]:
            return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

        def wait_for(count: int) -> None:
            deadline = time.monotonic() + 15
            while len(lines()) < count and time.monotonic() < deadline:
                time.sleep(0.05)

        (inbox / "a.jsonl").write_text('{"n": 1}\n')
        wait_for(1)
        with open(inbox / "a.jsonl", "a") as fh:
            fh.write('{"n": 2}\n')
        (inbox / "b.jsonl").write_text('{"n": 3}\n')
        wait_for(3)
        assert sorted(e["m"] for e in lines()) == [10, 20, 30]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_malformed_quorum_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"enrichments": {"a": "1"}})
    result = enrich("--config", str(config), "-zq", "127.0.0.1:notaport", stdin="")
    assert result.returncode == 2 and "bad ZooKeeper quorum '127.0.0.1:notaport'" in result.stderr


def test_enrichment_get_reads_the_store_named_by_enrichment_store(tmp_path: Path) -> None:
    from stellar_like.enrichment_store import SqliteEnrichmentStore

    store_path = tmp_path / "enrichments.db"
    SqliteEnrichmentStore(store_path).put_many("threatintel", "t", [("malicious_ip", "10.0.0.1", {"source": "abuse"})])
    config = write_config(tmp_path, {"enrichments": {
        "intel": "ENRICHMENT_GET('malicious_ip', ip, 'threatintel', 't')",
        "known": "ENRICHMENT_EXISTS('malicious_ip', ip, 'threatintel', 't')"}})
    stdin = '{"ip": "10.0.0.1"}\n{"ip": "10.9.9.9"}\n'
    result = enrich("--config", str(config), "--enrichment-store", str(store_path), stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"ip": "10.0.0.1", "intel": {"source": "abuse"}, "known": True},
        {"ip": "10.9.9.9", "intel": {}, "known": False},
    ]
    # without a store the same config is an error per event, and the stream goes on
    without = enrich("--config", str(config), stdin=stdin)
    assert without.returncode == 0 and without.stdout == ""
    assert all("no enrichment store is configured" in json.loads(line)["message"]
               for line in without.stderr.splitlines() if line.startswith("{"))
