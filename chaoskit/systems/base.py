"""The topology/system role: how one system's nodes start, become ready and report their roles."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.base import Client
from chaoskit.drivers import Driver
from chaoskit.errors import InfrastructureError, UsageError
from chaoskit.server_logs import LogSpec

if TYPE_CHECKING:
    from chaoskit.dns import DnsZone
    from chaoskit.experiment import ClientSpec, Experiment
    from chaoskit.faults import Fault
    from chaoskit.toxiproxy import ClientPath


@dataclass(frozen=True)
class Event:
    """Something the system said about itself (e.g. Sentinel's +odown), stamped on the run clock."""

    time: float
    source: str
    kind: str
    detail: str
    node: str | None = None  # the node it is about, when the system names one (e.g. the new primary)


@dataclass(frozen=True)
class ComposeNode:
    """One service of a system's standalone Compose lab (``compose/<system>.yml``).

    ``files`` (path, content) are written inside the container before ``argv`` is exec'd; ``image``
    names another image than the system's (its variable and default); ``build`` is a directory under
    ``chaoskit/images`` (package data) that builds the system image, with its ``BASE`` build argument
    (variable, default).
    """

    name: str
    address: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()
    image: tuple[str, str] | None = None
    user: str | None = None
    build: tuple[str, str, str] | None = None


EventSink = Callable[[Event], None]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class LocalImage:
    """The image ``chaoskit images`` builds for a system where no registry answers (CI): ``tag``, from the
    build context ``chaoskit/images/<context>`` (package data); ``stage`` adds the files the context needs
    besides its Dockerfile (e.g. binaries of this host) to a copy of it, reporting through ``say``."""

    tag: str
    context: str
    stage: Callable[[Path, Progress], None] | None = None


@dataclass(frozen=True)
class Facts:
    """What the topology knows after the run, for the checkers (names, not addresses)."""

    detected_kinds: tuple[str, ...]  # event kinds meaning "failure detected", e.g. ("+odown",)
    promoted_kinds: tuple[str, ...]  # event kinds meaning "new primary", e.g. ("+switch-master",)
    leaderless: bool = False  # no primary (e.g. a Cassandra ring): no failover, RTO = recovery after the last error
    one_primary: bool = True  # False: a primary per shard on several nodes (OpenSearch): no one old primary to demote
    cache: bool = False  # a cache (Memcached): no write to lose, a miss is no stale read; hit-ratio figures instead


class Topology(Protocol):
    nodes: dict[str, Node]
    specs: dict[str, NodeSpec]  # how each node was started (to restart it, or to re-attach a lab)
    addresses: dict[str, str]
    facts: Facts
    client_path: ClientPath | None  # Toxiproxy on the client path, when the experiment has toxic faults
    dns: DnsZone | None  # the run's DNS zone, when the experiment has ``dns:`` (set before ``up``)
    aside: tuple[str, ...]  # run-level nodes beside the system (the cache of ``cache:``): up() gives them addresses

    @property
    def log_evidence(self) -> LogSpec | None:
        """What the run keeps of the servers' logs around each heal (chaoskit.server_logs); None: nothing."""
        ...

    def adopt(self, addresses: dict[str, str], specs: dict[str, NodeSpec], nodes: dict[str, Node]) -> None:
        """Take over nodes that are already running (a lab a later process re-attaches to); starts nothing."""
        ...

    def up(self, progress: Progress) -> None:
        """Create the network and start every node. Raises InfrastructureError (with log tail)."""
        ...

    def wait_ready(self, timeout: float) -> None:
        """Block until the system can take a failover. Raises InfrastructureError with a log tail."""
        ...

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        """Nodes for a role or node name, as of now. Raises InfrastructureError if none match."""
        ...

    def roles(self) -> dict[str, str]:
        """Node name -> role as each node reports it now ('primary', 'replica', 'down', ...)."""
        ...

    def node_for_address(self, host: str, port: int) -> str | None:
        """Map an announced address back to a node name."""
        ...

    def restart(self, node: Node) -> Node:
        """Start a stopped node again with the same configuration."""
        ...

    def route_clients(self, path: ClientPath) -> None:
        """Make the workload client reach the data nodes through ``path``'s proxies (UsageError if the
        system has no toxic faults)."""
        ...

    def adopt_client_path(self, path: ClientPath) -> None:
        """The same with proxies that exist already (a re-attached lab's): nothing is created."""
        ...

    def publish_dns(self) -> tuple[str, ...]:
        """Write the initial records of ``dns`` from the roles now (the system's hooks keep them up to
        date from then on); returns the labels served. UsageError if the system has no DNS endpoints."""
        ...

    def client(self, spec: ClientSpec, f: str) -> Client:
        """A new workload client for op ``f`` using the pattern named in ``spec``."""
        ...

    def connection(self) -> Any:
        """How a user's own driver reaches the running topology: the system's frozen connection
        dataclass (e.g. ``RedisConnection``), with addresses this process can reach."""
        ...

    def watch(self, sink: EventSink, clock: Callable[[], float]) -> Callable[[], None]:
        """Start streaming topology events into ``sink``; returns a function that stops it."""
        ...

    def wait_settled(self, timeout: float) -> bool:
        """Wait until one primary is agreed and replicas caught up; False on timeout."""
        ...

    def server(self) -> dict[str, Any] | None:
        """The server that runs, as it reports itself once ready (``{"version": "3.6.0", "java": 25}``), or None
        where the system does not say; for the journal."""
        ...

    def final_read(self) -> list[Any]:
        """A strong read of every written value. Raises on failure (the checker then says unknown)."""
        ...


class System(Protocol):
    # read-only members (a plain class attribute satisfies each)
    @property
    def name(self) -> str: ...

    @property
    def client_patterns(self) -> tuple[str, ...]: ...

    @property
    def native_faults(self) -> tuple[str, ...]: ...

    @property
    def roles(self) -> tuple[str, ...]:
        """The fault targets besides node names."""
        ...

    @property
    def settings_model(self) -> type[BaseModel]:
        """The ``topology:`` knobs (also ``chaoskit.cluster(**settings)``)."""
        ...

    @property
    def drivers(self) -> tuple[Driver, ...]:
        """The Python packages its topology and clients import (the extra ``chaoskit[<name>]`` installs them)."""
        ...

    @property
    def run_weight(self) -> float:
        """How heavy one run is (CPU and memory) against a Redis run, 1.0: ``-j auto`` divides by it."""
        ...

    def validate(self, exp: Experiment) -> None:
        """Raise ValueError (one line, naming the field) if the experiment does not fit this system."""
        ...

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> Topology:
        """Build (not start) the topology an experiment describes; the first call imports the drivers
        (ImportError when one is missing: check :attr:`drivers` first, see :func:`chaoskit.drivers.require_drivers`)."""
        ...

    def binaries(self) -> dict[str, str]:
        """Server binaries the local backend needs -> how to install them (for the exit-3 hint)."""
        ...

    def images(self) -> list[str]:
        """Container images the docker backend needs (official by default, overridable by env)."""
        ...

    def image_variable(self) -> tuple[str, str]:
        """The environment variable naming this system's image, and its default (official) image."""
        ...

    @property
    def local_image(self) -> LocalImage | None:
        """What ``chaoskit images`` builds for this system (None: nothing, the official image is needed)."""
        ...

    def image_for(self, topology: Mapping[str, Any]) -> tuple[str, LocalImage | None]:
        """The image a docker run of this ``topology:`` asks for (its version's, where the system has versions),
        and the local image that stands in for it where it cannot be had (None: none, or the user's own image)."""
        ...

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """The default topology as Compose services at ``{net}.10``, ``{net}.11``, ...; the first data node
        is the initial primary. Raise ValueError if the system has no Compose lab."""
        ...


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, *,
               interval: float = 0.1, log_tail: Callable[[], str] = lambda: "") -> None:
    """Poll ``predicate`` until true; raise InfrastructureError naming ``what`` with a log tail."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # noqa: BLE001 -- a poll that errors is just "not yet"
            last = exc
        time.sleep(interval)
    why = f" (last error: {last})" if last else ""
    raise InfrastructureError(f"timed out after {timeout:g}s waiting for {what}{why}", log_tail())


GENERIC_FAULTS = ("kill", "pause", "restart", "partition", "packet-loss")


def unknown_kind(kind: str, native_faults: tuple[str, ...]) -> str | None:
    """None when a system with these native kinds supports ``kind``, else the one-line problem."""
    if kind in GENERIC_FAULTS or kind in native_faults:
        return None
    return f"unknown fault {kind!r} (known: {', '.join((*GENERIC_FAULTS, *native_faults))})"


def fault_problem(fault: Fault, native_faults: tuple[str, ...], roles: tuple[str, ...],
                  names: set[str]) -> tuple[str, str] | None:
    """What is wrong with ``fault`` on a system (the field, the one-line problem), or None."""
    if (problem := unknown_kind(fault.kind, native_faults)) is not None:
        return "kind", problem
    for role in fault.targets():
        if role not in roles and role not in names:
            return "", f"unknown target {role!r} (roles: {', '.join(roles)}; nodes: {', '.join(sorted(names))})"
    return None


def validate_settings(settings_model: type[BaseModel], settings: dict[str, Any]) -> BaseModel:
    """The topology settings, validated; ValueError ``topology.<field>: <problem>`` otherwise."""
    try:
        return settings_model.model_validate(settings)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"topology.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def validate_experiment(exp: Experiment, settings_model: type[BaseModel], patterns: tuple[str, ...],
                        native_faults: tuple[str, ...], roles: tuple[str, ...],
                        node_names: Callable[[Any], set[str]], client_options: tuple[str, ...] = (),
                        dns: bool = False, cache: bool = False) -> None:
    """The checks every system makes: topology settings, client pattern, fault kinds and targets, and
    ``dns:`` only where the system keeps DNS records (``dns``). Raises ValueError with one line naming the field.
    """
    settings = validate_settings(settings_model, exp.topology)
    if exp.dns is not None and not dns:
        raise ValueError(f"dns: this system has no DNS endpoints yet ({exp.system})")
    if exp.cache is not None and not cache:
        raise ValueError(f"cache: no cache-aside workload for this system yet ({exp.system})")
    if exp.client.factory is None and exp.client.pattern not in patterns:
        raise ValueError(f"client.pattern: unknown pattern {exp.client.pattern!r} (known: {', '.join(patterns)})")
    for key in exp.client.options:
        if key not in client_options:
            raise ValueError(f"client.options.{key}: unknown option (known: {', '.join(client_options) or 'none'})")
    names = node_names(settings)
    for i, fault in enumerate(exp.faults):
        if (problem := fault_problem(fault, native_faults, roles, names)) is not None:
            where, why = problem
            raise ValueError(f"faults.{i}{'.' + where if where else ''}: {why}")


T = TypeVar("T")


def own_topology(topology: object, cls: type[T], kind: str) -> T:
    """``topology`` as the system's own class, for a native fault; UsageError for another system's."""
    if not isinstance(topology, cls):
        raise UsageError(f"fault {kind!r} does not belong to this system ({type(topology).__name__})")
    return topology


def resolve_role(role: str, nodes: dict[str, Node], data_nodes: list[str], primary: Callable[[], str | None],
                 groups: dict[str, list[str]], exclude: set[str] | None = None) -> list[Node]:
    """The shared meaning of fault targets: a node name; ``primary`` / ``replica`` (the first other
    data node) / ``replicas`` as of now; a system group (e.g. ``sentinels``); ``others`` / ``all``."""
    if role in nodes:
        names = [role]
    elif role in ("primary", "replica", "replicas"):
        current = primary()
        if current is None:
            raise InfrastructureError("no primary found to target")
        replicas = [n for n in data_nodes if n != current]
        names = {"primary": [current], "replica": replicas[:1], "replicas": replicas}[role]
    elif role in groups:
        names = list(groups[role])
    elif role in ("others", "all"):
        names = list(nodes)
    else:
        raise InfrastructureError(f"unknown role {role!r}")
    return [nodes[n] for n in names if n not in (exclude or set())]


def node_at(nodes: dict[str, Node], data_nodes: list[str], host: str, port: int) -> str | None:
    """The data node announced as (in-network address) or reached at (client address) ``host:port``."""
    for name in data_nodes:
        node = nodes.get(name)
        if node is not None and (node.address == host or node.client_addr == (host, port)):
            return name
    return None


class NodeBook:
    """What every topology keeps: its nodes by name, the specs that started them (to restart one),
    their log tails for error messages, and a settle wait that answers True/False."""

    log_evidence: LogSpec | None = None  # a system's patterns worth a look in its logs (chaoskit.server_logs)

    def __init__(self, backend: Backend, workdir: Path) -> None:
        self.backend, self.workdir = backend, workdir
        self.nodes: dict[str, Node] = {}
        self.addresses: dict[str, str] = {}
        self.specs: dict[str, NodeSpec] = {}
        self.client_path: ClientPath | None = None  # Toxiproxy between the workload client and the nodes
        self.dns: DnsZone | None = None  # the run's DNS zone (chaoskit.dns), set before up()
        self.aside: tuple[str, ...] = ()  # nodes beside the system (chaoskit.cache_aside), set before up()

    def adopt(self, addresses: dict[str, str], specs: dict[str, NodeSpec], nodes: dict[str, Node]) -> None:
        """Take over running nodes (started by another process), then :meth:`adopted`; starts nothing."""
        self.addresses, self.specs, self.nodes = dict(addresses), dict(specs), dict(nodes)
        self.adopted()

    def adopted(self) -> None:
        """Hook for what a system sets up in this process once its nodes exist (nothing by default)."""

    def _start(self, spec: NodeSpec) -> Node:
        self.specs[spec.name] = spec
        self.nodes[spec.name] = self.backend.start(spec)
        return self.nodes[spec.name]

    def restart(self, node: Node) -> Node:
        return self._start(self.specs[node.name])

    def server(self) -> dict[str, Any] | None:
        return None

    def publish_dns(self) -> tuple[str, ...]:
        raise UsageError(f"dns: DNS endpoints are not supported on {type(self).__name__} yet")

    def client_nodes(self) -> list[str]:
        """The nodes a workload client connects to (each gets a proxy for toxic faults)."""
        raise UsageError(f"toxic faults are not supported on {type(self).__name__} yet")

    def route_clients(self, path: ClientPath) -> None:
        """Put a proxy in front of each of :meth:`client_nodes`: from now on the workload client (and a
        user's client, through ``connection()``) reaches them only through ``path``; chaoskit's own
        control connections (roles, readiness, the final read) still go direct."""
        for name in self.client_nodes():
            path.add(self.nodes[name])
        self.adopt_client_path(path)

    def adopt_client_path(self, path: ClientPath) -> None:
        """Use proxies that exist already (a re-attached lab's): clients go through ``path`` from now on."""
        self.client_path = path

    def _tail(self, names: list[str] | None = None) -> str:
        tails = ((n, self.backend.log_tail(self.nodes[n], 6)) for n in names or list(self.nodes))
        return "\n".join(f"[{n}]\n{t}" for n, t in tails if t)

    def _check_running(self) -> None:
        for node in self.nodes.values():
            if not self.backend.is_running(node):
                raise InfrastructureError(f"{node.name} exited during start-up", self._tail())

    def _settles(self, predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> bool:
        try:
            wait_until(predicate, timeout, what, interval=interval)
            return True
        except InfrastructureError:
            return False


class ImageOf:
    """The image part of a System: one environment variable naming the image, with an official default."""

    image: tuple[str, str]
    local_image: LocalImage | None = None

    def images(self) -> list[str]:
        return [os.environ.get(*self.image)]

    def image_variable(self) -> tuple[str, str]:
        return self.image

    def image_for(self, topology: Mapping[str, Any]) -> tuple[str, LocalImage | None]:
        """One image whatever the topology: the variable's (no stand-in), else the official one and the local."""
        if self.image[0] in os.environ:
            return os.environ[self.image[0]], None
        return self.image[1], self.local_image
