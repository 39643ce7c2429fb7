"""``maas_deploy`` as users meet it: exit codes and what it prints, on a real ZooKeeper with a
real controller — for the mistakes people make (no controller yet, a wrong ``-zq``, ``-ni 0``, a
payload without its script, a changed payload, a new payload under a deployed version) and for
what ``--wait`` and ``STATUS`` say while the cluster works."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from maas.errors import RequestFailed
from maas.local_zookeeper import free_port
from tests.cluster import PAYLOADS, REPO, Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]


def maas_deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy_client.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=180, env=env)


# -- before any controller, and with a wrong address ------------------------------------------

def test_no_controller_ever_started_says_so_and_writes_nothing(zk_quorum: str, zk) -> None:  # type: ignore[no-untyped-def]
    result = maas_deploy("-zq", zk_quorum, "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1",
                         "-lmp", str(PAYLOADS / "echo"), "--wait")
    assert result.returncode == 10, result.stderr
    assert "no controller has configured this cluster" in result.stderr
    assert f"maas_service -zq {zk_quorum}" in result.stderr
    assert "Uploaded" not in result.stdout
    assert zk.exists("/maas/queue") is None or zk.get_children("/maas/queue") == []
    status = maas_deploy("-zq", zk_quorum, "-mo", "STATUS")
    assert status.returncode == 0 and "No controller has configured this cluster" in status.stdout


def test_a_malformed_quorum_is_a_usage_error() -> None:
    result = maas_deploy("-zq", "127.0.0.1:notaport", "-mo", "LIST")
    assert result.returncode == 2
    assert "bad ZooKeeper quorum '127.0.0.1:notaport'" in result.stderr and "Traceback" not in result.stderr


def _resolver_answers() -> bool:
    """Whether this machine's resolver gives a final answer (not "try again") for a bad name."""
    try:
        socket.getaddrinfo("no-such-zookeeper.invalid", 2181)
    except socket.gaierror as exc:
        return exc.errno != socket.EAI_AGAIN
    return False


def test_an_unknown_host_fails_at_once_with_the_question() -> None:
    if not _resolver_answers():
        pytest.skip("this machine's resolver cannot say that a name does not exist")
    unknown = maas_deploy("-zq", "no-such-zookeeper.invalid:2181", "-mo", "LIST")
    assert unknown.returncode == 6
    assert "unknown host 'no-such-zookeeper.invalid'" in unknown.stderr
    assert "is ZooKeeper running at no-such-zookeeper.invalid:2181?" in unknown.stderr


def test_a_port_refused_on_every_member_fails_at_once_with_the_question() -> None:
    port = free_port()
    refused = maas_deploy("-zq", f"127.0.0.1:{port},127.0.0.1:{port}", "-mo", "LIST")
    assert refused.returncode == 6
    assert "connection refused" in refused.stderr and f"is ZooKeeper running at 127.0.0.1:{port}" in refused.stderr
    # Not kazoo's time-out: the answer came from the refusal, not from waiting.
    assert "time-out" not in refused.stderr.lower()


def test_every_command_exits_6_when_zookeeper_is_unreachable(tmp_path: Path) -> None:
    quorum = f"127.0.0.1:{free_port()}"
    service = subprocess.run([sys.executable, "-m", "maas.cli", "-zq", quorum, "--work-dir", str(tmp_path / "w")],
                             capture_output=True, text=True, cwd=REPO, timeout=60)
    enrich = subprocess.run([sys.executable, "-m", "enrichment", "--config", "examples/dga/enrichment.json",
                             "-zq", quorum, "--input", "examples/dga/events.jsonl"],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    deploy = maas_deploy("-zq", quorum, "-mo", "STATUS")
    for name, result in (("maas_service", service), ("maas_enrich", enrich), ("maas_deploy", deploy)):
        assert result.returncode == 6, (name, result.stderr)
        assert f"is ZooKeeper running at {quorum}?" in result.stderr, (name, result.stderr)


def test_help_lists_exit_codes_env_vars_and_modes_as_typed() -> None:
    result = maas_deploy("--help")
    assert result.returncode == 0
    text = result.stdout
    assert "[ADD|REMOVE|LIST|SCALE|STATUS]" in text
    assert "MAAS_ZK_QUORUM" in text and "MAAS_ZK_ROOT" in text
    for code in (0, 2, 3, 4, 6, 7, 8, 9, 10):
        assert re.search(rf"^\s+{code}\s+\S", text, re.M), code
    assert re.search(r"^\s+9\s+ZooKeeper refused this process's credentials, or an ACL", text, re.M)
    assert re.search(r"^\s+10\s+no controller has configured this cluster", text, re.M)
    assert "--force" in text.split("Exit codes:")[1]
    wrong = maas_deploy("-zq", "127.0.0.1:2181", "-mo", "bogus")
    assert wrong.returncode == 2 and "'bogus' is not one of ADD, REMOVE, LIST, SCALE, STATUS." in wrong.stderr
    service = subprocess.run([sys.executable, "-m", "maas.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert "[DEBUG|INFO|WARNING|ERROR]" in service.stdout and "MAAS_METRICS_PORT" in service.stdout
    assert "Exit codes:" in service.stdout


# -- mistakes, with a controller ------------------------------------------------------------

def test_add_of_zero_instances_is_refused(cluster: Cluster) -> None:
    result = cluster.maas_deploy("-mo", "ADD", "-n", "echo", "-v", "1", "-ni", "0", "-hmp", "/models/echo/1",
                                 "-lmp", str(PAYLOADS / "echo"), check=False)
    assert result.returncode == 2 and "does nothing" in result.stderr
    assert "Uploaded" not in result.stdout  # refused before the upload


def test_a_payload_with_two_scripts_is_refused_before_upload(cluster: Cluster, tmp_path: Path) -> None:
    payload = shutil.copytree(PAYLOADS / "echo", tmp_path / "two")
    (payload / "other.sh").write_text("#!/bin/bash\n")
    result = cluster.maas_deploy("-mo", "ADD", "-n", "two", "-v", "1", "-hmp", "/models/two/1", "-lmp", str(payload),
                                 check=False)
    assert result.returncode == 3
    assert "2 *.sh scripts (other.sh, serve.sh)" in result.stderr and "nothing was uploaded" in result.stderr
    assert not (cluster.store / "models" / "two").exists()


def test_a_changed_payload_names_force(cluster: Cluster, tmp_path: Path) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1")
    changed = shutil.copytree(PAYLOADS / "echo", tmp_path / "changed")
    (changed / "extra.txt").write_text("changed\n")
    result = cluster.maas_deploy("-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1",
                                 "-lmp", str(changed), check=False)
    assert result.returncode == 4
    assert "a different payload is already at /models/echo/1" in result.stderr and "--force" in result.stderr
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")


def test_a_deployed_version_keeps_its_payload(cluster: Cluster) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    result = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/other", "--wait",
                            check=False)
    assert result.returncode == 2
    assert "echo@1 is deployed from" in result.stderr and "/models/echo/1, not" in result.stderr
    assert "new version" in result.stderr
    assert not (cluster.store / "models" / "echo" / "other").exists()  # refused before the upload
    # The controller refuses it too (a request written by another client).
    shutil.copytree(PAYLOADS / "echo", cluster.store / "models" / "echo" / "other")
    client = cluster.client
    with pytest.raises(RequestFailed, match="one version runs one payload"):
        client.wait(client.submit("ADD", "echo", "1", path="/models/echo/other"), timeout=30)
    assert len(cluster.registrations("echo")) == 1
    assert client.desired("echo", "1").path == "/models/echo/1"  # type: ignore[union-attr]
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")


# -- what --wait and STATUS say ---------------------------------------------------------------

def test_wait_shows_progress_and_a_failed_add_is_rolled_back(cluster: Cluster) -> None:
    result = cluster.deploy("traceback", "-mo", "ADD", "-n", "tb", "-v", "1", "-ni", "2", "-hmp", "/models/tb/1",
                            "--wait", check=False)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "  tb@1: 0/2 ready" in result.stdout
    # The failure's one-line summary is the exception, not "Traceback (most recent call last):".
    assert re.search(r"Request \w+: failed: .*FileNotFoundError: .*model\.onnx", result.stderr), result.stderr
    assert "    | Traceback (most recent call last):" in result.stderr  # the whole stderr, quoted
    assert "Rolling back (removing the 2 instance(s) this ADD asked for" in result.stderr
    assert "Rolled back: tb@1 is desired at 0 instance(s)." in result.stderr
    assert cluster.client.desired("tb", "1") is None
    # The controller's log: the failure on one line, the payload's stderr quoted below it, in order.
    log = cluster.controller_log()
    assert re.search(r"of tb@1 failed: .*stderr: FileNotFoundError: .*\n    \| Traceback \(most recent call last\):\n"
                     r"    \|   File \"<string>\", line 1, in <module>\n    \| FileNotFoundError", log), log


def test_without_rollback_the_failure_says_the_model_stays_desired_and_how_to_remove_it(cluster: Cluster) -> None:
    result = cluster.deploy("traceback", "-mo", "ADD", "-n", "tb", "-v", "1", "-hmp", "/models/tb/1", "--wait",
                            "--no-rollback-on-failure", check=False)
    assert result.returncode == 7
    assert "tb@1 stays desired at 1 instance(s): the controller keeps restarting it" in result.stderr
    assert f"To remove it: maas_deploy -zq {cluster.quorum} -mo REMOVE -n tb -v 1 -ni 1" in result.stderr

    status = cluster.maas_deploy("-mo", "STATUS")
    assert re.search(r"^Leader: \S+ \(pid \d+\), since \d{4}-\d\d-\d\d", status.stdout, re.M), status.stdout
    row = next(line for line in status.stdout.splitlines() if line.startswith("tb "))
    # First line and time in the table; no stderr lines spill into it.
    assert re.search(r"\d\d:\d\d:\d\d .*FileNotFoundError", row), row
    assert "Traceback" not in status.stdout and "(--verbose prints each error in full)" in status.stdout
    verbose = cluster.maas_deploy("-mo", "STATUS", "--verbose")
    assert "tb@1: last error at " in verbose.stdout
    assert "    | Traceback (most recent call last):" in verbose.stdout

    removed = cluster.maas_deploy("-mo", "REMOVE", "-n", "tb", "-v", "1", "-ni", "1", "--wait")
    assert removed.stdout.rstrip().endswith("done")


def test_a_wait_that_times_out_says_the_request_goes_on(cluster: Cluster) -> None:
    result = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait",
                            "--timeout", "0", check=False)
    assert result.returncode == 8
    assert "has not finished after 0s; it goes on" in result.stderr
    assert f"maas_deploy -zq {cluster.quorum} -mo STATUS -n echo -v 1" in result.stderr
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")  # it did go on: there is one to remove


def test_status_says_when_no_controller_is_leading(cluster: Cluster) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    for proc in cluster.controllers:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    status = cluster.maas_deploy("-mo", "STATUS")
    assert "No controller is leading: the table below is what the last leader published" in status.stdout
    assert re.search(r"^echo\s+1\s+1\s+1\s+1\s+0", status.stdout, re.M), status.stdout
    queued = cluster.maas_deploy("-mo", "SCALE", "-n", "echo", "-v", "1", "-ni", "2", "-hmp", "/models/echo/1",
                                 "--wait", "--timeout", "1", check=False)
    assert queued.returncode == 8
    assert "warning: no controller is leading: the request waits in the queue until one runs" in queued.stderr
    cluster.start_controller()
    cluster.maas_deploy("-mo", "SCALE", "-n", "echo", "-v", "1", "-ni", "1", "-hmp", "/models/echo/1", "--wait")
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")


def test_a_failed_scale_is_rolled_back_to_the_previous_count(cluster: Cluster) -> None:
    result = cluster.deploy("crash", "-mo", "SCALE", "-n", "crash", "-v", "1", "-ni", "2", "-hmp", "/models/crash/1",
                            "--wait", check=False)
    assert result.returncode == 7
    assert "failed: start.sh (before writing endpoint.dat) exited with code 3; stderr: model file is corrupt" in result.stderr
    assert "Rolling back (scaling back to 0 instance(s)" in result.stderr
    assert "Rolled back: crash@1 is desired at 0 instance(s)." in result.stderr
    assert cluster.client.desired("crash", "1") is None


def test_rollback_needs_wait() -> None:
    result = maas_deploy("-zq", "127.0.0.1:2181", "-mo", "ADD", "-n", "a", "-v", "1", "-hmp", "/x",
                         "--rollback-on-failure")
    assert result.returncode == 2 and "--rollback-on-failure needs --wait" in result.stderr


def test_a_server_that_never_answers_is_reported_once_not_per_attempt(tmp_path: Path) -> None:
    """A port that accepts connections but never speaks ZooKeeper: the command waits its timeout,
    then says so once — no warning per connection attempt."""
    config = tmp_path / "config.json"
    config.write_text('{"enrichments": {"a": "1"}}')
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "enrichment", "--config", str(config), "-zq", f"127.0.0.1:{port}",
                                 "--zk-timeout", "2"], input="", capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 6
    assert "within 2s" in result.stderr and f"is ZooKeeper running at 127.0.0.1:{port}?" in result.stderr
    assert "kazoo" not in result.stderr, result.stderr
