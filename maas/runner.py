"""The runner: one process per model instance (docs/contracts.md).

It localizes the payload from the store into a fresh working directory, runs the payload's
single ``*.sh`` with ``MAAS_PORT`` & co., waits for ``endpoint.dat``, checks that the service
answers HTTP, and registers an ephemeral ServiceInstance znode. It re-registers after a ZooKeeper
session expiry, deregisters before stopping the service (drain), and stops the service's whole
process group. Its progress and, on failure, the reason are written to a status file that the
launcher reads (like a Kubernetes termination message).

Run as ``python -m maas.runner --instance-dir DIR`` where ``DIR/spec.json`` is an
:class:`~maas.instance.InstanceSpec`.
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NodeExistsError, NoNodeError

from maas import memlimit
from maas.endpoint_auth import EndpointCredentials
from maas.errors import CoordinationError, MaasError, PayloadError
from maas.instance import InstanceSpec, write_json_atomic
from maas.logfiles import OutputPump, rotating_handler, tail
from maas.process import ProcessIdentity
from maas.payload import EndpointInfo, find_script, read_endpoint
from maas.payload_env import payload_environment
from maas.probe import check_http
from maas.registration import Endpoint
from maas.retry import Backoff
from maas.store import open_store
from maas.store.cache import PayloadCache
from maas.zk import ZK_ERRORS, Layout, connect, read_config, zk_error
from maas.zkauth import ZkAccess, use_policy

log = logging.getLogger("maas.runner")

SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
PID_FILE = "runner.pid"
STDERR_TAIL = 2000
_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago. The service binds it shortly after; a race with another
    process is possible and shows up as a failed start, which the controller retries."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def bind_host_for(advertised: str) -> str:
    """Where a service must listen so that its advertised address reaches it: that address
    itself when it is a loopback one (``127.0.0.2`` is not reachable through ``127.0.0.1``), else
    every interface (a pod IP, a node address, or a name that resolves to one)."""
    if advertised == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(advertised.strip("[]"))
    except ValueError:
        return "0.0.0.0"
    if address.is_loopback:
        return str(address)
    return "::" if address.version == 6 else "0.0.0.0"


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL if the runner dies, so no service outlives it."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _tail(path: Path, limit: int = STDERR_TAIL) -> str:
    return tail(path, limit)


class Runner:
    """Runs one instance from start to stop."""

    def __init__(self, instance_dir: Path, spec: InstanceSpec) -> None:
        self.dir = instance_dir
        self.spec = spec
        self.workdir = instance_dir / "work"
        self.status_path = instance_dir / STATUS_FILE
        self.stop_event = threading.Event()
        self.session_lost = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: KazooClient | None = None
        self.endpoint: Endpoint | None = None
        self.reg_path: str | None = None
        self.pumps: list[OutputPump] = []
        self.service_identity: ProcessIdentity | None = None
        self.cgroup: memlimit.MemoryCgroup | None = None

    # -- status -----------------------------------------------------------------------------
    def report(self, state: str, **extra: Any) -> None:
        data = {"state": state, "time": time.time(), "runner_pid": os.getpid()}
        if self.proc is not None:
            data["service_pid"] = self.proc.pid
            if self.service_identity is not None:
                data["service"] = self.service_identity.to_dict()
        if self.cgroup is not None:  # for the launcher to remove if this runner dies unannounced
            data["cgroup"] = str(self.cgroup.path)
        data.update(extra)
        write_json_atomic(self.status_path, data)

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        try:
            self.report("starting")
            script = self.localize()
            if self.stop_event.is_set():
                self.report("stopped")
                return 0
            # The service starts before the ZooKeeper client (and its threads) exists: the
            # child's pre-exec hook is only safe in a single-threaded process.
            info = self.start_service(script)
            if info is None:  # asked to stop while starting
                self.stop_service()
                self.report("stopped")
                return 0
            access = ZkAccess.from_file(Path(self.spec.zk_auth_file)) if self.spec.zk_auth_file else None
            self.client = connect(self.spec.zk_quorum, session_timeout=self.spec.zk_session_timeout, access=access)
            self.client.add_listener(self._on_zk_state)
            layout = Layout.from_config(read_config(self.client, self.spec.config_path))
            use_policy(self.client, self.spec.config_path, "runner")
            self.register(layout, info)
            self.report("running", url=self.endpoint.url if self.endpoint else None)
            return self.supervise()
        except MaasError as exc:
            log.error("instance %s failed: %s", self.spec.instance_id, exc)
            self.deregister()
            self.stop_service()
            self.report("failed", reason=str(exc))
            return exc.exit_code
        except Exception as exc:  # the runner must always leave a reason behind
            log.exception("instance %s crashed", self.spec.instance_id)
            self.deregister()
            self.stop_service()
            self.report("failed", reason=f"runner error: {exc!r}")
            return 1
        finally:
            if self.proc is not None and self.proc.poll() is not None:
                self._remove_cgroup()
            if self.client is not None:
                self.client.stop()
                self.client.close()

    def localize(self) -> str:
        """Copy the payload into the working directory; return its script's name."""
        store = open_store(self.spec.store_uri, max_payload_bytes=self.spec.max_payload_bytes)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.spec.cache_dir:
            PayloadCache(Path(self.spec.cache_dir), max_bytes=self.spec.cache_max_bytes).localize(store, self.spec.path, self.workdir)
        else:
            store.download(self.spec.path, self.workdir)
        files = [str(p.relative_to(self.workdir)) for p in self.workdir.rglob("*") if p.is_file()]
        return find_script(files)

    def start_service(self, script: str) -> EndpointInfo | None:
        """Run the script; wait for endpoint.dat and for the service to answer."""
        bind = self.spec.bind_host or bind_host_for(self.spec.advertise_host)
        port = free_port(bind)
        # Built from an allow-list: the runner's secrets (store tokens, ZooKeeper credentials)
        # and whatever else its environment holds stay out of the payload.
        env = payload_environment(
            {
                "MAAS_PORT": str(port),
                "MAAS_BIND_HOST": bind,
                "MAAS_ADVERTISED_HOST": self.spec.advertise_host,
                "MAAS_MODEL_NAME": self.spec.name,
                "MAAS_MODEL_VERSION": self.spec.version,
                "MAAS_INSTANCE_ID": self.spec.instance_id,
                "MAAS_MEMORY_MB": str(self.spec.memory),
                "MAAS_PYTHON": sys.executable,
                **self._endpoint_security_env(),
            },
            self.spec.env,
            path_prefix=str(Path(sys.executable).parent),
        )
        self.cgroup, limit_note = memlimit.create(self.spec.instance_id, self.spec.memory)
        log.info("instance %s: %s", self.spec.instance_id, limit_note)
        cgroup = self.cgroup

        def prepare_child() -> None:
            _die_with_parent()
            if cgroup is not None:
                cgroup.join()

        try:
            self.proc = subprocess.Popen(
                ["/bin/bash", script],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=prepare_child,
            )
        except OSError as exc:
            raise PayloadError(f"cannot run {script}: {exc}") from exc
        assert self.proc.stdout is not None and self.proc.stderr is not None
        # The service's output goes through the runner into size-bounded, rotated files.
        self.pumps = [OutputPump(self.proc.stdout, self.dir / "service.out.log").start(),
                      OutputPump(self.proc.stderr, self.dir / "service.err.log").start()]
        self.service_identity = ProcessIdentity.of(self.proc.pid)
        self.report("starting", port=port)
        info = self._wait_for_endpoint(script)
        if info is None:
            return None
        announced = info
        info = info.advertised(self.spec.advertise_host)
        self._wait_until_answering(info, announced, bind)  # what will be registered is what is probed
        return info

    def _endpoint_security_env(self) -> dict[str, str]:
        """The paths of the model endpoint's token file and TLS certificate, when configured."""
        pairs = {"MAAS_MODEL_TOKEN_FILE": self.spec.model_token_file, "MAAS_TLS_CERT_FILE": self.spec.tls_cert_file,
                 "MAAS_TLS_KEY_FILE": self.spec.tls_key_file}
        return {name: value for name, value in pairs.items() if value}

    def _check_alive(self, what: str) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            self._drain_pumps()
            raise PayloadError(self._exit_reason(what, code))

    def _exit_reason(self, what: str, code: int) -> str:
        """Why the service ended: its exit code (or the memory limit that killed it) and stderr."""
        tail = _tail(self.dir / "service.err.log")
        if self.cgroup is not None and self.cgroup.oom_killed():
            what = f"{what} was killed for going over its memory limit of {self.cgroup.limit_mb} MB (-m) and"
        return f"{what} exited with code {code}" + (f"; stderr: {tail}" if tail else "")

    def _wait_for_endpoint(self, script: str) -> EndpointInfo | None:
        deadline = time.monotonic() + self.spec.start_timeout
        parse_error: PayloadError | None = None
        parse_error_at = 0.0
        while not self.stop_event.is_set():
            try:
                info = read_endpoint(self.workdir)
                if info is not None:
                    return info
            except PayloadError as exc:  # maybe caught half-written; give it a moment
                if parse_error is not None and time.monotonic() > parse_error_at + 1.0:
                    raise
                if parse_error is None:
                    parse_error, parse_error_at = exc, time.monotonic()
            self._check_alive(f"{script} (before writing endpoint.dat)")
            if time.monotonic() > deadline:
                raise PayloadError(f"{script} wrote no endpoint.dat within {self.spec.start_timeout:.0f}s")
            self.stop_event.wait(0.05)
        return None

    def _wait_until_answering(self, info: EndpointInfo, announced: EndpointInfo | None = None,
                              bind: str | None = None) -> None:
        deadline = time.monotonic() + self.spec.ready_timeout
        backoff = Backoff(initial=0.05, max_delay=1.0, jitter=0.2)
        attempt = 0
        last: str = ""
        credentials = EndpointCredentials.create(
            Path(self.spec.model_token_file) if self.spec.model_token_file else None,
            Path(self.spec.model_ca_file) if self.spec.model_ca_file else None,
        )
        with httpx.Client(timeout=2.0, **credentials.http_options()) as http:
            while not self.stop_event.is_set():
                problem = check_http(http, info.url)
                if problem is None:
                    return
                last = problem
                self._check_alive("service")
                if time.monotonic() > deadline:
                    hint = ""
                    if announced is not None and announced.url != info.url:
                        hint = (f"; it announced {announced.url}: does it listen on $MAAS_BIND_HOST "
                                f"({bind}) rather than on a loopback address?")
                    raise PayloadError(
                        f"service at {info.url} did not answer within {self.spec.ready_timeout:.0f}s ({last}){hint}"
                    )
                self.stop_event.wait(backoff.delay(attempt))
                attempt += 1

    # -- registration -----------------------------------------------------------------------
    def register(self, layout: Layout, info: EndpointInfo) -> None:
        assert self.client is not None
        self.endpoint = Endpoint(
            name=self.spec.name,
            version=self.spec.version,
            instance_id=self.spec.instance_id,
            url=info.url,
            functions=info.functions,
            container_id=self.spec.instance_id,
            registered_ms=int(time.time() * 1000),
        )
        self.reg_path = layout.registration(self.spec.name, self.spec.instance_id)
        self._create_registration()

    def _create_registration(self) -> None:
        assert self.client is not None and self.endpoint is not None and self.reg_path is not None
        try:
            try:
                self.client.create(self.reg_path, self.endpoint.to_json(), ephemeral=True, makepath=True)
            except NodeExistsError:
                # Ours from a session that is not gone yet, or a leftover: replace it.
                self.client.delete(self.reg_path)
                self.client.create(self.reg_path, self.endpoint.to_json(), ephemeral=True, makepath=True)
        except ZK_ERRORS as exc:
            raise zk_error(f"cannot register {self.reg_path}", exc) from exc
        log.info("registered %s at %s", self.reg_path, self.endpoint.url)

    def deregister(self) -> None:
        if self.client is None or self.reg_path is None:
            return
        path, self.reg_path = self.reg_path, None
        try:
            self.client.delete(path)
            log.info("deregistered %s", path)
        except NoNodeError:
            pass
        except ZK_ERRORS as exc:  # the session's end removes it anyway
            log.warning("could not deregister %s: %s", path, exc)

    def _on_zk_state(self, state: KazooState) -> None:
        # Called on kazoo's thread: only flag; the supervise loop does the work.
        if state == KazooState.LOST:
            self.session_lost.set()

    # -- steady state -----------------------------------------------------------------------
    def supervise(self) -> int:
        """Wait for a stop request or the service's death; re-register after session loss."""
        assert self.proc is not None and self.client is not None
        while not self.stop_event.wait(0.1):
            code = self.proc.poll()
            if code is not None:
                self.deregister()
                self._drain_pumps()
                reason = self._exit_reason("service", code)
                self.report("exited", reason=reason, exit_code=code)
                return 1
            if self.session_lost.is_set() and self.client.state == KazooState.CONNECTED:
                self.session_lost.clear()
                try:
                    self._create_registration()
                except CoordinationError as exc:
                    log.warning("re-registration failed, will retry: %s", exc)
                    self.session_lost.set()
        self.deregister()
        self.report("stopping")
        self.stop_event.clear()
        time.sleep(self.spec.drain_seconds)
        self.stop_service()
        self.report("stopped")
        return 0

    def _drain_pumps(self) -> None:
        """Let the output pumps write what the exited service left in its pipes."""
        for pump in self.pumps:
            pump.join()

    def stop_service(self) -> None:
        """SIGTERM the service's process group; SIGKILL it after the grace period."""
        if self.proc is None or self.proc.poll() is not None:
            self._kill_group(signal.SIGKILL)  # leftovers of a script that exited
            self._remove_cgroup()
            return
        self._kill_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.spec.stop_grace)
        except subprocess.TimeoutExpired:
            log.warning("service of %s ignored SIGTERM for %.0fs; killing", self.spec.instance_id, self.spec.stop_grace)
        self._kill_group(signal.SIGKILL)
        self.proc.wait()
        self._remove_cgroup()

    def _remove_cgroup(self) -> None:
        if self.cgroup is not None:
            for _ in range(20):  # the killed group's last processes leave it a moment later
                if not self.cgroup.has_processes():
                    break
                time.sleep(0.05)
            self.cgroup.remove()

    def _kill_group(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maas.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instance-dir", required=True, type=Path)
    parser.add_argument("--log-file", type=Path,
                        help="Write the runner's log here, rotated by size (default: standard error)")
    parser.add_argument("--spec-from-env", metavar="VAR",
                        help="Read the instance spec (JSON) from this environment variable instead of DIR/spec.json "
                             "(how a Kubernetes pod receives it)")
    args = parser.parse_args(argv)
    handlers = [rotating_handler(args.log_file)] if args.log_file else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers)
    for noisy in ("kazoo", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    instance_dir: Path = args.instance_dir.resolve()
    instance_dir.mkdir(parents=True, exist_ok=True)
    try:
        text = os.environ[args.spec_from_env] if args.spec_from_env else (instance_dir / SPEC_FILE).read_text()
        spec = InstanceSpec.model_validate_json(text)
    except (OSError, KeyError, ValueError) as exc:
        write_json_atomic(instance_dir / STATUS_FILE, {"state": "failed", "reason": f"bad instance spec: {exc!r}"})
        return 2
    # Where the node's address is only known at start (a pod's IP), it comes from the environment.
    if os.environ.get("MAAS_ADVERTISE_HOST"):
        spec = spec.model_copy(update={"advertise_host": os.environ["MAAS_ADVERTISE_HOST"]})
    return Runner(instance_dir, spec).run()


if __name__ == "__main__":
    sys.exit(main())
