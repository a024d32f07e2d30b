"""Native backend: each node is a plain process in its own network namespace behind a bridge.

Layout (DESIGN §4)::

    root ns  --veth ck<run>--+
                             |  hub ns: bridge br0 (10.213.N.0/24)
    node ns ck-<run>-<name> -+-- eth0 10.213.N.(10+i)

The runner reaches every node directly through the root veth (10.213.N.1), so partitions are real
iptables rules inside a node's namespace and clients on the host are unaffected by them. Nothing is
added to the root namespace's firewall; deleting the namespaces removes every rule and link.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import platform
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaoskit.backends.base import CHAIN_SETUP, LogLine, Node, NodeSpec, partition_rules
from chaoskit.backends.base import PARTITION_CHAIN as CHAIN
from chaoskit.backends.ledger import (
    Ledger,
    claim_subnet,
    netns_pids,
    process_running,
    process_start_time,
    process_state,
    same_process,
)
from chaoskit.errors import InfrastructureError, MissingDependencyError


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(args), capture_output=True, text=True)
    if check and res.returncode != 0:
        raise InfrastructureError(f"`{' '.join(args)}` failed: {res.stderr.strip() or res.stdout.strip()}")
    return res


def check_platform() -> None:
    """Raise MissingDependencyError (exit 3) with a hint when the native backend cannot work here."""
    if platform.system() != "Linux":
        raise MissingDependencyError("the local backend needs Linux network namespaces; use --backend docker")
    if os.geteuid() != 0:
        raise MissingDependencyError("the local backend needs root (network namespaces, iptables): "
                                     "run with sudo, or use --backend docker")
    for tool, pkg in (("ip", "iproute2"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            raise MissingDependencyError(f"`{tool}` not found: apt-get install -y {pkg}")


def _routed() -> Callable[[ipaddress.IPv4Network], bool]:
    """Whether this host already routes a network (someone else's)."""
    routes = _run("ip", "-4", "route", "show", "table", "all", check=False).stdout
    return lambda net: str(net.network_address)[:-1] in routes


class LocalBackend:
    """Native processes in network namespaces. Needs Linux, root, iproute2 and iptables."""

    name = "local"

    def __init__(self, run_id: str, workdir: str, *, detached: bool = False, ledger: Ledger | None = None) -> None:
        check_platform()
        self.run_id = run_id
        self.workdir = Path(workdir)
        self.detached = detached
        self.hub = f"ck-{run_id}-hub"
        self.root_if = f"ck{run_id}"[:15]
        if ledger is None:
            ledger, self.subnet = claim_subnet(run_id, self.name, "CHAOSKIT_SUBNET_BASE", "10.213", _routed)
        else:
            self.subnet = ipaddress.IPv4Network(ledger.subnet or "")
        self.ledger = ledger
        self.addresses: dict[str, str] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @classmethod
    def attach(cls, ledger: Ledger, workdir: str, state: dict[str, Any]) -> LocalBackend:
        """The backend of a running lab (its namespaces and processes exist): nothing is created."""
        backend = cls(ledger.run_id, workdir, ledger=ledger)
        backend.addresses = dict(state.get("addresses", {}))
        return backend

    def state(self) -> dict[str, object]:
        return {"addresses": dict(self.addresses)}

    # -- network -----------------------------------------------------------------------------
    def netns(self, name: str) -> str:
        return f"ck-{self.run_id}-{name}"

    def prepare(self, names: list[str]) -> dict[str, str]:
        hosts = list(self.subnet.hosts())
        self.ledger.record("dir", str(self.workdir))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ledger.record("netns", self.hub)
        _run("ip", "netns", "add", self.hub)
        _run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.hub, "link", "set", "br0", "up")
        _run("ip", "link", "add", self.root_if, "type", "veth", "peer", "name", "up0", "netns", self.hub)
        _run("ip", "-n", self.hub, "link", "set", "up0", "master", "br0", "up")
        _run("ip", "addr", "add", f"{hosts[0]}/{self.subnet.prefixlen}", "dev", self.root_if)
        _run("ip", "link", "set", self.root_if, "up")
        for i, name in enumerate(names):
            addr = str(hosts[9 + i])
            ns = self.netns(name)
            self.ledger.record("netns", ns)
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", self.hub, "link", "add", f"n{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", self.hub, "link", "set", f"n{i}", "master", "br0", "up")
            _run("ip", "-n", ns, "addr", "add", f"{addr}/{self.subnet.prefixlen}", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            self.addresses[name] = addr
        return dict(self.addresses)

    # -- processes ---------------------------------------------------------------------------
    def start(self, spec: NodeSpec) -> Node:
        if spec.argv and shutil.which(spec.argv[0]) is None:
            raise MissingDependencyError(f"`{spec.argv[0]}` not found on PATH")
        spec.workdir.mkdir(parents=True, exist_ok=True)
        log_path = spec.workdir / f"{spec.name}.log"
        argv = ["ip", "netns", "exec", self.netns(spec.name)]
        if spec.user:
            shutil.chown(spec.workdir, spec.user, pwd.getpwnam(spec.user).pw_gid)  # its own group (nobody: nogroup)
            argv += ["runuser", "-u", spec.user, "--"]
        env = {**os.environ, **dict(spec.env)}
        with log_path.open("ab") as log:
            proc = subprocess.Popen([*argv, *spec.argv], cwd=spec.workdir, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self._procs[spec.name] = proc
        self.ledger.record("process", spec.name, proc.pid)
        return Node(spec, self.addresses[spec.name], proc.pid, log_path)

    def _start_time(self, node: Node) -> int | None:
        """When the node's process started, as the ledger recorded it (a recycled pid never matches)."""
        return next((e.start_time for e in reversed(self.ledger.entries) if e.pid == node.pid), None)

    def _signal(self, node: Node, sig: signal.Signals) -> None:
        """Signal the whole node: every process in its namespace (a server may have children, e.g.
        Patroni's postgres), like a container or a VM would be killed or frozen as one."""
        start = self._start_time(node)
        pids = set(netns_pids(self.netns(node.name)))
        if node.pid is not None and same_process(node.pid, start):
            pids.add(node.pid)
        for pid in sorted(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self, node: Node) -> None:
        self._signal(node, signal.SIGKILL)
        self._reap(node)

    def stop(self, node: Node) -> None:
        self._signal(node, signal.SIGTERM)
        if not self._reap(node, timeout=10.0):
            self.kill(node)

    def pause(self, node: Node) -> None:
        self._signal(node, signal.SIGSTOP)

    def resume(self, node: Node) -> None:
        self._signal(node, signal.SIGCONT)

    def _reap(self, node: Node, timeout: float = 5.0) -> bool:
        proc = self._procs.get(node.name)
        if proc is None or proc.pid != node.pid:
            deadline = time.monotonic() + timeout  # not our child (a lab's node): a zombie counts as gone
            while self.is_running(node) and time.monotonic() < deadline:
                time.sleep(0.02)
            return not self.is_running(node)
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def is_running(self, node: Node) -> bool:
        proc = self._procs.get(node.name)
        if proc is not None and proc.pid == node.pid:
            return proc.poll() is None
        if node.pid is None:
            return False
        start = self._start_time(node)  # adopted by a later process: the pid as the ledger recorded it
        return process_running(node.pid, start) if start is not None else process_start_time(node.pid) is not None

    def is_paused(self, node: Node) -> bool:
        return self.is_running(node) and node.pid is not None and process_state(node.pid) == "T"

    # -- links -------------------------------------------------------------------------------
    def block(self, node: Node, peers: list[Node], *, one_way: bool = False,
              probability: float | None = None) -> None:
        iptables = ["ip", "netns", "exec", self.netns(node.name), "iptables"]
        if _run(*iptables, "-n", "-L", CHAIN, check=False).returncode != 0:
            for args in CHAIN_SETUP:
                _run(*iptables, *args)
        for args in partition_rules(peers, one_way=one_way, probability=probability):
            _run(*iptables, *args)

    def unblock(self, node: Node) -> None:
        _run("ip", "netns", "exec", self.netns(node.name), "iptables", "-F", CHAIN, check=False)

    def is_blocked(self, node: Node) -> bool:
        """The rules live in the node's namespace, which outlives its process: they hold across a restart."""
        res = _run("ip", "netns", "exec", self.netns(node.name), "iptables", "-S", CHAIN, check=False)
        return res.returncode == 0 and any(line.startswith(f"-A {CHAIN}") for line in res.stdout.splitlines())

    def log_tail(self, node: Node, lines: int = 20) -> str:
        if node.log_path is None or not node.log_path.exists():
            return ""
        return "\n".join(node.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self, node: Node, since: float | None = None) -> list[LogLine]:
        """Every line of the node's log file (the file stamps nothing: ``since`` drops none)."""
        if node.log_path is None or not node.log_path.exists():
            return []
        return [LogLine(line) for line in node.log_path.read_text(errors="replace").splitlines()]

    def exec(self, node: Node, argv: list[str], timeout: float = 60.0) -> tuple[int, str]:
        try:
            res = subprocess.run(["ip", "netns", "exec", self.netns(node.name), *argv], capture_output=True,
                                 text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise InfrastructureError(f"`{' '.join(argv[-3:])}` on {node.name} timed out after {timeout:g}s") from exc
        return res.returncode, res.stdout + res.stderr

    def teardown(self) -> None:
        from chaoskit.backends.ledger import remove_entries

        for proc in self._procs.values():
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)
                    proc.kill()
                except ProcessLookupError:
                    pass
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(3)
        remove_entries(self.ledger)
        self.ledger.forget()
