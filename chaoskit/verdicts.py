"""Verdicts: an experiment's expectations evaluated against its checkers' figures, and composed.

Each expectation names a metric; :data:`CHECK_OF_METRIC` says which checker (:mod:`chaoskit.checkers`)
gives it, whose detail the check carries. A metric without a value is ``unknown``, never ``true``. The
verdict: any false -> fail, else any unknown -> unknown, else pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaoskit.checkers import CheckResult, Number, Valid, Verdict
from chaoskit.experiment import Expectation
from chaoskit.phases import LOAD_METRICS

CHECK_OF_METRIC = {
    "lost_writes": "lost-writes", "lost_fraction": "lost-writes", "acked_writes": "lost-writes",
    "info_writes": "lost-writes", "info_writes_applied": "lost-writes",
    "stale_reads": "stale-reads", "stale_fraction": "stale-reads", "unavailable_s": "availability",
    "ops_fail": "availability", "ops_info": "availability", "ops_errors": "availability", "max_op_ms": "availability",
    "rto_s": "rto",
    "failover_happened": "rto", "client_recovered": "rto", "old_primary_demoted": "old-primary",
    "duplicates": "lost-writes", "ops_ok": "availability", **{m: "load" for m in LOAD_METRICS},
    **{m: "cache" for m in ("hit_ratio", "hit_ratio_before", "hit_ratio_during", "hit_ratio_after", "min_hit_ratio",
                            "hit_ratio_end", "cache_errors", "sets_not_stored", "unexpected_misses",
                            "miss_rate_before", "miss_rate_during", "rehash_s")},
    "caught_up_s": "catch-up", "behind_at_end": "catch-up",
    **{m: "cache-divergence"
       for m in ("cache_ahead", "cache_behind", "divergent_keys", "served_lost", "cache_flushes")},
}


@dataclass(frozen=True)
class Check:
    """One hypothesis expectation evaluated against the figures."""

    name: str
    valid: Valid
    detail: str
    expected: str
    observed: str


def evaluate(expectations: list[Expectation], results: list[CheckResult]) -> list[Check]:
    by_name = {r.name: r for r in results}
    metrics: dict[str, Number] = {}
    for r in results:
        metrics.update(r.metrics)
    out = []
    for exp in expectations:
        source = by_name.get(CHECK_OF_METRIC[exp.metric])
        value = metrics.get(exp.metric)
        detail = source.detail if source else ""
        if exp.why:
            detail = f"{exp.why} -- {detail}" if detail else exp.why
        out.append(Check(exp.metric.replace("_", "-"), _holds(exp, value), detail, exp.describe(), _fmt(value)))
    return out


def _holds(exp: Expectation, value: Number) -> Valid:
    if value is None:
        return Valid.UNKNOWN
    ok = True
    if exp.equals is not None:
        ok &= value == exp.equals
    if exp.min is not None:
        ok &= float(value) >= exp.min
    if exp.max is not None:
        ok &= float(value) <= exp.max
    return Valid.TRUE if ok else Valid.FALSE


def _fmt(value: Number) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def verdict(checks: list[Check]) -> Verdict:
    if any(c.valid is Valid.FALSE for c in checks):
        return Verdict.FAIL
    if any(c.valid is Valid.UNKNOWN for c in checks):
        return Verdict.UNKNOWN
    return Verdict.PASS
