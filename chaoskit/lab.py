"""A lab: a topology that ``chaoskit up`` left running, which later processes re-attach to.

``chaoskit up`` runs in one process and ``chaoskit fault`` / ``heal`` / ``status`` / ``down`` in others.
What they need to find the running nodes again is the lab's record, kept in the run's ledger (its
``lab`` key): system, backend, settings, work directory, addresses, each node's spec and pid, what the
backend itself needs (e.g. the partition rules a restarted container gets again), and the faults in
force with the nodes each hit. It is written like the ledger (a temporary file, fsync, rename) and
before acting: a fault is recorded ``applying`` with the nodes its target names now, then
``in-force`` with the nodes it hit.

Re-attaching starts nothing: the backend is rebuilt from the ledger (:func:`attach_backend`), the
system builds its topology object as for a run, and the topology adopts the recorded nodes
(``NodeBook.adopt``). Nothing here is per system.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chaoskit.backends import attach_backend
from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.backends.ledger import Ledger, all_ledgers
from chaoskit.errors import InfrastructureError, UsageError
from chaoskit.faults import _KINDS, Applied, Fault, parse_fault, resolve_all
from chaoskit.systems import get_system
from chaoskit.systems.base import Topology

LAB_VERSION = 1


class NodeRecord(BaseModel):
    """One running node: its spec (to restart it) and where it runs (to reach and signal it)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    argv: list[str]
    workdir: str
    port: int
    user: str | None = None
    env: list[tuple[str, str]] = []
    image: str | None = None
    extra_ports: list[int] = []
    address: str
    pid: int | None = None
    log_path: str | None = None
    extra: dict[str, str] = {}
    published: dict[int, tuple[str, int]] = {}
    replace_entrypoint: bool = False

    @classmethod
    def of(cls, node: Node) -> NodeRecord:
        s = node.spec
        return cls(name=s.name, argv=list(s.argv), workdir=str(s.workdir), port=s.port, user=s.user,
                   env=list(s.env), image=s.image, extra_ports=list(s.extra_ports), address=node.address,
                   pid=node.pid, log_path=str(node.log_path) if node.log_path else None, extra=dict(node.extra),
                   published=dict(node.published), replace_entrypoint=s.replace_entrypoint)

    def spec(self) -> NodeSpec:
        return NodeSpec(self.name, tuple(self.argv), Path(self.workdir), self.port, self.user, tuple(self.env),
                        self.image, tuple(self.extra_ports), self.replace_entrypoint)

    def node(self) -> Node:
        return Node(self.spec(), self.address, self.pid, Path(self.log_path) if self.log_path else None,
                    dict(self.extra), dict(self.published))


class HitNode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    pid: int | None = None  # the process that was hit (a restarted node has another)


class FaultRecord(BaseModel):
    """A fault applied to the lab and not healed yet (``applying``: its application did not finish)."""

    model_config = ConfigDict(extra="forbid")
    id: int
    spec: dict[str, Any]  # the YAML form: parse_fault reads it back
    state: Literal["applying", "in-force"]
    nodes: list[HitNode]
    applied_at: dt.datetime

    def describe(self) -> str:
        names = ", ".join(n.name for n in self.nodes) or "-"
        return f"#{self.id} {self.spec['kind']} {self.spec.get('target', '')} ({names})"


class LabRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = LAB_VERSION
    system: str
    backend: str
    run_id: str
    workdir: str
    settings: dict[str, Any]
    created_at: dt.datetime
    addresses: dict[str, str]
    nodes: dict[str, NodeRecord]
    backend_state: dict[str, Any] = {}
    faults: list[FaultRecord] = []
    next_id: int = Field(1, ge=1)
    client_path: dict[str, Any] | None = None  # Toxiproxy's proxies (``up --toxics``): ClientPath.state()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_record(system: str, settings: dict[str, Any], run_id: str, workdir: str, backend: Backend,
               topology: Topology) -> LabRecord:
    """The record of a topology that was just started (``chaoskit up``), with no fault in force."""
    return LabRecord(system=system, backend=backend.name, run_id=run_id, workdir=workdir, settings=dict(settings),
                     created_at=now(), addresses=dict(topology.addresses),
                     nodes={n: NodeRecord.of(node) for n, node in topology.nodes.items()},
                     backend_state=dict(backend.state()),
                     client_path=topology.client_path.state() if topology.client_path is not None else None)


def save_record(ledger: Ledger, record: LabRecord) -> None:
    """Store the record in the ledger and write it atomically (temporary file, fsync, rename)."""
    ledger.lab = record.model_dump(mode="json")
    ledger.save()


def load_record(ledger: Ledger) -> LabRecord:
    """The lab record of a ledger; UsageError (one line) when it has none or one this version cannot read."""
    if ledger.lab is None:
        raise UsageError(f"run {ledger.run_id} is not a lab that can be re-attached (remove it with `chaoskit down`)")
    try:
        return LabRecord.model_validate(ledger.lab)
    except ValidationError as exc:
        raise UsageError(f"run {ledger.run_id}: unreadable lab record ({exc.errors()[0]['msg']}); "
                         "remove it with `chaoskit down`") from None


def labs() -> list[Ledger]:
    """Every lab up in this state directory (a run `chaoskit up` handed over, with its record)."""
    return [led for led in all_ledgers() if led.lab is not None and not led.owner_alive()]


def select(run_id: str | None) -> Ledger:
    """The lab ``run_id`` names; without one, the only lab up. UsageError (exit 2, one line) otherwise."""
    up = labs()
    listing = ", ".join(f"{led.run_id} ({led.topology} on {led.backend})" for led in up)
    if run_id is not None:
        for led in up:
            if led.run_id == run_id:
                return led
        raise UsageError(f"no lab with run id {run_id!r} is up" + (f" (labs up: {listing})" if up else ""))
    if not up:
        raise UsageError("no lab is up: start one with `chaoskit up SYSTEM`")
    if len(up) > 1:
        raise UsageError(f"{len(up)} labs are up ({listing}): choose one with --run RUN_ID")
    return up[0]


@contextlib.contextmanager
def locked(ledger: Ledger) -> Iterator[Ledger]:
    """Hold the lab's lock (one lab command at a time: a ``status`` in a watch loop must not overwrite
    the record a concurrent ``fault`` writes) and yield its ledger as it is now. UsageError when the lab
    went away meanwhile."""
    lock = ledger.path.with_suffix(".lock")
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fresh = Ledger.load(ledger.path)
        except OSError:
            lock.unlink(missing_ok=True)
            raise UsageError(f"lab {ledger.run_id} was removed meanwhile") from None
        yield fresh


def fault_from_args(kind: str, target: str | None, options: list[str]) -> Fault:
    """A fault from the command line (``KIND [TARGET] --opt KEY=VALUE``), validated by the very model an
    experiment's ``faults:`` entry is; UsageError naming the field otherwise. Values are YAML scalars;
    a comma-separated value of a list option is a list (``peers=sentinels,replicas``)."""
    raw: dict[str, Any] = {"kind": kind} if target is None else {"kind": kind, "target": target}
    for pair in options:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--opt {pair!r}: expected KEY=VALUE")
        if key in ("kind", "target"):
            raise UsageError(f"--opt {key}: give the {key} as an argument")
        raw[key] = _option_value(_KINDS.get(kind), key, yaml.safe_load(value))
    try:
        return parse_fault(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if p != "options") or "fault"
        msg = err["msg"]
        if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            known = [f for f in getattr(_KINDS.get(kind), "__pydantic_fields__", {}) if f not in ("kind", "target")]
            msg = f"unknown option (known: {', '.join(known) or 'none'})"
        raise UsageError(f"fault {kind}: {where}: {msg}") from None


def _option_value(cls: type[Fault] | None, key: str, value: Any) -> Any:
    fields = getattr(cls, "__pydantic_fields__", {})
    if not isinstance(value, str) or key not in fields:
        return value
    annotation = fields[key].annotation
    args = [annotation, *typing.get_args(annotation)]
    return value.split(",") if any(typing.get_origin(a) is list for a in args) else value


class Lab:
    """A running lab, re-attached: backend and topology rebuilt from the record (nothing started), and a
    heal handle for every fault in force (:attr:`applied`, by fault id, oldest first)."""

    def __init__(self, ledger: Ledger, record: LabRecord, backend: Backend, topology: Topology) -> None:
        self.ledger, self.record, self.backend, self.topology = ledger, record, backend, topology
        self.applied: dict[int, Applied] = {}
        for rec in record.faults:
            nodes = [dataclasses.replace(topology.nodes[h.name], pid=h.pid) for h in rec.nodes
                     if h.name in topology.nodes]
            self.applied[rec.id] = Applied(parse_fault(rec.spec), nodes, topology, backend)

    @classmethod
    def attach(cls, ledger: Ledger) -> Lab:
        """Re-attach to the lab of ``ledger``. UsageError for a run that is no lab; MissingDependencyError
        when its platform is gone (no Docker daemon)."""
        from chaoskit.api import lab_experiment

        record = load_record(ledger)
        system = get_system(record.system)
        backend = attach_backend(ledger, record.workdir, record.backend_state)
        topology = system.topology(lab_experiment(record.system, system, record.settings), backend,
                                   Path(record.workdir))
        nodes = {name: rec.node() for name, rec in record.nodes.items()}
        topology.adopt(record.addresses, {name: node.spec for name, node in nodes.items()}, nodes)
        if record.client_path is not None:
            from chaoskit.toxiproxy import ClientPath

            topology.adopt_client_path(ClientPath.restore(record.client_path))
        return cls(ledger, record, backend, topology)

    def save(self) -> None:
        """Record the nodes as they are now (a restarted node has a new pid), the backend's state and the
        faults in force; atomically, with the ledger."""
        self.record.nodes = {n: NodeRecord.of(node) for n, node in self.topology.nodes.items()}
        self.record.backend_state = dict(self.backend.state())
        save_record(self.ledger, self.record)

    def apply(self, fault: Fault) -> Applied:
        """Apply ``fault``, recorded first as ``applying`` (with the nodes its target names now), then as
        ``in-force`` with the nodes it hit; a one-shot fault leaves no record. A failed application stays
        recorded, so ``status`` checks and ``heal`` undoes what it may have done."""
        named = self._named(fault)
        rec = FaultRecord(id=self.record.next_id, spec=fault.spec(), state="applying",
                          nodes=[HitNode(name=n.name, pid=n.pid) for n in named], applied_at=now())
        self.record.next_id += 1
        self.record.faults.append(rec)
        self.applied[rec.id] = Applied(fault, named, self.topology, self.backend)
        self.save()
        try:
            applied = fault.apply(self.topology, self.backend)
        except BaseException:
            self.save()  # what the attempt changed (e.g. a restarted node's pid); the fault stays `applying`
            raise
        if fault.lasting:
            rec.state, rec.nodes = "in-force", [HitNode(name=n.name, pid=n.pid) for n in applied.nodes]
            self.applied[rec.id] = applied
        else:
            self.forget(rec.id)
        self.save()
        return applied

    def _named(self, fault: Fault) -> list[Node]:
        """The nodes the fault's target names now (a best guess of what it will hit)."""
        try:
            groups = getattr(fault, "groups", None)
            if groups:
                return resolve_all(self.topology, [role for group in groups for role in group])
            return self.topology.resolve(fault.target)
        except InfrastructureError:
            return []

    def id_of(self, applied: Applied) -> int | None:
        return next((i for i, a in self.applied.items() if a is applied), None)

    def forget(self, fault_id: int) -> None:
        self.applied.pop(fault_id, None)
        self.record.faults = [f for f in self.record.faults if f.id != fault_id]

    def healed(self, applied: Applied) -> None:
        """``applied`` was healed: drop its record."""
        if (fault_id := self.id_of(applied)) is not None:
            self.forget(fault_id)
            self.save()

    def prune(self) -> list[FaultRecord]:
        """Drop the faults that no longer act (a killed node started again, a paused one killed, rules
        flushed); returns them. A fault whose check fails is kept: better shown than hidden."""
        gone = []
        for rec in list(self.record.faults):
            applied = self.applied[rec.id]
            try:
                acts = applied.fault.in_force(self.topology, self.backend, applied.nodes)
            except Exception:  # noqa: BLE001 -- cannot tell: keep it
                acts = True
            if not acts:
                gone.append(rec)
                self.forget(rec.id)
        if gone:
            self.save()
        return gone

    def select(self, which: str | None) -> list[FaultRecord]:
        """The faults in force that ``which`` names (an id, ``#id`` or a kind; None: all), newest first.
        UsageError when it names none."""
        faults = list(reversed(self.record.faults))
        if which is None:
            return faults
        key = which.lstrip("#")
        chosen = [f for f in faults if (str(f.id) == key if key.isdigit() else f.spec["kind"] == key)]
        if not chosen:
            in_force = ", ".join(f.describe() for f in self.record.faults) or "none"
            raise UsageError(f"no fault {which!r} in force (in force: {in_force})")
        return chosen


def heal_before_removal(ledger: Ledger, say: Any = print) -> None:
    """``down`` / ``cleanup``: heal a lab's faults in force, newest first, before its resources go. Never
    raises: whatever a heal cannot undo, removing the nodes and namespaces does."""
    if ledger.lab is None or not ledger.lab.get("faults"):
        return
    try:
        lab = Lab.attach(ledger)  # the caller's ledger: what a heal starts is then removed with the rest
        lab.prune()
    except Exception as exc:  # noqa: BLE001 -- removal goes on
        say(f"run {ledger.run_id}: could not heal before removal: {exc}")
        return
    for rec in lab.select(None):
        try:
            lab.applied[rec.id].heal()
            lab.healed(lab.applied[rec.id])
            say(f"run {ledger.run_id}: healed {rec.describe()}")
        except Exception as exc:  # noqa: BLE001 -- removal goes on
            say(f"run {ledger.run_id}: could not heal {rec.describe()} before removal: {exc}")
