"""Docker backend: each node a container on a chaoskit-made bridge network, driven by the Docker SDK.

The topology's generated config files live in the run's work directory, which is bind-mounted at
the same path in every container, so a node's argv is the same as on the local backend and one
experiment file runs unchanged on either. Faults: ``docker kill`` / ``pause`` / ``stop`` + ``start``;
partitions are iptables rules in the container's network namespace, entered from the host with
``nsenter`` when the runner is root on Linux (the official images carry no iptables), else from a helper
container sharing that namespace: no host tool is needed. Every container and network is labelled with
the run id and recorded in the ledger before it is created.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import platform
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chaoskit.backends import docker_images
from chaoskit.backends.base import CHAIN_SETUP, PARTITION_CHAIN, LogLine, Node, NodeSpec, partition_rules
from chaoskit.backends.docker_images import NET_IMAGE
from chaoskit.backends.docker_workdir import hand_back
from chaoskit.backends.ledger import Ledger, claim_subnet
from chaoskit.errors import InfrastructureError, MissingDependencyError

LABEL = "io.chaoskit.run"
CHAIN = PARTITION_CHAIN


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@functools.cache
def _testcontainers() -> Any:
    """testcontainers' Docker client: it finds the daemon as testcontainers users have configured it
    (``DOCKER_HOST``, ``~/.testcontainers.properties``, Colima and Docker Desktop sockets, SSH) and knows
    where containers' published ports are reached from here (``host()``, ``get_connection_mode()``)."""
    try:
        from testcontainers.core.docker_client import DockerClient
    except ImportError:  # pragma: no cover - a dependency of chaoskit
        raise MissingDependencyError("testcontainers is missing: pip install testcontainers") from None
    try:
        tc = DockerClient(timeout=30)
        tc.client.ping()
        return tc
    except Exception as exc:  # noqa: BLE001 -- any failure means "no daemon here"
        raise MissingDependencyError(f"Docker daemon not reachable ({exc.__class__.__name__}): start Docker, "
                                     "or use --backend local") from None


def published_host() -> str:
    """The address published ports are reached at from this process (127.0.0.1 for a daemon on this machine)."""
    host = str(_testcontainers().host())
    return "127.0.0.1" if host in LOCAL_HOSTS else host


def _daemon_shares_network(client: Any) -> bool:
    """True when the daemon's default bridge gateway is an address of this network namespace (a daemon on
    this Linux machine): then its networks are routed here. Binds a socket, sends nothing."""
    try:
        config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
        gateway = config.get("Gateway") or str(next(ipaddress.IPv4Network(config["Subnet"]).hosts()))
        with socket.socket() as s:
            s.bind((gateway, 0))
        return True
    except Exception:  # noqa: BLE001 -- no bridge, no gateway, not ours: not routed
        return False


def addressing() -> str:
    """``routed``: the host reaches containers at their bridge IPs (a daemon on this Linux machine).
    ``published``: through published ports at :func:`published_host`, for Docker Desktop and Colima, whose
    VM does not route container IPs to the host, or a daemon outside the container chaoskit runs in."""
    mode = os.environ.get("CHAOSKIT_DOCKER_ADDRESSING")
    if mode is None:
        local = platform.system() == "Linux" and published_host() == "127.0.0.1"
        mode = "routed" if local and _daemon_shares_network(_testcontainers().client) else "published"
    if mode not in ("routed", "published"):
        raise MissingDependencyError(f"CHAOSKIT_DOCKER_ADDRESSING={mode!r}: use routed or published")
    return mode


def net_faults() -> str:
    """``nsenter``: iptables from the host in the container's netns. ``helper``: a short-lived container
    sharing that netns with NET_ADMIN (Docker Desktop, or a host without nsenter/iptables)."""
    mode = os.environ.get("CHAOSKIT_DOCKER_NETFAULTS")
    if mode is None:
        native = platform.system() == "Linux" and shutil.which("nsenter") and shutil.which("iptables")
        mode = "nsenter" if native and os.geteuid() == 0 else "helper"
    if mode not in ("nsenter", "helper"):
        raise MissingDependencyError(f"CHAOSKIT_DOCKER_NETFAULTS={mode!r}: use nsenter or helper")
    return mode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker_client() -> Any:
    """A connected Docker SDK client; MissingDependencyError (exit 3) with a hint if there is none.

    The daemon must run on this machine (or be Docker Desktop's / Colima's VM): nodes bind-mount the
    configuration files chaoskit writes here."""
    tc = _testcontainers()
    host = published_host()
    if host != "127.0.0.1":
        from testcontainers.core.utils import inside_container

        if not inside_container():
            raise MissingDependencyError(
                f"the Docker daemon is on another machine ({host}): chaoskit's docker backend bind-mounts files "
                "it writes here, so it needs a daemon on this machine (unset DOCKER_HOST), or use --backend local")
    return tc.client


def missing_images(images: list[str], stand_ins: Mapping[str, str] | None = None) -> list[str]:
    """What keeps a docker run of ``images`` from starting here, one line each ([]: nothing): no daemon, or
    an image that is not here, cannot be pulled (pulls it) and has no stand-in built here."""
    try:
        client = docker_client()
    except MissingDependencyError as exc:
        return [str(exc)]
    stand_ins = stand_ins or {}
    return [docker_images.unavailable(image, stand_ins.get(image)) for image in dict.fromkeys(images)
            if docker_images.pick(client, image, stand_ins.get(image)) is None]


def _in_use(client: Any) -> Callable[[ipaddress.IPv4Network], bool]:
    """Whether a Docker network already has the subnet."""
    used = {cfg.get("Subnet") for net in client.networks.list()
            for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []}
    return lambda net: str(net) in used


class DockerBackend:
    """Containers on a labelled bridge network. Needs a Docker daemon; partitions need nsenter + iptables."""

    name = "docker"

    def __init__(self, run_id: str, workdir: str, *, detached: bool = False, ledger: Ledger | None = None,
                 stand_ins: Mapping[str, str] | None = None) -> None:
        self.client = docker_client()
        self.stand_ins = dict(stand_ins or {})  # image -> the local image run where it cannot be had
        self.run_id = run_id
        self.workdir = Path(workdir)
        self.network_name = f"ck-{run_id}"
        if ledger is None:
            ledger, self.subnet = claim_subnet(run_id, self.name, "CHAOSKIT_DOCKER_SUBNET_BASE", "10.214",
                                               lambda: _in_use(self.client))
        else:
            self.subnet = ipaddress.IPv4Network(ledger.subnet or "")
        self.ledger = ledger
        self.addresses: dict[str, str] = {}
        self.addressing, self.net_faults = addressing(), net_faults()
        self.published_host = published_host()
        self.host_ports: dict[str, dict[int, int]] = {}
        self._blocked: dict[str, list[list[str]]] = {}  # node -> iptables rules in force (see block)

    @classmethod
    def attach(cls, ledger: Ledger, workdir: str, state: dict[str, Any]) -> DockerBackend:
        """The backend of a running lab (its network and containers exist): nothing is created. The
        addressing and partition modes are the lab's, and so are the rules a restarted node gets again."""
        backend = cls(ledger.run_id, workdir, ledger=ledger)
        backend.addresses = dict(state.get("addresses", {}))
        backend.addressing = state.get("addressing", backend.addressing)
        backend.net_faults = state.get("net_faults", backend.net_faults)
        backend.host_ports = {n: {int(p): h for p, h in ports.items()}
                              for n, ports in state.get("host_ports", {}).items()}
        backend._blocked = {n: [list(r) for r in rules] for n, rules in state.get("blocked", {}).items()}
        return backend

    def state(self) -> dict[str, object]:
        return {"addresses": dict(self.addresses), "addressing": self.addressing, "net_faults": self.net_faults,
                "host_ports": {n: {str(p): h for p, h in ports.items()} for n, ports in self.host_ports.items()},
                "blocked": {n: [list(r) for r in rules] for n, rules in self._blocked.items()}}

    def container_name(self, node_name: str) -> str:
        return f"ck-{self.run_id}-{node_name}"

    def prepare(self, names: list[str]) -> dict[str, str]:
        import docker

        self.ledger.record("dir", str(self.workdir))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o777)
        hosts = list(self.subnet.hosts())
        self.ledger.record("network", self.network_name)
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(self.subnet),
                                                                           gateway=str(hosts[0]))])
        self.client.networks.create(self.network_name, driver="bridge", ipam=ipam, labels={LABEL: self.run_id})
        self.addresses = {name: str(hosts[9 + i]) for i, name in enumerate(names)}
        return dict(self.addresses)

    def _container(self, name: str) -> Any:
        import docker

        try:
            return self.client.containers.get(self.container_name(name))
        except docker.errors.NotFound:
            return None

    def start(self, spec: NodeSpec) -> Node:
        existing = self._container(spec.name)
        if existing is not None:  # restart after kill/stop keeps the address and the data dir
            existing.start()
            existing.reload()
            node = self._node(spec, existing)
            if spec.name in self._blocked:  # a started container has a new netns: the partition stays in force
                self._iptables(node, [*CHAIN_SETUP, *self._blocked[spec.name]])
            return node
        if not spec.image:
            raise InfrastructureError(f"{spec.name}: no container image for the docker backend")
        image = docker_images.ensure(self.client, spec.image, self.stand_ins)
        spec.workdir.mkdir(parents=True, exist_ok=True)
        spec.workdir.chmod(0o777)
        self.ledger.record("container", self.container_name(spec.name))
        endpoint = self.client.api.create_endpoint_config(ipv4_address=self.addresses[spec.name])
        ports = None
        if self.addressing == "published":
            self.host_ports[spec.name] = {port: _free_port() for port in (spec.port, *spec.extra_ports)}
            bind = "127.0.0.1" if self.published_host == "127.0.0.1" else "0.0.0.0"  # noqa: S104 -- another host
            ports = {f"{port}/tcp": (bind, host) for port, host in self.host_ports[spec.name].items()}
        argv = list(spec.argv)
        entrypoint, command = (argv[:1], argv[1:]) if spec.replace_entrypoint else (None, argv)
        container = self.client.containers.create(
            image, command=command, entrypoint=entrypoint, name=self.container_name(spec.name), hostname=spec.name,
            labels={LABEL: self.run_id, "io.chaoskit.node": spec.name}, working_dir=str(spec.workdir),
            volumes={str(self.workdir): {"bind": str(self.workdir), "mode": "rw"}},
            user=spec.user or "", network=self.network_name,
            networking_config={self.network_name: endpoint}, environment=dict(spec.env), ports=ports,
        )
        container.start()
        container.reload()
        return self._node(spec, container)

    def _node(self, spec: NodeSpec, container: Any) -> Node:
        pid = container.attrs["State"].get("Pid") or None
        published = {port: (self.published_host, host) for port, host in self.host_ports.get(spec.name, {}).items()}
        image = str(container.attrs.get("Config", {}).get("Image") or "")  # the image run (a stand-in, maybe)
        return Node(spec, self.addresses[spec.name], pid, None, {"container": container.name, "image": image},
                    published=published)

    def kill(self, node: Node) -> None:
        c = self._container(node.name)
        if c is not None and c.status in ("running", "paused"):
            c.kill()
            c.wait(timeout=10)

    def stop(self, node: Node) -> None:
        c = self._container(node.name)
        if c is not None:
            c.stop(timeout=5)

    def pause(self, node: Node) -> None:
        self._container(node.name).pause()

    def resume(self, node: Node) -> None:
        c = self._container(node.name)
        if c is not None and c.status == "paused":
            c.unpause()

    def is_running(self, node: Node) -> bool:
        c = self._container(node.name)
        return c is not None and c.status in ("running", "paused")

    def is_paused(self, node: Node) -> bool:
        c = self._container(node.name)
        return c is not None and c.status == "paused"

    def _iptables(self, node: Node, commands: list[list[str]], check: bool = True) -> bool:
        """Run iptables commands in the node's network namespace; False if one failed (check=False)."""
        c = self._container(node.name)
        if c is None or c.status not in ("running", "paused"):
            if check:
                raise InfrastructureError(f"{node.name} is not running: cannot change its network")
            return False
        if self.net_faults == "helper":
            return self._helper(c, commands, check)
        pid = str(c.attrs["State"]["Pid"])
        for args in commands:
            res = subprocess.run(["nsenter", "-t", pid, "-n", "iptables", *args], capture_output=True, text=True)
            if res.returncode != 0:
                if check:
                    raise InfrastructureError(f"iptables {' '.join(args)} in {node.name}: {res.stderr.strip()}")
                return False
        return True

    def _helper(self, container: Any, commands: list[list[str]], check: bool, script: str = "") -> bool:
        """A throw-away container sharing ``container``'s netns with NET_ADMIN runs the iptables commands
        (or ``script``, a shell line)."""
        import docker

        docker_images.ensure(self.client, NET_IMAGE, {})
        script = script or " && ".join("iptables " + " ".join(args) for args in commands)
        name = f"ck-{self.run_id}-net-{secrets.token_hex(2)}"
        self.ledger.record("container", name)
        try:
            self.client.containers.run(NET_IMAGE, ["sh", "-c", script], name=name, remove=True,
                                       network_mode=f"container:{container.id}", cap_add=["NET_ADMIN"],
                                       labels={LABEL: self.run_id})
            return True
        except docker.errors.ContainerError as exc:
            if check:
                raise InfrastructureError(f"iptables in {container.name}: {exc.stderr!r}") from None
            return False

    def block(self, node: Node, peers: list[Node], *, one_way: bool = False,
              probability: float | None = None) -> None:
        """Rules are remembered per node: a stopped node gets them when it starts again (a container's
        network namespace does not outlive it), so a partition holds across a kill and restart."""
        rules = partition_rules(peers, one_way=one_way, probability=probability)
        self._blocked.setdefault(node.name, []).extend(rules)
        if not self.is_running(node):
            return
        if not self._iptables(node, [["-n", "-L", CHAIN]], check=False):
            self._iptables(node, CHAIN_SETUP)
        self._iptables(node, rules)

    def unblock(self, node: Node) -> None:
        self._blocked.pop(node.name, None)
        self._iptables(node, [["-F", CHAIN]], check=False)

    def is_blocked(self, node: Node) -> bool:
        """Rules in the running container's netns; for a stopped one, rules it gets again when it starts."""
        c = self._container(node.name)
        if c is None or c.status not in ("running", "paused"):
            return bool(self._blocked.get(node.name))
        if self.net_faults == "helper":
            return self._helper(c, [], False, script=f"iptables -S {CHAIN} | grep -q -- '-A {CHAIN}'")
        res = subprocess.run(["nsenter", "-t", str(c.attrs["State"]["Pid"]), "-n", "iptables", "-S", CHAIN],
                             capture_output=True, text=True)
        return res.returncode == 0 and any(line.startswith(f"-A {CHAIN}") for line in res.stdout.splitlines())

    def exec(self, node: Node, argv: list[str], timeout: float = 60.0) -> tuple[int, str]:
        """``docker exec`` (the SDK's exec has no timeout: the CLI's process is bounded instead)."""
        try:
            res = subprocess.run(["docker", "exec", self.container_name(node.name), *argv], capture_output=True,
                                 text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise InfrastructureError(f"`{' '.join(argv[-3:])}` on {node.name} timed out after {timeout:g}s") from exc
        return res.returncode, res.stdout + res.stderr

    def log_tail(self, node: Node, lines: int = 20) -> str:
        c = self._container(node.name)
        if c is None:
            return ""
        return str(c.logs(tail=lines).decode(errors="replace")).rstrip()

    def log_lines(self, node: Node, since: float | None = None) -> list[LogLine]:
        """The container's log with docker's own timestamp on each line (``docker logs --timestamps``)."""
        c = self._container(node.name)
        if c is None:
            return []
        kwargs: dict[str, Any] = {"timestamps": True, **({"since": since} if since is not None else {})}
        text = c.logs(**kwargs).decode(errors="replace")
        return [stamped_line(line) for line in text.splitlines()]

    def teardown(self) -> None:
        from chaoskit.backends.ledger import remove_entries

        hand_back(self.client, self.ledger, LABEL)  # files the servers wrote, when this user is not root
        remove_entries(self.ledger)
        self.ledger.forget()


def stamped_line(line: str) -> LogLine:
    """One line of ``docker logs --timestamps``: ``2024-05-01T12:34:56.123456789Z <text>`` (UTC, nanoseconds)."""
    stamp, sep, text = line.partition(" ")
    try:
        day, _, frac = stamp.rstrip("Z").partition(".")
        at = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() + float(f"0.{frac or 0}")
    except ValueError:
        return LogLine(line)
    return LogLine(text if sep else "", at)


def remove_docker_entry(kind: str, name: str, run_id: str) -> bool:
    """Remove a container or network that carries this run's label; never anything else."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        getter = client.containers.get if kind == "container" else client.networks.get
        obj = getter(name)
    except Exception:  # noqa: BLE001 -- gone already, or no daemon: nothing to remove
        return False
    if (obj.attrs.get("Config", {}).get("Labels") or obj.attrs.get("Labels") or {}).get(LABEL) != run_id:
        return False
    obj.remove(force=True) if kind == "container" else obj.remove()
    return True

