"""Faults after Toxiproxy: each a small typed object with ``apply`` and ``heal``; every fault reversible.

Targets are roles ("primary", "replicas", "sentinels", "others") or node names, resolved by the
topology *at fault time*, so "primary" means whoever is primary when the fault is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chaoskit.backends.base import Backend, Node
from chaoskit.experiment import (
    KillSpec,
    NativeSpec,
    PacketLossSpec,
    PartitionSpec,
    PauseSpec,
    RestartSpec,
)

if TYPE_CHECKING:
    from chaoskit.systems.base import Topology


class Fault(Protocol):
    kind: str
    target: str

    def apply(self, topology: Topology, backend: Backend) -> list[Node]:
        """Inject the fault; returns the nodes it hit. Raises InfrastructureError if it cannot."""
        ...

    def heal(self, topology: Topology, backend: Backend) -> None:
        """Undo the fault (idempotent). Raises InfrastructureError if it cannot."""
        ...


@dataclass
class Kill:
    target: str = "primary"
    restart_on_heal: bool = True
    kind: str = "kill"
    hit: list[Node] = field(default_factory=list)

    def apply(self, topology: Topology, backend: Backend) -> list[Node]:
        self.hit = topology.resolve(self.target)
        for node in self.hit:
            backend.kill(node)
        return self.hit

    def heal(self, topology: Topology, backend: Backend) -> None:
        if self.restart_on_heal:
            for node in self.hit:
                if not backend.is_running(node):
                    topology.restart(node)


@dataclass
class Pause:
    target: str = "primary"
    kind: str = "pause"
    hit: list[Node] = field(default_factory=list)

    def apply(self, topology: Topology, backend: Backend) -> list[Node]:
        self.hit = topology.resolve(self.target)
        for node in self.hit:
            backend.pause(node)
        return self.hit

    def heal(self, topology: Topology, backend: Backend) -> None:
        for node in self.hit:
            backend.resume(node)


@dataclass
class Restart:
    """Graceful stop then start; heal has nothing left to undo."""

    target: str = "primary"
    kind: str = "restart"

    def apply(self, topology: Topology, backend: Backend) -> list[Node]:
        hit = topology.resolve(self.target)
        for node in hit:
            backend.stop(node)
            topology.restart(node)
        return hit

    def heal(self, topology: Topology, backend: Backend) -> None:
        return None


@dataclass
class Partition:
    """Cut ``target`` off from ``peers`` (both ways, or only inbound when ``one_way``), or split ``groups``."""

    target: str = "primary"
    peers: list[str] = field(default_factory=lambda: ["others"])
    one_way: bool = False
    probability: float | None = None
    groups: list[list[str]] | None = None
    kind: str = "partition"
    hit: list[Node] = field(default_factory=list)

    def apply(self, topology: Topology, backend: Backend) -> list[Node]:
        if self.groups:
            return self._split(topology, backend, self.groups)
        self.hit = topology.resolve(self.target)
        peers = _resolve_all(topology, self.peers, exclude={n.name for n in self.hit})
        for node in self.hit:
            backend.block(node, peers, one_way=self.one_way, probability=self.probability)
        return self.hit

    def _split(self, topology: Topology, backend: Backend, groups: list[list[str]]) -> list[Node]:
        resolved = [_resolve_all(topology, group) for group in groups]
        self.hit = [node for group in resolved for node in group]
        for i, group in enumerate(resolved):
            others = [node for j, g in enumerate(resolved) if j != i for node in g]
            for node in group:
                backend.block(node, others)
        return self.hit

    def heal(self, topology: Topology, backend: Backend) -> None:
        for node in self.hit:
            backend.unblock(node)


def _resolve_all(topology: Topology, roles: list[str], exclude: set[str] | None = None) -> list[Node]:
    """Nodes of several roles/names, each once, in order."""
    out: dict[str, Node] = {}
    for role in roles:
        for node in topology.resolve(role, exclude=exclude):
            out.setdefault(node.name, node)
    return list(out.values())


def make_fault(spec: object, topology: Topology) -> Fault:
    """Turn a validated fault spec into a Fault; native kinds come from the topology."""
    if isinstance(spec, KillSpec):
        return Kill(spec.target, spec.restart_on_heal)
    if isinstance(spec, PauseSpec):
        return Pause(spec.target)
    if isinstance(spec, RestartSpec):
        return Restart(spec.target)
    if isinstance(spec, PartitionSpec):
        return Partition(spec.target, list(spec.peers), spec.one_way,
                         groups=[list(g) for g in spec.groups] if spec.groups else None)
    if isinstance(spec, PacketLossSpec):
        return Partition(spec.target, list(spec.peers), one_way=True, probability=spec.probability,
                         kind="packet-loss")
    if isinstance(spec, NativeSpec):
        return topology.native_fault(spec)
    raise TypeError(f"not a fault spec: {spec!r}")
