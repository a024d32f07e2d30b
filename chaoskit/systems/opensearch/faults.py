"""OpenSearch's native faults (no driver): ``exclude-node``, ``close-index``, ``disk-watermark``. Each acts
through the topology's own REST calls (to the elected manager, else any node that answers)."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Literal

from pydantic.dataclasses import dataclass as fault_model

from chaoskit.backends.base import Backend, Node
from chaoskit.errors import InfrastructureError
from chaoskit.faults import CONFIG, NativeFault, register
from chaoskit.systems.base import Topology, own_topology
from chaoskit.systems.opensearch.settings import INDEX

if TYPE_CHECKING:
    from chaoskit.systems.opensearch.topology import OpenSearchTopology


def _own(topology: Topology, kind: str) -> OpenSearchTopology:
    from chaoskit.systems.opensearch.topology import OpenSearchTopology  # a running cluster: its driver is there

    return own_topology(topology, OpenSearchTopology, kind)


@register
@fault_model(frozen=True, config=CONFIG)
class ExcludeNode(NativeFault):
    """``cluster.routing.allocation.exclude._name``: the cluster moves every shard copy off the target (a
    node drained for maintenance); heal lets them back."""

    target: str = "primary-holder"
    kind: Literal["exclude-node"] = field(default="exclude-node", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        os_ = _own(topology, self.kind)
        hit = os_.resolve(self.target)
        os_.cluster_settings({"cluster.routing.allocation.exclude._name": ",".join(n.name for n in hit)})
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        _own(topology, self.kind).cluster_settings(
            {"cluster.routing.allocation.exclude._name": None})


@register
@fault_model(frozen=True, config=CONFIG)
class CloseIndex(NativeFault):
    """Close the experiment's index (``POST /chaoskit/_close``): every read and write is refused until
    heal opens it again. The target is only recorded (every node is hit)."""

    target: str = "all"
    kind: Literal["close-index"] = field(default="close-index", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        os_ = _own(topology, self.kind)
        os_.on_any("POST", f"/{INDEX}/_close?wait_for_active_shards=0", timeout=30)
        return os_.resolve(self.target)

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        _own(topology, self.kind).on_any("POST", f"/{INDEX}/_open", timeout=30)

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        return _own(topology, self.kind).index_closed()


@register
@fault_model(frozen=True, config=CONFIG)
class DiskWatermark(NativeFault):
    """Disk flood stage: the disk watermarks set below what the disk already holds, so every node (the lab's
    nodes share one disk) is over flood stage; within ``cluster_info_interval_s`` the cluster puts a
    read-only-allow-delete block on every index with a shard there, and writes are refused (429). Heal
    resets the watermarks and lifts the block (OpenSearch would lift it by itself once below the high
    watermark; heal does not wait for that)."""

    target: str = "all"
    kind: Literal["disk-watermark"] = field(default="disk-watermark", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        os_ = _own(topology, self.kind)
        used = os_.disk_used_percent()
        if used < 4:
            raise InfrastructureError(f"the disk is only {used:.1f}% used: no watermark below it to set")
        low, high, flood = (max(1, int(used) - d) for d in (3, 2, 1))
        os_.cluster_settings({"cluster.routing.allocation.disk.watermark.low": f"{low}%",
                              "cluster.routing.allocation.disk.watermark.high": f"{high}%",
                              "cluster.routing.allocation.disk.watermark.flood_stage": f"{flood}%"})
        return os_.resolve(self.target)

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        os_ = _own(topology, self.kind)
        os_.cluster_settings({f"cluster.routing.allocation.disk.watermark.{w}": None
                              for w in ("low", "high", "flood_stage")})
        os_.on_any("PUT", f"/{INDEX}/_settings", {"index.blocks.read_only_allow_delete": None})

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        return _own(topology, self.kind).watermark_lowered()
