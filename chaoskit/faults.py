"""The one fault model: every fault is a small, typed, frozen object -- in YAML and in Python alike.

After Toxiproxy: a fault is a config struct plus the code that carries it out, and it is always
reversible. ``fault.apply(topology, backend)`` injects it and returns an :class:`Applied` handle whose
``heal()`` undoes exactly that application; the fault object itself keeps no state, so one object can
be applied many times (in one run or in several) without anything leaking between uses.

Targets are roles ("primary", "replica", "replicas", "others", a system group such as "sentinels")
or node names, resolved by the topology *at fault time*: "primary" means whoever is primary when
the fault is applied.

An experiment's ``faults:`` list is validated into these very objects (:data:`FaultField`); each
system registers its native kinds (``@register``) next to the code that knows how to carry them out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import ConfigDict, Field, PlainSerializer, PlainValidator, TypeAdapter, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError, ValidationError

from chaoskit.backends.base import Backend, Node

if TYPE_CHECKING:
    from chaoskit.systems.base import Topology

CONFIG = ConfigDict(extra="forbid")
GENERIC_FAULT_KINDS = ("kill", "pause", "restart", "partition", "packet-loss")


@dataclass(frozen=True, config=CONFIG)
class Fault:
    """Base of every fault kind. Subclasses implement :meth:`inject` and, when there is something to
    undo, :meth:`revert`; users call :meth:`apply` (or ``Cluster.fault``)."""

    target: str = "primary"
    kind: str = field(default="", kw_only=True)

    def apply(self, topology: Topology, backend: Backend) -> Applied:
        """Inject the fault now; returns the handle that heals it. Raises InfrastructureError if it cannot."""
        return Applied(self, self.inject(topology, backend), topology, backend)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        """Carry the fault out; returns the nodes it hit. Raises InfrastructureError if it cannot."""
        raise NotImplementedError

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        """Undo what :meth:`inject` did to ``nodes`` (idempotent). Nothing to undo by default."""
        return None

    def targets(self) -> list[str]:
        """Every role or node name this fault refers to (validated against the system)."""
        return [self.target]

    @property
    def lasting(self) -> bool:
        """True when the fault holds until healed; False for a one-shot act (restart, planned failover)."""
        return type(self).revert is not Fault.revert

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        """Whether this fault, applied to ``nodes`` (as they were when hit), still acts now. By default
        (state held by the server process, e.g. ``CLIENT PAUSE``): every node hit still runs the very
        process that was hit. A one-shot fault is never in force."""
        if not self.lasting:
            return False
        now = [topology.nodes[n.name] for n in nodes]
        return all(backend.is_running(cur) and cur.pid == hit.pid for cur, hit in zip(now, nodes, strict=True))

    def spec(self) -> dict[str, Any]:
        """The YAML form (what an experiment's ``faults:`` entry holds); ``parse_fault`` reads it back."""
        values = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "kind"}
        return {"kind": self.kind, **values}


@dataclasses.dataclass(eq=False)
class Applied:
    """One application of a fault: the nodes it hit and how to undo it. :meth:`heal` is idempotent."""

    fault: Fault
    nodes: list[Node]
    topology: Topology
    backend: Backend
    healed: bool = False

    def heal(self) -> None:
        """Undo this application (once; later calls do nothing). Raises what the fault's revert raises."""
        if not self.healed:
            self.fault.revert(self.topology, self.backend, self.nodes)
            self.healed = True

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---- the generic kinds: every system supports them ----------------------------------------------

@dataclass(frozen=True, config=CONFIG)
class Kill(Fault):
    """SIGKILL the target (the whole node, as a crashed VM); heal starts it again unless told not to."""

    restart_on_heal: bool = True
    kind: Literal["kill"] = field(default="kill", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        hit = topology.resolve(self.target)
        for node in hit:
            backend.kill(node)
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        if self.restart_on_heal:
            for node in nodes:
                if not backend.is_running(topology.nodes[node.name]):
                    topology.restart(node)

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        """While a node it hit is down (a node started again by anyone ends it)."""
        return any(not backend.is_running(topology.nodes[n.name]) for n in nodes)


@dataclass(frozen=True, config=CONFIG)
class Pause(Fault):
    """Freeze the target (SIGSTOP / docker pause): it holds its connections but answers nothing."""

    kind: Literal["pause"] = field(default="pause", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        hit = topology.resolve(self.target)
        for node in hit:
            backend.pause(node)
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        for node in nodes:
            backend.resume(node)

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        """While a node it hit is frozen (a node killed, or resumed, since is not)."""
        return any(backend.is_paused(topology.nodes[n.name]) for n in nodes)


@dataclass(frozen=True, config=CONFIG)
class Restart(Fault):
    """Graceful stop then start; heal has nothing left to undo."""

    kind: Literal["restart"] = field(default="restart", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        hit = topology.resolve(self.target)
        for node in hit:
            backend.stop(node)
            topology.restart(node)
        return hit


@dataclass(frozen=True, config=CONFIG)
class _Blocking(Fault):
    """A network fault: iptables rules on the nodes it hit, removed on heal (rules are kept per node)."""

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        for node in nodes:
            backend.unblock(node)

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        """While a node it hit carries blocking rules (see ``Backend.is_blocked``)."""
        return any(backend.is_blocked(topology.nodes[n.name]) for n in nodes)


@dataclass(frozen=True, config=CONFIG)
class Partition(_Blocking):
    """Cut ``target`` off from the nodes named by ``peers`` (roles or names; ``others`` = every other node).

    Clients (your process) keep reaching every node. ``one_way`` drops only what ``target`` receives
    from the peers; it can still send to them. ``groups`` splits the nodes into groups (roles or
    names) that cannot talk to each other; ``target`` and ``peers`` are then ignored.
    """

    peers: list[str] = field(default_factory=lambda: ["others"])
    one_way: bool = False
    groups: Annotated[list[list[str]] | None, Field(min_length=2)] = None  # split: no traffic between groups
    kind: Literal["partition"] = field(default="partition", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        if self.groups:
            return _split(topology, backend, self.groups)
        hit = topology.resolve(self.target)
        peers = resolve_all(topology, self.peers, exclude={n.name for n in hit})
        for node in hit:
            backend.block(node, peers, one_way=self.one_way)
        return hit

    def targets(self) -> list[str]:
        if self.groups:
            return [role for group in self.groups for role in group]
        return [self.target, *self.peers]


@dataclass(frozen=True, config=CONFIG)
class PacketLoss(_Blocking):
    """Drop a fraction of the packets ``target`` receives from ``peers`` (iptables statistic)."""

    target: str = "replicas"
    peers: list[str] = field(default_factory=lambda: ["primary"])
    probability: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    kind: Literal["packet-loss"] = field(default="packet-loss", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        hit = topology.resolve(self.target)
        peers = resolve_all(topology, self.peers, exclude={n.name for n in hit})
        for node in hit:
            backend.block(node, peers, one_way=True, probability=self.probability)
        return hit

    def targets(self) -> list[str]:
        return [self.target, *self.peers]


def _split(topology: Topology, backend: Backend, groups: list[list[str]]) -> list[Node]:
    resolved = [resolve_all(topology, group) for group in groups]
    for i, group in enumerate(resolved):
        others = [node for j, g in enumerate(resolved) if j != i for node in g]
        for node in group:
            backend.block(node, others)
    return [node for group in resolved for node in group]


def resolve_all(topology: Topology, roles: list[str], exclude: set[str] | None = None) -> list[Node]:
    """Nodes of several roles/names, each once, in order."""
    out: dict[str, Node] = {}
    for role in roles:
        for node in topology.resolve(role, exclude=exclude):
            out.setdefault(node.name, node)
    return list(out.values())


# ---- native kinds: defined by each system module ------------------------------------------------

@dataclass(frozen=True, config=CONFIG)
class NativeFault(Fault):
    """A database-native fault. In YAML its own fields sit under ``options:`` (``{kind: client-pause,
    options: {mode: write}}``); in Python they are plain keyword arguments (``ClientPause(mode="write")``)."""

    option_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _flatten_options(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("options"), dict):
            data = {**{k: v for k, v in data.items() if k != "options"}, **data["options"]}
        return data

    def spec(self) -> dict[str, Any]:
        out = super().spec()
        options = {name: out.pop(name) for name in self.option_fields}
        return {**out, "options": options} if options else out


# ---- kinds and validation -----------------------------------------------------------------------

_KINDS: dict[str, type[Fault]] = {}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def kind_of(cls: type[Fault]) -> str:
    kind = next(f.default for f in dataclasses.fields(cls) if f.name == "kind")
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} needs a literal default for its kind field")
    return kind


F = TypeVar("F")


def register(cls: F) -> F:
    """Make a Fault subclass known to experiment files (``kind: <its kind>``). Returns the class."""
    if not (isinstance(cls, type) and issubclass(cls, Fault)):
        raise TypeError(f"{cls!r} is not a Fault class")
    _KINDS[kind_of(cls)] = cls
    _ADAPTERS[kind_of(cls)] = TypeAdapter(cls)
    return cls


for _cls in (Kill, Pause, Restart, Partition, PacketLoss):
    register(_cls)


def fault_kinds() -> tuple[str, ...]:
    """Every registered kind: the generic ones first, then the natives of the systems imported so far."""
    return tuple(_KINDS)


def parse_fault(raw: Any) -> Fault:
    """A fault from its YAML form (a mapping with ``kind``); a Fault passes through unchanged.

    Raises pydantic's ValidationError, located at the offending field (e.g. ``kind``, ``probability``).
    """
    if isinstance(raw, Fault):
        return raw
    if not isinstance(raw, dict) or "kind" not in raw:
        raise PydanticCustomError("fault", "each fault needs a 'kind'")
    adapter = _ADAPTERS.get(raw["kind"])
    if adapter is None:
        msg = f"unknown fault {raw['kind']!r} (known: {', '.join(_KINDS)})".replace("{", "(").replace("}", ")")
        raise ValidationError.from_exception_data("Fault", [
            {"type": PydanticCustomError("unknown_fault", msg), "loc": ("kind",), "input": raw["kind"]}])
    fault: Fault = adapter.validate_python(raw)
    return fault


FaultField = Annotated[Fault, PlainValidator(parse_fault), PlainSerializer(lambda f: f.spec())]
"""Use as a pydantic field type: validates a YAML mapping into the registered Fault, dumps it back."""
