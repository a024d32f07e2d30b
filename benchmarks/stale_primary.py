"""What the isolated node's stale primary did in each run of the OpenSearch partition experiments (prints
figures; not a test). Reads run directories written by ``chaoskit run ... --repeat N``:

    .venv/bin/python benchmarks/stale_primary.py runs/<suite>            # every run-NN under it
    .venv/bin/python benchmarks/stale_primary.py runs/<suite> --per-run  # and one line per run

Per run, from ``history.jsonl`` (each op's attempts on the wire), ``journal.json`` (the partitioned node and
when it was healed) and the nodes' logs:

- ``stale acks``: writes acknowledged by the partitioned node after the heal with ``_primary_term`` 1 and
  ``_shards.successful`` below ``total`` -- the stale primary's acknowledgements -- and how many of them the
  final read did not find (``lost``);
- ``waiting``: attempts sent to the partitioned node before the heal and still waiting at it, by how they
  ended: ``hung`` (the client's timeout: the node never answered), ``stale`` (a 201 with term 1 from fewer
  copies than total), ``other`` (anything else: a 503, a 201 of the new term...);
- ``PSCE``: the partitioned node's log lines with ``PrimaryShardClosedException`` (the replica-failure trace
  of ``log_replica_failures``), and ``retry``: lines with ``RetryOnPrimaryException``.

Then per experiment: runs, runs with a lost acknowledged write (k of N, 95% Wilson interval), the totals, and
the spread per run (min / median / max).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit.report_evidence import parse_attempt
from chaoskit.suite_stats import wilson


@dataclass
class RunFigures:
    run: str
    version: str
    acked: int = 0
    lost: int = 0
    info: int = 0
    stale_acks: int = 0
    stale_lost: int = 0
    hung: int = 0
    waiting: int = 0
    waiting_other: dict[str, int] = field(default_factory=dict)
    psce: int = 0
    retry: int = 0
    lost_values: list[Any] = field(default_factory=list)


def _ops(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines() if line.strip()]


def figures(run_dir: Path) -> RunFigures | None:
    try:
        journal = json.loads((run_dir / "journal.json").read_text())
        ops = _ops(run_dir)
    except (OSError, ValueError):
        return None
    fault: dict[str, Any] = next((f for f in journal.get("faults") or () if f.get("kind") == "partition"), {})
    node, healed = fault.get("target"), float(fault.get("healed_at") or 0.0)
    m = journal.get("metrics") or {}
    out = RunFigures(run_dir.name, str((journal.get("server") or {}).get("version")
                                       or journal["settings"]["topology"].get("version", "?")),
                     int(m.get("acked_writes") or 0), int(m.get("lost_writes") or 0), int(m.get("ops_info") or 0))
    finals = [op for op in ops if op.get("f") == "final-read" and op.get("type") == "ok"]
    final = set(finals[-1]["value"]) if finals and isinstance(finals[-1].get("value"), list) else set()
    invoked: dict[Any, float] = {}
    for op in ops:
        if op.get("type") == "invoke":
            invoked[op.get("process")] = float(op.get("time") or 0.0)
            continue
        if op.get("f") != "write" or not op.get("wire"):
            continue
        t0 = invoked.get(op.get("process"), float(op.get("time") or 0.0))
        attempts = [parse_attempt(str(w), t0) for w in op["wire"]]
        for a in attempts:
            if a.node != node or a.sent is None or a.took_ms is None or not a.sent < healed < a.sent + a.took_ms / 1000:
                continue
            out.waiting += 1
            if a.status == "timeout":
                out.hung += 1
            elif not _stale(a.status, a.term, a.shards):
                kind = a.status.split(" shard=")[0]
                out.waiting_other[kind] = out.waiting_other.get(kind, 0) + 1
        last = attempts[-1]
        if op.get("type") == "ok" and last.node == node and _stale(last.status, last.term, last.shards) \
                and last.sent is not None and last.sent + (last.took_ms or 0) / 1000 >= healed:
            out.stale_acks += 1
            if final and op.get("value") not in final:
                out.stale_lost += 1
                out.lost_values.append(op.get("value"))
    log = run_dir / "logs" / f"{node}.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    out.psce, out.retry = text.count("PrimaryShardClosedException"), text.count("RetryOnPrimaryException")
    return out


def _stale(status: str, term: str | None, shards: str | None) -> bool:
    """A 201 of primary term 1 from fewer copies than the shard has: the stale primary's acknowledgement."""
    if not status.startswith("201") or term != "1" or not shards:
        return False
    total, ok = (shards.split("/") + ["0", "0"])[:2]
    return int(ok) < int(total)


def _spread(values: list[int]) -> str:
    return f"{min(values)} / {statistics.median(values):g} / {max(values)}" if values else "-"


def summary(name: str, runs: list[RunFigures]) -> str:
    n, k = len(runs), sum(1 for r in runs if r.lost)
    lo, hi = wilson(k, n) or (0.0, 1.0)
    versions = sorted({r.version for r in runs})
    tot = {key: sum(getattr(r, key) for r in runs) for key in ("acked", "lost", "info", "stale_acks", "stale_lost",
                                                               "hung", "waiting", "psce", "retry")}
    other: dict[str, int] = {}
    for r in runs:
        for status, count in r.waiting_other.items():
            other[status] = other.get(status, 0) + count
    return "\n".join([
        f"{name} ({', '.join(versions)}): {n} runs",
        f"  runs losing acknowledged writes: {k} of {n} (95% CI {100 * lo:.1f}-{100 * hi:.1f}%)",
        f"  lost {tot['lost']} of {tot['acked']} acknowledged; per run {_spread([r.lost for r in runs])}",
        f"  stale-primary acks (term 1, fewer copies than total, after the heal): {tot['stale_acks']} "
        f"(lost {tot['stale_lost']}); runs with one: {sum(1 for r in runs if r.stale_acks)}",
        f"  attempts waiting on the partitioned node at the heal: {tot['waiting']} -- hung (client timeout) "
        f"{tot['hung']} in {sum(1 for r in runs if r.hung)} runs (per run {_spread([r.hung for r in runs])}), "
        f"other {sum(other.values())} {dict(sorted(other.items()))}",
        f"  info ops {tot['info']}; per run {_spread([r.info for r in runs])}",
        f"  partitioned node's log: PrimaryShardClosedException {tot['psce']} lines in "
        f"{sum(1 for r in runs if r.psce)} runs; RetryOnPrimaryException {tot['retry']} in "
        f"{sum(1 for r in runs if r.retry)} runs"])


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("suite", type=Path)
    p.add_argument("--per-run", action="store_true")
    args = p.parse_args()
    for exp in sorted(d for d in args.suite.iterdir() if d.is_dir()):
        runs = [f for d in sorted(exp.glob("run-*")) if (f := figures(d)) is not None] or \
               [f for f in (figures(exp),) if f is not None]
        if not runs:
            continue
        if args.per_run:
            for r in runs:
                print(f"{exp.name} {r.run}: acked {r.acked} lost {r.lost} info {r.info} stale-acks {r.stale_acks} "
                      f"(lost {r.stale_lost}) waiting {r.waiting} hung {r.hung} other {r.waiting_other} "
                      f"PSCE {r.psce} retry {r.retry}"
                      + (f" lost values {r.lost_values}" if r.lost_values else ""))
        print(summary(exp.name, runs), flush=True)


if __name__ == "__main__":
    main()
