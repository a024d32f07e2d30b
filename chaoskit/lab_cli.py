"""``chaoskit fault | heal | status``: faults on a running lab, for workshops (see chaoskit/lab.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from chaoskit import console
from chaoskit.api import Cluster
from chaoskit.backends.ledger import Ledger
from chaoskit.errors import InfrastructureError, UsageError
from chaoskit.faults import parse_fault
from chaoskit.lab import FaultRecord, Lab, fault_from_args, load_record, locked, now, select
from chaoskit.systems import get_system
from chaoskit.systems.base import fault_problem, unknown_kind


def _dropped(lab: Lab) -> None:
    """Forget the faults that stopped acting since the last command, and say so."""
    for rec in lab.prune():
        print(f"no longer in force: {rec.describe()}")


def cmd_fault(kind: str, target: str | None, options: list[str], run_id: str | None) -> int:
    """Apply one fault, built and validated exactly as an experiment's ``faults:`` entry; nothing is
    applied (exit 2, one line) when the kind, target or an option is wrong."""
    with locked(select(run_id)) as ledger:
        return _fault(ledger, kind, target, options)


def _fault(ledger: Ledger, kind: str, target: str | None, options: list[str]) -> int:
    record = load_record(ledger)
    system = get_system(record.system)  # registers the system's native kinds
    if (unknown := unknown_kind(kind, system.native_faults)) is not None:
        raise UsageError(f"{record.system}: {unknown}")  # only this system's kinds are named
    fault = fault_from_args(kind, target, options)
    if (problem := fault_problem(fault, system.native_faults, system.roles, set(record.nodes))) is not None:
        raise UsageError(f"{record.system}: {fault.kind}: {problem[1]}")
    lab = Lab.attach(ledger)
    _dropped(lab)
    cluster = Cluster.of_lab(lab)
    applied = cluster.apply(fault)
    hit = ", ".join(applied.node_names) or "-"
    fault_id = lab.id_of(applied)
    if fault_id is None:
        print(f"done: {fault.kind} {fault.target} ({hit}); a one-shot fault, nothing to heal")
    else:
        print(f"applied #{fault_id} {fault.kind} {fault.target} ({hit}); heal it with `chaoskit heal {fault_id}`")
    return 0


def cmd_heal(which: str | None, run_id: str | None) -> int:
    """Heal the faults in force that ``which`` names (an id or a kind; default: all), newest first."""
    with locked(select(run_id)) as ledger:
        return _heal(Lab.attach(ledger), which)


def _heal(lab: Lab, which: str | None) -> int:
    _dropped(lab)
    chosen = lab.select(which)
    if not chosen:
        print("nothing to heal")
        return 0
    cluster = Cluster.of_lab(lab)
    errors = []
    for rec in chosen:
        try:
            cluster.heal(lab.applied[rec.id])
            print(f"healed {rec.describe()}")
        except Exception as exc:  # noqa: BLE001 -- heal the others, then report
            errors.append(f"{rec.describe()}: {exc}")
    if errors:
        raise InfrastructureError(f"{len(errors)} fault(s) could not be healed: {'; '.join(errors)}")
    return 0


def cmd_status(run_id: str | None) -> int:
    """Nodes (address, running), roles now, the faults in force (checked now), and the connection."""
    with locked(select(run_id)) as ledger:
        return _status(Lab.attach(ledger))


def _status(lab: Lab) -> int:
    gone = lab.prune()
    rec, topo, backend = lab.record, lab.topology, lab.backend
    print(f"lab {rec.run_id}: {rec.system} on {rec.backend}, up since {_when(rec.created_at)}; "
          f"work directory {rec.workdir}")
    roles = topo.roles()
    rows = []
    for name, node in topo.nodes.items():
        host, port = node.client_addr
        running = "paused" if backend.is_paused(node) else "yes" if backend.is_running(node) else "no"
        rows.append([name, f"{host}:{port}", running, roles.get(name, "-")])
    print(console.table(["node", "address", "running", "role"], rows))
    print(f"faults in force: {len(rec.faults) or 'none'}")
    if rec.faults:
        print(console.table(["#", "kind", "target", "options", "nodes hit", "applied"], [_row(f) for f in rec.faults]))
    if gone:
        print(f"({len(gone)} fault(s) no longer acting were dropped: {', '.join(f'#{f.id}' for f in gone)})")
    print("connection:")
    conn = Cluster.of_lab(lab).connection
    for f in dataclasses.fields(conn):
        print(f"  {f.name}: {getattr(conn, f.name)}")
    return 0


def _options(spec: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in spec.items() if k not in ("kind", "target", "options")}
    return {**flat, **spec.get("options", {})}


def _row(rec: FaultRecord) -> list[str]:
    """One fault in force; its options are those not at their default, and the peers it is cut from."""
    kind, target = rec.spec["kind"], rec.spec.get("target", "")
    defaults = _options(parse_fault({"kind": kind}).spec())
    options = {k: v for k, v in _options(rec.spec).items() if v != defaults.get(k) or isinstance(v, list)}
    opts = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in options.items())
    nodes = ", ".join(n.name for n in rec.nodes) + (" (applying)" if rec.state == "applying" else "")
    return [str(rec.id), kind, target, opts or "-", nodes or "-", _when(rec.applied_at)]


def _when(at: Any) -> str:
    ago = int((now() - at).total_seconds())
    return f"{at:%H:%M:%S} UTC ({ago}s ago)"
