"""MongoDB's native faults (no driver here: each acts through the running topology, which has one)."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass as fault_model

from chaoskit.backends.base import Backend, Node
from chaoskit.faults import CONFIG, NativeFault, register
from chaoskit.systems.base import Topology, own_topology

if TYPE_CHECKING:
    from chaoskit.systems.mongo.topology import MongoTopology


def _mongo(topology: Topology, kind: str) -> MongoTopology:
    from chaoskit.systems.mongo.topology import MongoTopology  # a running topology: pymongo is there

    return own_topology(topology, MongoTopology, kind)


@register
@fault_model(frozen=True, config=CONFIG)
class StepDown(NativeFault):
    """``replSetStepDown`` on the primary: the planned failover (maintenance, upgrades); heal is a no-op."""

    step_down_s: Annotated[int, Field(ge=1)] = 10
    option_fields = ("step_down_s",)
    kind: Literal["stepdown"] = field(default="stepdown", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        topo = _mongo(topology, self.kind)
        primary = topo.resolve("primary")
        topo.step_down(primary[0], self.step_down_s)
        return primary


@register
@fault_model(frozen=True, config=CONFIG)
class ReplicationPause(NativeFault):
    """Stop the targets fetching the oplog (fail point ``stopReplProducer``): a secondary falls behind
    while it stays up and keeps answering reads and heartbeats. Heal resumes replication."""

    target: str = "replica"
    kind: Literal["replication-pause"] = field(default="replication-pause", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        topo = _mongo(topology, self.kind)
        hit = topo.resolve(self.target)
        for node in hit:
            topo.command(node, {"configureFailPoint": "stopReplProducer", "mode": "alwaysOn"})
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        topo = _mongo(topology, self.kind)
        for node in nodes:
            topo.command(node, {"configureFailPoint": "stopReplProducer", "mode": "off"}, 5.0)
