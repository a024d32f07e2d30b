"""Cassandra's native faults, through ``nodetool`` run beside the node (as an operator would).

- ``disablegossip``: the node stops gossiping (heal: ``enablegossip``). It announces its shutdown, so
  its peers mark it down at once -- and up again a moment later, because it still answers their echo
  (measured here: DOWN, then UP 0.15-0.3 s later); with no heartbeats from it, their failure detectors
  convict it again ~19 s later (phi 8). It keeps coordinating CQL requests with its stale view of the
  ring. Cassandra warns: "Disabling gossip while native transport is still active is unsafe".
- ``disablebinary``: the node stops serving CQL (port 9042) but stays a replica (heal: ``enablebinary``);
  drivers move its requests to the other coordinators.
- ``drain``: flush, stop accepting writes, stop gossip and CQL: what an operator does before stopping a
  node. The process lives on but serves nothing; heal restarts the node (a drained node cannot resume).
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic.dataclasses import dataclass as fault_model

from chaoskit.backends.base import Backend, Node
from chaoskit.faults import CONFIG, NativeFault, register
from chaoskit.systems.base import Topology, own_topology

if TYPE_CHECKING:
    from chaoskit.systems.cassandra.topology import CassandraTopology


def _ring(topology: Topology, kind: str) -> CassandraTopology:
    from chaoskit.systems.cassandra.topology import CassandraTopology  # a running ring: the driver is there

    return own_topology(topology, CassandraTopology, kind)


@fault_model(frozen=True, config=CONFIG)
class _Nodetool(NativeFault):
    """``nodetool <command>`` on each target; heal runs ``<undo>`` on those still running the process hit."""

    target: str = "any"
    command: ClassVar[str] = ""
    undo: ClassVar[str] = ""

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        ring = _ring(topology, self.kind)
        hit = ring.resolve(self.target)
        for node in hit:
            ring.nodetool(node, self.command)
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        ring = _ring(topology, self.kind)
        for hit in nodes:
            now = ring.nodes[hit.name]
            if backend.is_running(now) and now.pid == hit.pid:  # a node started since has it undone already
                ring.nodetool(now, self.undo)


@register
@fault_model(frozen=True, config=CONFIG)
class DisableGossip(_Nodetool):
    """``nodetool disablegossip`` on the target (default: the first running node); heal: ``enablegossip``."""

    command: ClassVar[str] = "disablegossip"
    undo: ClassVar[str] = "enablegossip"
    kind: Literal["disablegossip"] = field(default="disablegossip", kw_only=True)


@register
@fault_model(frozen=True, config=CONFIG)
class DisableBinary(_Nodetool):
    """``nodetool disablebinary``: the target stops serving CQL, stays a replica; heal: ``enablebinary``."""

    command: ClassVar[str] = "disablebinary"
    undo: ClassVar[str] = "enablebinary"
    kind: Literal["disablebinary"] = field(default="disablebinary", kw_only=True)


@register
@fault_model(frozen=True, config=CONFIG)
class Drain(_Nodetool):
    """``nodetool drain``: flush and stop serving (writes, gossip, CQL); heal restarts the node."""

    command: ClassVar[str] = "drain"
    kind: Literal["drain"] = field(default="drain", kw_only=True)

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        ring = _ring(topology, self.kind)
        for hit in nodes:
            now = ring.nodes[hit.name]
            if backend.is_running(now) and now.pid == hit.pid:
                backend.stop(now)
            if not backend.is_running(ring.nodes[hit.name]):
                ring.restart(now)


NODETOOL_FAULTS = (DisableGossip, DisableBinary, Drain)
