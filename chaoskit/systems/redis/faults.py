"""Redis's native faults (no driver here: each acts through the running topology, which has one)."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator
from pydantic.dataclasses import dataclass as fault_model

from chaoskit.backends.base import Backend, Node
from chaoskit.faults import CONFIG, NativeFault, register
from chaoskit.systems.base import Topology, own_topology

if TYPE_CHECKING:
    from chaoskit.systems.redis.topology import RedisTopology


def _redis(topology: Topology, kind: str) -> RedisTopology:
    from chaoskit.systems.redis.topology import RedisTopology  # a running topology: redis-py is there

    return own_topology(topology, RedisTopology, kind)


@register
@fault_model(frozen=True, config=CONFIG)
class SentinelFailover(NativeFault):
    """Planned failover (``SENTINEL FAILOVER``): the managed-service "failover" button. Nothing to heal."""

    kind: Literal["sentinel-failover"] = field(default="sentinel-failover", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        topo = _redis(topology, self.kind)
        hit = topo.resolve("primary")
        topo.sentinel_failover()
        return hit


@register
@fault_model(frozen=True, config=CONFIG)
class ClientPause(NativeFault):
    """``CLIENT PAUSE`` on the target (``mode`` write: writes only; all: every command): the server
    stalls, nothing fails over. Heal unpauses."""

    mode: Literal["write", "all"] = "write"
    option_fields = ("mode",)
    kind: Literal["client-pause"] = field(default="client-pause", kw_only=True)

    @field_validator("mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        topo = _redis(topology, self.kind)
        hit = topo.resolve(self.target)
        for node in hit:
            topo.command(node, "CLIENT", "PAUSE", 600000, self.mode.upper())
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        topo = _redis(topology, self.kind)
        for node in nodes:
            topo.command(node, "CLIENT", "UNPAUSE")
