"""Data access: the enrichment store and its loader, OBJECT_GET, REST_*, LOCAL_*, HDFS_* and SYSTEM_*.

HDFS goes through the real ``hdfs`` client against the WebHDFS test server; REST through httpx
against an HTTP server on 127.0.0.1; the loader is run as the console script users type.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hdfs import InsecureClient

from stellar_like import Context, StellarEvaluationError, evaluate
from stellar_like.enrichment_store import SqliteEnrichmentStore
from stellar_like.flatfile_loader import extract, read_extractor_config
from stellar_like.functions.data_access import clear_object_caches
from stellar_like.serialization import serialize
from stellar_like.stores import WebHdfsFileStore
from tests.webhdfs_server import WebHdfsServer


def run(expression: str, context: Context | None = None, **variables: Any) -> Any:
    return evaluate(expression, variables, context)


EXTRACTOR = {
    "config": {
        "columns": {"rank": 0, "domain": 1},
        "indicator_column": "domain",
        "type": "top_domains",
        "separator": ",",
        "value_transform": {"domain": "DOMAIN_REMOVE_TLD(domain)"},
        "value_filter": "LENGTH(domain) > 0",
        "indicator_transform": {"indicator": "DOMAIN_REMOVE_TLD(indicator)"},
        "indicator_filter": "LENGTH(indicator) > 0",
    },
    "extractor": "CSV",
}


# ---- enrichment store and loader -------------------------------------------------------------------------


def test_enrichment_get_and_exists(tmp_path: Path) -> None:
    store = SqliteEnrichmentStore(tmp_path / "enrichment.db")
    store.put_many(
        "enrichment", "t", [("malicious_ip", "123.45.123.12", {"ip": "123.45.123.12", "source": "the grapevine"})]
    )
    context = Context(enrichment_store=store)
    assert run("ENRICHMENT_EXISTS('malicious_ip', ip, 'enrichment', 't')", context, ip="123.45.123.12") is True
    assert run("ENRICHMENT_EXISTS('malicious_ip', '1.1.1.1', 'enrichment', 't')", context) is False
    assert run("ENRICHMENT_EXISTS('malicious_ip', ip, 'other', 't')", context, ip="123.45.123.12") is False
    assert run("ENRICHMENT_GET('malicious_ip', ip, 'enrichment', 't')", context, ip="123.45.123.12") == {
        "ip": "123.45.123.12",
        "source": "the grapevine",
    }
    assert run("ENRICHMENT_GET('malicious_ip', 'nope', 'enrichment', 't')", context) == {}
    assert run("ENRICHMENT_GET(null, 'x', 'enrichment', 't')", context) == {}
    assert run("ENRICHMENT_EXISTS('malicious_ip', null, 'enrichment', 't')", context) is False
    with pytest.raises(StellarEvaluationError, match="ENRICHMENT_GET: no enrichment store is configured"):
        run("ENRICHMENT_GET('a', 'b', 'c', 'd')")


def test_extract_applies_metrons_transforms_and_filters() -> None:
    config = read_extractor_config(EXTRACTOR)
    rows, problems = extract(
        config, "top.csv", ["1,google.com\n", "# a comment\n", "\n", "2,yahoo.com\n", "3,com\n", "4\n"]
    )
    assert [(r.indicator, r.value) for r in rows] == [
        ("google", {"rank": "1", "domain": "google"}),
        ("yahoo", {"rank": "2", "domain": "yahoo"}),
    ]
    assert [str(p) for p in problems] == ["top.csv:6: has 1 columns, the extractor config needs 2"]


def test_extractor_config_errors() -> None:
    with pytest.raises(Exception, match="'indicator_column' 'ip' is not one of the columns"):
        read_extractor_config({"config": {"columns": {"a": 0}, "indicator_column": "ip", "type": "t"}})
    with pytest.raises(Exception, match="only the CSV extractor"):
        read_extractor_config({"config": {}, "extractor": "STIX"})
    with pytest.raises(Exception, match="is not valid Stellar"):
        read_extractor_config(
            {"config": {"columns": ["a"], "indicator_column": "a", "type": "t", "value_filter": "a >"}}
        )


def loader(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("maas_flatfile_loader")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120)


def test_loader_command_fills_the_store(tmp_path: Path) -> None:
    data = tmp_path / "top-list.csv"
    data.write_text("1,google.com\n2,yahoo.com\n")
    config = tmp_path / "extractor.json"
    config.write_text(json.dumps(EXTRACTOR))
    db = tmp_path / "enrichment.db"
    done = loader("-i", str(data), "-t", "enrichment", "-c", "t", "-e", str(config), "-s", str(db))
    assert done.returncode == 0, done.stderr
    assert "loaded 2 row(s) of type 'top_domains'" in done.stdout
    context = Context(enrichment_store=SqliteEnrichmentStore(db))
    assert run("ENRICHMENT_GET('top_domains', 'yahoo', 'enrichment', 't')", context) == {"rank": "2", "domain": "yahoo"}


def test_loader_writes_nothing_when_a_line_is_bad(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("1,google.com\n")
    (tmp_path / "in" / "b.csv").write_text("2,yahoo.com\n3\n")
    config = tmp_path / "extractor.json"
    config.write_text(json.dumps(EXTRACTOR))
    db = tmp_path / "enrichment.db"
    done = loader(
        "--input",
        str(tmp_path / "in"),
        "--table",
        "enrichment",
        "--column-family",
        "t",
        "-e",
        str(config),
        "--store",
        str(db),
    )
    assert done.returncode == 2
    assert f"{tmp_path / 'in' / 'b.csv'}:2: has 1 columns" in done.stderr
    assert "nothing was loaded" in done.stderr
    assert SqliteEnrichmentStore(db).get("enrichment", "t", "top_domains", "google") is None
    config.write_text("{not json")
    bad = loader("-i", str(tmp_path / "in" / "a.csv"), "-t", "e", "-c", "t", "-e", str(config), "-s", str(db))
    assert bad.returncode == 2 and "cannot read the extractor config" in bad.stderr


# ---- objects ---------------------------------------------------------------------------------------------------


def test_object_get_reads_json_and_sketches_and_caches(tmp_path: Path) -> None:
    clear_object_caches()
    path = tmp_path / "objects" / "top.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"google": 1, "yahoo": 2}))
    sketch = tmp_path / "objects" / "stats.bin"
    sketch.write_bytes(serialize(run("STATS_ADD(STATS_INIT(), 1, 2, 3)")))
    assert run("OBJECT_GET(p)", p=str(path)) == {"google": 1, "yahoo": 2}
    assert run("STATS_MEAN(OBJECT_GET(p))", p=str(sketch)) == 2.0
    assert run("ENRICHMENT_OBJECT_GET(p, 'yahoo')", p=str(path)) == 2
    assert run("ENRICHMENT_OBJECT_GET(p, 'bing')", p=str(path)) is None
    path.write_text(json.dumps({"google": 100}))
    assert run("OBJECT_GET(p)", p=str(path)) == {"google": 1, "yahoo": 2}  # cached
    clear_object_caches()
    assert run("OBJECT_GET(p)", p=str(path)) == {"google": 100}
    assert run("OBJECT_GET(null)") is None
    with pytest.raises(StellarEvaluationError, match="OBJECT_GET: cannot read .*missing"):
        run("OBJECT_GET(p)", p=str(tmp_path / "missing"))
    tiny = Context(global_config={"object.cache.max.file.size": 4})
    with pytest.raises(StellarEvaluationError, match="more than the configured maximum 4"):
        run("OBJECT_GET(p)", tiny, p=str(sketch))
    with pytest.raises(StellarEvaluationError, match="ENRICHMENT_OBJECT_GET: argument 1 .* does not hold a map"):
        run("ENRICHMENT_OBJECT_GET(p, 'x')", p=str(sketch))


# ---- local and HDFS files --------------------------------------------------------------------------------------


def test_local_files(tmp_path: Path) -> None:
    target = tmp_path / "dir" / "notes.txt"
    assert run("LOCAL_WRITE('first\nsecond', p)", p=str(target)) is True
    assert run("LOCAL_READ(p)", p=str(target)) == "first\nsecond"
    assert run("LOCAL_READ_LINES(p)", p=str(target)) == ["first", "second"]
    listing = run("LOCAL_LS(p)", p=str(tmp_path / "dir"))
    assert "notes.txt" in listing and "PERMISSION" in listing and "-rw-" in listing
    assert run("LOCAL_READ(p)", p=str(tmp_path / "missing")) is None
    assert run("LOCAL_WRITE(null, p)", p=str(target)) is False
    assert run("LOCAL_RM(p)", p=str(tmp_path / "dir")) is False  # not empty, not recursive
    assert run("LOCAL_RM(p, true)", p=str(tmp_path / "dir")) is True
    assert not target.exists()
    assert "NAME" in run("LOCAL_LS(p)", p=str(tmp_path / "nothing-here"))


@pytest.fixture
def hdfs_context(tmp_path: Path) -> Iterator[Context]:
    with WebHdfsServer(tmp_path / "hdfs", denied_prefix="/readonly") as server:
        yield Context(hdfs=WebHdfsFileStore(InsecureClient(server.url, user="stellar")))


def test_hdfs_files_through_webhdfs(hdfs_context: Context) -> None:
    c = hdfs_context
    assert run("HDFS_WRITE('a,b\nc,d', '/data/x.csv')", c) is True
    assert run("HDFS_READ('/data/x.csv')", c) == "a,b\nc,d"
    assert run("HDFS_READ_LINES('/data/x.csv')", c) == ["a,b", "c,d"]
    assert run("HDFS_WRITE('replaced', '/data/x.csv')", c) is True
    assert run("HDFS_READ('/data/x.csv')", c) == "replaced"
    listing = run("HDFS_LS('/data')", c)
    assert "x.csv" in listing and "8" in listing
    assert run("HDFS_READ('/data/missing')", c) is None
    assert run("HDFS_WRITE('no', '/readonly/x')", c) is False
    assert run("HDFS_RM('/data/x.csv')", c) is True
    assert run("HDFS_READ('/data/x.csv')", c) is None
    assert run("HDFS_RM('/data/missing')", c) is False
    with pytest.raises(StellarEvaluationError, match="HDFS_READ: no HDFS store is configured"):
        run("HDFS_READ('/x')")


def test_object_get_reads_from_hdfs_when_configured(hdfs_context: Context) -> None:
    clear_object_caches()
    run("HDFS_WRITE(j, '/objects/m.json')", hdfs_context, j=json.dumps({"k": "v"}))
    assert run("ENRICHMENT_OBJECT_GET('/objects/m.json', 'k')", hdfs_context) == "v"


# ---- REST -------------------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/slow"):
            time.sleep(0.5)
        if self.path.startswith("/missing"):
            return self._reply(404, b'{"error": "no"}')
        if self.path.startswith("/empty"):
            return self._reply(200, b"")
        if self.path.startswith("/auth"):
            return self._reply(200, json.dumps({"authorization": self.headers.get("Authorization")}).encode())
        self._reply(200, json.dumps({"path": self.path, "accept": self.headers.get("Accept")}).encode())

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply(200, json.dumps({"received": json.loads(body) if body else None}).encode())


@pytest.fixture(scope="module")
def rest_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rest_get(rest_url: str) -> None:
    assert run("REST_GET(u)", u=f"{rest_url}/thing") == {"path": "/thing", "accept": "application/json"}
    assert run("REST_GET(u, {}, {'q': 'x y', 'n': 1})", u=f"{rest_url}/search")["path"] == "/search?q=x+y&n=1"
    assert run("REST_GET(u)", u=f"{rest_url}/missing") is None
    assert run("REST_GET(u, {'error.value.override': 'failed'})", u=f"{rest_url}/missing") == "failed"
    assert run("REST_GET(u, {'response.codes.allowed': [200, 404]})", u=f"{rest_url}/missing") == {"error": "no"}
    assert run("REST_GET(u, {'empty.content.override': {}})", u=f"{rest_url}/empty") == {}
    assert run("REST_GET(u, {'timeout': 100, 'error.value.override': 'timeout'})", u=f"{rest_url}/slow") == "timeout"
    assert run("REST_GET('http://127.0.0.1:9/closed', {'timeout': 200})") is None
    with pytest.raises(StellarEvaluationError, match="REST_GET: argument 1 'ftp://x' is not an http or https URL"):
        run("REST_GET('ftp://x')")


def test_rest_settings_come_from_the_global_config_and_the_call(rest_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    config = {"stellar.rest.settings": {"basic.auth.user": "metron", "basic.auth.password.path": str(secret)}}
    context = Context(global_config=config)
    result = run("REST_GET(u)", context, u=f"{rest_url}/auth")
    assert result == {"authorization": "Basic bWV0cm9uOnMzY3JldA=="}
    overridden = {"stellar.rest.get.settings": {"error.value.override": "from-get-settings"}}
    assert run("REST_GET(u)", Context(global_config=overridden), u=f"{rest_url}/missing") == "from-get-settings"


def test_rest_post(rest_url: str) -> None:
    assert run("REST_POST(u, '{\"a\": 1}')", u=f"{rest_url}/p") == {"received": {"a": 1}}
    assert run("REST_POST(u, {'b': [1, 2]})", u=f"{rest_url}/p") == {"received": {"b": [1, 2]}}
    with pytest.raises(StellarEvaluationError, match="REST_POST: argument 2 'nope' is not well-formed JSON"):
        run("REST_POST(u, 'nope')", u=f"{rest_url}/p")
    assert run("REST_POST(u, 'nope', {'enforce.json': false})", u=f"{rest_url}/p") is None  # the server cannot parse it


def test_rest_uses_the_client_the_context_supplies(rest_url: str) -> None:
    import httpx

    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda request: seen.append(str(request.url))]}) as client:
        assert run("REST_GET(u)", Context(http_client=client), u=f"{rest_url}/pooled")["path"] == "/pooled"
    assert seen == [f"{rest_url}/pooled"]


# ---- system ------------------------------------------------------------------------------------------------------


def test_system_env_and_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STELLAR_TEST_VAR", "set")
    assert run("SYSTEM_ENV_GET('STELLAR_TEST_VAR')") == "set"
    assert run("SYSTEM_ENV_GET('STELLAR_TEST_UNSET_VAR')") is None
    assert run("SYSTEM_ENV_GET(5)") is None
    assert run("SYSTEM_PROPERTY_GET('user.dir')") == os.getcwd()
    assert run("SYSTEM_PROPERTY_GET('file.separator')") == os.sep
    assert run("SYSTEM_PROPERTY_GET('no.such.property')") is None
    assert run("SYSTEM_PROPERTY_GET('app.name')", Context(system_properties={"app.name": "maas"})) == "maas"


def test_rest_failures_are_logged_without_credentials_or_query(rest_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = rest_url.replace("http://", "http://user:hunter2@") + "/missing?token=s3cret"
    with caplog.at_level("WARNING", logger="stellar_like.functions.data_access"):
        assert run("REST_GET(u)", u=url) is None
    assert "/missing" in caplog.text
    assert "hunter2" not in caplog.text and "s3cret" not in caplog.text
