"""Local ZooKeeper servers from Debian's ``zookeeper`` package (docs/contracts.md).

The embedded default runs one of these on 127.0.0.1 (``make demo``, and ``maas_zookeeper``, the
command users start one with); the test harness runs one per test session and, for failover
tests, an ensemble. :class:`ZooKeeperServer` is one server; :class:`ZooKeeperEnsemble` a quorum of
servers on loopback. Both listen on 127.0.0.1 unless told otherwise, on free ports unless told
otherwise, with their data in a temporary directory removed on cleanup unless given one.

``maas_zookeeper --data-dir DIR [--port 2181] [--host 127.0.0.1]`` runs one server in the
foreground with its data, config and log in ``DIR`` (kept across runs) until Ctrl-C or SIGTERM,
which stop it cleanly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
from kazoo.client import KazooClient, KazooState

ZK_JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-simple.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
]
MAIN_STANDALONE = "org.apache.zookeeper.server.ZooKeeperServerMain"
MAIN_QUORUM = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def zookeeper_available() -> bool:
    return all(Path(j).exists() for j in ZK_JARS[:1]) and shutil.which("java") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def four_letter(port: int, word: str, timeout: float = 1.0, host: str = "127.0.0.1") -> str:
    """Send a four-letter command; '' if the server does not answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


class ZooKeeperServer:
    """One ZooKeeper server process."""

    def __init__(self, port: int | None = None, *, data_dir: Path | None = None, server_id: int | None = None,
                 peers: list[tuple[int, int, int]] | None = None, extra_config: list[str] | None = None,
                 jvm_options: list[str] | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        #: More zoo.cfg lines and JVM options (e.g. SASL: an authProvider and a JAAS configuration).
        self.extra_config = list(extra_config or [])
        self.jvm_options = list(jvm_options or [])
        self._own_dir = data_dir is None
        self.dir = Path(data_dir or tempfile.mkdtemp(prefix="maas-zk-"))
        self.server_id = server_id
        self.peers = peers  # (id, quorum port, election port) of every member, for ensembles
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self._client_host()}:{self.port}"

    def _client_host(self) -> str:
        """Where clients on this machine reach the server (any-address binds answer on loopback)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    def _write_config(self) -> Path:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            "tickTime=500",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={data}",
            f"clientPort={self.port}",
            f"clientPortAddress={self.host}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,mntr",
            "maxSessionTimeout=60000",
            "minSessionTimeout=1000",
        ]
        if self.peers:
            (data / "myid").write_text(str(self.server_id))
            lines += [f"server.{sid}=127.0.0.1:{qp}:{ep}" for sid, qp, ep in self.peers]
        lines += self.extra_config
        cfg = self.dir / "zoo.cfg"
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def start(self, timeout: float = 20.0, wait: bool = True) -> None:
        if not zookeeper_available():
            raise RuntimeError("ZooKeeper is not installed: apt-get install -y zookeeper (and Java)")
        cfg = self._write_config()
        main = MAIN_QUORUM if self.peers else MAIN_STANDALONE
        log = open(self.dir / "zookeeper.log", "ab")
        self.proc = subprocess.Popen(
            ["java", "-Xmx256m", *self.jvm_options, "-cp", ":".join(ZK_JARS), main, str(cfg)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        if wait:
            self.wait_serving(timeout)

    def serving(self) -> bool:
        return "Mode:" in four_letter(self.port, "srvr", host=self._client_host())

    def mode(self) -> str:
        for line in four_letter(self.port, "srvr", host=self._client_host()).splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return ""

    def wait_serving(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with {self.proc.returncode}; see {self.dir / 'zookeeper.log'}")
            if self.serving():
                return
            time.sleep(0.1)
        raise RuntimeError(f"ZooKeeper on port {self.port} not serving after {timeout:.0f}s")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "ZooKeeperServer":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()


class ZooKeeperEnsemble:
    """A quorum of ``size`` servers on loopback."""

    def __init__(self, size: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="maas-zk-ensemble-"))
        peers = [(i + 1, free_port(), free_port()) for i in range(size)]
        self.servers = [
            ZooKeeperServer(data_dir=self.dir / f"zk{sid}", server_id=sid, peers=peers) for sid, _, _ in peers
        ]

    @property
    def quorum(self) -> str:
        return ",".join(s.address for s in self.servers)

    def start(self, timeout: float = 60.0) -> None:
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            server.wait_serving(timeout)

    def leader(self) -> ZooKeeperServer:
        for server in self.servers:
            if server.mode() == "leader":
                return server
        raise RuntimeError("the ensemble has no leader")

    def cleanup(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "ZooKeeperEnsemble":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()


def expire_session(client: KazooClient, timeout: float = 15.0) -> None:
    """Make the server expire ``client``'s session, as a long partition would.

    A second connection attaches to the same session (id and password) and closes it, which
    ends the session on the server; ``client`` then sees LOST and, later, a new session.
    """
    lost = threading.Event()

    def watch(state: KazooState) -> bool:
        if state == KazooState.LOST:
            lost.set()
            return True  # remove this listener
        return False

    client.add_listener(watch)
    session_id, password = client.client_id
    twin = KazooClient(hosts=_hosts_of(client), client_id=(session_id, password))
    twin.start(timeout=timeout)
    twin.stop()
    twin.close()
    if not lost.wait(timeout):
        raise RuntimeError("the session did not expire")


def _hosts_of(client: KazooClient) -> str:
    return ",".join(f"{h}:{p}" for h, p in client.hosts)


def _port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound, or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As ZooKeeper binds: connections of a previous run in TIME_WAIT do not make it busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               epilog="\b\nExit codes:\n  0  stopped by Ctrl-C or SIGTERM\n  1  ZooKeeper failed to start or died\n"
                      "  2  usage error (bad option, port in use, ZooKeeper not installed)")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for ZooKeeper's data, config (zoo.cfg) and log (zookeeper.log); kept across runs")
@click.option("--port", type=click.IntRange(1, 65535), default=2181, show_default=True, help="Client port")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; only on a trusted network)")
def main(data_dir: Path, port: int, host: str) -> None:
    """Run a standalone ZooKeeper server from Debian's zookeeper package in the foreground, for one
    machine's MaaS cluster. Ctrl-C stops it; its data stays in --data-dir."""
    if not zookeeper_available():
        raise click.UsageError("ZooKeeper is not installed: apt-get install -y zookeeper (it needs Java), or `make zookeeper`")
    busy = _port_in_use(host, port)
    if busy:
        raise click.UsageError(f"cannot listen on {host}:{port}: {busy} (another ZooKeeper? pick one with --port)")
    server = ZooKeeperServer(port, data_dir=data_dir.resolve(), host=host)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start(timeout=60)
    except RuntimeError as exc:
        server.stop()
        click.echo(f"maas_zookeeper: {exc}\n{_log_tail(server.dir / 'zookeeper.log')}", err=True)
        sys.exit(1)
    click.echo(f"ZooKeeper serving on {host}:{port} (data, config and log in {server.dir}); Ctrl-C stops it.\n"
               f"Next: maas_service -zq {server.address} …", err=True)
    while not stop.wait(0.5):
        if server.proc is None or server.proc.poll() is not None:
            code = server.proc.returncode if server.proc is not None else None
            click.echo(f"maas_zookeeper: ZooKeeper exited with {code}\n{_log_tail(server.dir / 'zookeeper.log')}",
                       err=True)
            sys.exit(1)
    click.echo("Stopping ZooKeeper…", err=True)
    server.stop()
    click.echo("ZooKeeper stopped.", err=True)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("    | " + line for line in text)


if __name__ == "__main__":
    main()
