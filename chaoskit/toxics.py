"""Toxic faults: slow or broken links on the client path, carried out by Toxiproxy.

They are faults of the one fault model (:mod:`chaoskit.faults`): frozen, typed, ``apply`` returns the
handle whose ``heal`` removes exactly the toxics it added. The target is resolved at fault time (e.g.
``primary``); each node hit gets a toxic on the proxy that stands between the workload client and it
(:class:`chaoskit.toxiproxy.ClientPath`). Only the client's link is affected: the servers' links to
each other (replication, Sentinel's health checks) are not.

``direction``: ``downstream`` acts on what the node sends to the client (replies), ``upstream`` on
what the client sends to the node (requests). ``toxicity``: the fraction of connections it acts on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from chaoskit.backends.base import Backend, Node
from chaoskit.errors import UsageError
from chaoskit.faults import CONFIG, Fault, register
from chaoskit.toxiproxy import ClientPath, Toxic

if TYPE_CHECKING:
    from chaoskit.systems.base import Topology

Ms = Annotated[int, Field(ge=0, le=3_600_000)]


def client_path(topology: Topology, kind: str) -> ClientPath:
    """The run's proxies; UsageError when the topology was started without them."""
    path = getattr(topology, "client_path", None)
    if path is None:
        raise UsageError(f"fault {kind!r} needs Toxiproxy on the client path, which this topology was started "
                         "without (the runner adds it when an experiment has toxic faults)")
    assert isinstance(path, ClientPath)
    return path


@dataclass(frozen=True, config=CONFIG)
class ToxicFault(Fault):
    """Base of the toxic kinds: one toxic per node hit, on that node's proxy."""

    direction: Literal["upstream", "downstream"] = "downstream"
    toxicity: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    toxic_type: ClassVar[str] = ""

    def attributes(self) -> dict[str, int]:
        raise NotImplementedError

    @property
    def toxic_name(self) -> str:
        """Derived from the fault's spec: heal (in any process) finds exactly what apply added."""
        digest = hashlib.sha1(json.dumps(self.spec(), sort_keys=True).encode()).hexdigest()[:8]
        return f"chaoskit-{self.kind}-{digest}"

    def toxic(self) -> Toxic:
        return Toxic(self.toxic_name, self.toxic_type, self.direction, self.toxicity, self.attributes())

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        path = client_path(topology, self.kind)
        hit = topology.resolve(self.target)
        for node in hit:
            path.api.add_toxic(node.name, self.toxic())
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        path = client_path(topology, self.kind)
        for node in nodes:
            if any(t.name == self.toxic_name for t in path.api.toxics(node.name)):
                path.api.remove_toxic(node.name, self.toxic_name)

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        """While a proxy of a node it hit still carries its toxic."""
        path = client_path(topology, self.kind)
        return any(t.name == self.toxic_name for n in nodes for t in path.api.toxics(n.name))


@register
@dataclass(frozen=True, config=CONFIG)
class Latency(ToxicFault):
    """Delay every chunk of data by ``latency_ms`` (plus or minus up to ``jitter_ms``)."""

    latency_ms: Ms = 1000
    jitter_ms: Ms = 0
    toxic_type: ClassVar[str] = "latency"
    kind: Literal["latency"] = field(default="latency", kw_only=True)

    def attributes(self) -> dict[str, int]:
        return {"latency": self.latency_ms, "jitter": self.jitter_ms}


@register
@dataclass(frozen=True, config=CONFIG)
class Timeout(ToxicFault):
    """A black hole: nothing gets through. After ``timeout_ms`` the connection is closed; with 0 it is
    never closed and the data is held until heal (then delivered: a client that waits sees it late)."""

    timeout_ms: Ms = 0
    toxic_type: ClassVar[str] = "timeout"
    kind: Literal["timeout"] = field(default="timeout", kw_only=True)

    def attributes(self) -> dict[str, int]:
        return {"timeout": self.timeout_ms}


@register
@dataclass(frozen=True, config=CONFIG)
class ResetPeer(ToxicFault):
    """Reset connections (TCP RST) after ``timeout_ms`` (0: at once on the next data)."""

    timeout_ms: Ms = 0
    toxic_type: ClassVar[str] = "reset_peer"
    kind: Literal["reset-peer"] = field(default="reset-peer", kw_only=True)

    def attributes(self) -> dict[str, int]:
        return {"timeout": self.timeout_ms}


@register
@dataclass(frozen=True, config=CONFIG)
class Bandwidth(ToxicFault):
    """Limit the link to ``rate_kb`` kilobytes per second."""

    rate_kb: Annotated[int, Field(ge=1)] = 100
    toxic_type: ClassVar[str] = "bandwidth"
    kind: Literal["bandwidth"] = field(default="bandwidth", kw_only=True)

    def attributes(self) -> dict[str, int]:
        return {"rate": self.rate_kb}


@register
@dataclass(frozen=True, config=CONFIG)
class SlowClose(ToxicFault):
    """Delay the close of a connection by ``delay_ms``."""

    delay_ms: Ms = 1000
    toxic_type: ClassVar[str] = "slow_close"
    kind: Literal["slow-close"] = field(default="slow-close", kw_only=True)

    def attributes(self) -> dict[str, int]:
        return {"delay": self.delay_ms}


@register
@dataclass(frozen=True, config=CONFIG)
class Slicer(ToxicFault):
    """Cut data into packets of ``average_size`` bytes (+- ``size_variation``), ``delay_us`` apart."""

    average_size: Annotated[int, Field(ge=1)] = 16
    size_variation: Annotated[int, Field(ge=0)] = 0
    delay_us: Annotated[int, Field(ge=0)] = 1000
    toxic_type: ClassVar[str] = "slicer"
    kind: Literal["slicer"] = field(default="slicer", kw_only=True)

    def attributes(self) -> dict[str, int]:
        return {"average_size": self.average_size, "size_variation": self.size_variation, "delay": self.delay_us}


@register
@dataclass(frozen=True, config=CONFIG)
class LimitData(ToxicFault):
    """Close each connection once ``bytes`` bytes have passed."""

    bytes: Annotated[int, Field(ge=1)] = 1024
    toxic_type: ClassVar[str] = "limit_data"
    kind: Literal["limit-data"] = field(default="limit-data", kw_only=True)

    def attributes(self) -> dict[str, int]:
        return {"bytes": self.bytes}


TOXIC_KINDS = ("latency", "timeout", "reset-peer", "bandwidth", "slow-close", "slicer", "limit-data")


def uses_toxics(faults: list[Fault]) -> bool:
    """Whether any of these faults needs the proxy on the client path."""
    return any(isinstance(f, ToxicFault) for f in faults)
