"""Load and latency by phase: how many times the client sent each op (offered-load amplification) and
how long ops took, before the fault, while it was held and after heal.

An op belongs to ``before`` when it completed before the first fault was applied, to ``after`` when it was
invoked once the fault was healed, and to ``during`` otherwise: every op the fault window touched, also one
invoked before the fault and held through it (the op a slow or dead link hurts most). Only write and read
ops that completed count; an op whose client did not count its attempts (``attempts`` absent from the
history, e.g. a user's own client) counts as one attempt. The definitions are the README's; the recount
(:mod:`chaoskit.recount`) computes the same figures from ``history.jsonl`` on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PHASES = ("before", "during", "after")


def phase_of(invoked: float, completed: float, fault_at: float | None, healed_at: float | None) -> str:
    if fault_at is None or completed < fault_at:
        return "before"
    if healed_at is not None and invoked >= healed_at:
        return "after"
    return "during"


def nearest_rank_ms(sorted_s: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of sorted seconds, in ms to 0.01; None when there are none."""
    if not sorted_s:
        return None
    return round(sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1000, 2)


def load_metrics(ops: Iterable[tuple[float, float, int | None]], fault_at: float | None,
                 healed_at: float | None) -> dict[str, Any]:
    """Figures from ``(invoked, completed, attempts)`` of every completed write/read op.

    ``attempts`` (all ops), ``attempts_per_op`` (the amplification: attempts / ops), and per phase P:
    ``attempts_per_op_P``, ``op_p50_ms_P``, ``op_p99_ms_P``, ``op_max_ms_P`` (None when the phase has no op).
    """
    by_phase: dict[str, list[tuple[float, int]]] = {p: [] for p in PHASES}
    for invoked, completed, attempts in ops:
        by_phase[phase_of(invoked, completed, fault_at, healed_at)].append((completed - invoked, attempts or 1))
    everything = [x for p in PHASES for x in by_phase[p]]
    total = sum(a for _, a in everything)
    out: dict[str, Any] = {"attempts": total,
                           "attempts_per_op": round(total / len(everything), 3) if everything else None}
    for p in PHASES:
        ops_p = by_phase[p]
        durations = sorted(d for d, _ in ops_p)
        out[f"attempts_per_op_{p}"] = round(sum(a for _, a in ops_p) / len(ops_p), 3) if ops_p else None
        out[f"op_p50_ms_{p}"] = nearest_rank_ms(durations, 0.50)
        out[f"op_p99_ms_{p}"] = nearest_rank_ms(durations, 0.99)
        out[f"op_max_ms_{p}"] = round(durations[-1] * 1000, 1) if durations else None
    return out


LOAD_METRICS = ("attempts", "attempts_per_op",
                *(f"{m}_{p}" for p in PHASES for m in ("attempts_per_op", "op_p50_ms", "op_p99_ms", "op_max_ms")))
