"""Run outputs per DESIGN §2: ``journal.json``, ``history.jsonl`` (with the final read), ``report.html``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaoskit import server_logs
from chaoskit.checkers import Verdict
from chaoskit.experiment import Experiment
from chaoskit.history import History
from chaoskit.systems.base import Event
from chaoskit.verdicts import Check

HEADLINE_METRICS = ("ops_ok", "ops_fail", "ops_info", "acked_writes", "lost_writes", "stale_reads",
                    "unavailable_s", "rto_s")
RTO_KEYS = ("fault_at", "detected_at", "promoted_at", "recovered_at")


@dataclass
class FaultRecord:
    kind: str
    target: str  # node name(s) hit
    role: str  # the role it was aimed at
    applied_at: float
    healed_at: float | None = None


@dataclass
class PhaseRecord:
    name: str
    start: float
    end: float


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _us(x: float | None) -> float | None:
    """Fault and event times keep the history's microseconds, so a recount sees what the checkers saw."""
    return None if x is None else round(x, 6)


def build_journal(*, exp: Experiment, backend: str, started: dt.datetime, verdict: Verdict,
                  checks: list[Check], metrics: dict[str, Any], faults: list[FaultRecord],
                  phases: list[PhaseRecord], events: list[Event], settled: bool | None,
                  roles_after: dict[str, str], event_kinds: dict[str, Any] | None = None,
                  client: str | None = None, server: dict[str, Any] | None = None) -> dict[str, Any]:
    headline = {k: metrics.get(k) for k in HEADLINE_METRICS}
    extra = {k: v for k, v in metrics.items() if k not in headline and k not in RTO_KEYS}
    new_primary = next((n for n, r in roles_after.items() if r == "primary"), None)
    return {
        "experiment": exp.name, "system": exp.system, "backend": backend,
        "started_at": started.isoformat(timespec="seconds"),
        "ended_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "verdict": verdict.value, "purpose": exp.purpose, "hypothesis": exp.hypothesis,
        "client": client or exp.client.label, "compare_with": exp.compare_with,
        **({"server": server} if server else {}),  # additive: readers tolerate its absence
        "checks": [{"name": c.name, "valid": c.valid.value, "detail": c.detail, "expected": c.expected,
                    "observed": c.observed} for c in checks],
        "metrics": {**headline, **extra},
        "faults": [{**asdict(f), "applied_at": _us(f.applied_at), "healed_at": _us(f.healed_at)} for f in faults],
        "phases": [{"name": p.name, "start": _r(p.start), "end": _r(p.end)} for p in phases],
        "rto": {**{k: metrics.get(k) for k in RTO_KEYS},
                "new_primary": new_primary if metrics.get("failover_happened") else None,
                **(event_kinds or {})},
        "events": [{"time": _us(e.time), "source": e.source, "kind": e.kind, "detail": e.detail,
                    **({"node": e.node} if e.node else {})} for e in events],
        "settled": settled, "roles_after": roles_after,
        "settings": {"topology": exp.topology, "workload": exp.workload.model_dump(),
                     "schedule": exp.schedule.model_dump(), "client": exp.client.model_dump(),
                     **({"cache": exp.cache.model_dump()} if exp.cache is not None else {})},
        "history": "history.jsonl",
    }


def write_outputs(out_dir: Path, *, history: History, logs: dict[str, str],
                  evidence: server_logs.Evidence | None = None, **kwargs: Any) -> dict[str, Any]:
    """Write the run directory: the journal, history, report, the nodes' log tails (``logs/``) and, when
    the system keeps any, the servers' log lines around each heal (``evidence.jsonl``)."""
    from chaoskit.report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    if logs:
        (out_dir / "logs").mkdir(exist_ok=True)
        for name, text in logs.items():
            (out_dir / "logs" / f"{name}.log").write_text(text + "\n")
    journal = build_journal(**kwargs)
    kept: list[dict[str, Any]] = []
    if evidence is not None:
        server_logs.write_jsonl(out_dir / server_logs.FILE, evidence.entries)
        journal["server_logs"], kept = evidence.summary(), [e.to_dict() for e in evidence.entries]
    history.write_jsonl(out_dir / "history.jsonl")
    (out_dir / "journal.json").write_text(json.dumps(journal, indent=2) + "\n")
    write_report(out_dir / "report.html", journal, [op.to_dict() for op in history.snapshot()], kept)
    return journal
