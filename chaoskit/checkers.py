"""Checkers: read the history (and a few run facts) and return figures with a validity.

Each checker is a small class with ``check(history, facts) -> CheckResult``. A checker that crashes
gives ``unknown``, never ``true``. Expectations from the experiment file are then evaluated against
the figures (:mod:`chaoskit.verdicts`); the verdict composes them: any false -> fail, else any unknown
-> unknown, else pass.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaoskit.history import History, OpType, Pair
from chaoskit.phases import load_metrics
from chaoskit.systems.base import Event

Number = int | float | bool | None


class Valid(enum.Enum):
    TRUE = True
    FALSE = False
    UNKNOWN = "unknown"


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunFacts:
    fault_at: float | None = None
    healed_at: float | None = None
    events: tuple[Event, ...] = ()
    detected_kinds: tuple[str, ...] = ()
    promoted_kinds: tuple[str, ...] = ()
    old_primary: str | None = None
    roles_after: dict[str, str] = field(default_factory=dict)
    leaderless: bool = False  # no primary: failover and demotion do not apply; RTO = recovery after the last error
    one_primary: bool = True  # False: a primary per shard (OpenSearch): demotion of one old primary does not apply
    cache: bool = False  # a cache: lost/stale do not apply (no write is kept for sure); cache_checks counts hits
    cache_aside: bool = False  # registers read through a cache (chaoskit.cache_aside): divergence is counted


@dataclass(frozen=True)
class CheckResult:
    name: str
    valid: Valid
    detail: str
    metrics: dict[str, Number] = field(default_factory=dict)


class Checker(Protocol):
    name: str

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        """Figures and a validity for this history; may raise (the caller then reports unknown)."""
        ...


def _final_read(history: History) -> Any:
    """The last ok final read's value: a list of values, or (cache-aside registers) ``{"db", "cache"}``."""
    reads = [op for op in history.snapshot() if op.f == "final-read" and op.type is OpType.OK]
    if not reads:
        return None
    value = max(reads, key=lambda op: (op.time, op.process)).value
    return value if isinstance(value, dict) else list(value)


class LostWrites:
    """Acknowledged (ok) writes missing from the final read. info writes are "maybe": never acked or lost.
    A value the final read holds more than once is a duplicate (a retried write applied twice)."""

    name = "lost-writes"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        writes = [p for p in history.pairs() if p.invoke.f == "write"]
        acked = {p.invoke.value for p in writes if p.type is OpType.OK}
        maybe = {p.invoke.value for p in writes if p.type is OpType.INFO}
        failed = {p.invoke.value for p in writes if p.type is OpType.FAIL}
        values = _final_read(history)
        base: dict[str, Number] = {"acked_writes": len(acked), "info_writes": len(maybe)}
        if facts.cache:
            return CheckResult(self.name, Valid.TRUE, "not applicable: a cache may drop any value at any time",
                               {**base, "lost_writes": None, "lost_fraction": None, "duplicates": None})
        if values is None:
            return CheckResult(self.name, Valid.UNKNOWN, "no successful final read: lost writes cannot be counted",
                               {**base, "lost_writes": None, "lost_fraction": None, "duplicates": None})
        if isinstance(values, dict):  # registers (cache-aside): lost = acked above its key's final value
            from chaoskit.cache_aside_checks import register_losses

            return register_losses(self.name, writes, values, base)
        final = set(values)
        duplicates = len(values) - len(final)
        lost = acked - final
        phantom = failed & final
        metrics = {**base, "lost_writes": len(lost), "lost_fraction": len(lost) / len(acked) if acked else 0.0,
                   "info_writes_applied": len(maybe & final), "failed_writes_present": len(phantom),
                   "duplicates": duplicates}
        detail = (f"{len(lost)} of {len(acked)} acknowledged writes missing from the final read "
                  f"({len(maybe)} indeterminate, {len(maybe & final)} of them applied)")
        if phantom:
            detail += f"; {len(phantom)} writes reported failed were found (client misclassified errors)"
        if duplicates:
            detail += f"; {duplicates} extra copies of values in the final read (writes applied twice)"
        valid = Valid.TRUE if not lost and not phantom and not duplicates else Valid.FALSE
        return CheckResult(self.name, valid, detail, metrics)


class StaleReads:
    """A read is stale if it misses a write that was acknowledged before the read was invoked.

    Reads may also report ``seen``, the newest value the server had; its age (read start minus that
    value's acknowledgement) measures how far behind the server was.
    """

    name = "stale-reads"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        if facts.cache:
            return CheckResult(self.name, Valid.TRUE, "not applicable: a cache miss is no stale read (see cache)",
                               {"stale_reads": None, "reads_checked": None, "stale_fraction": None})
        pairs = history.pairs()
        acked_at = {p.invoke.value: p.complete.time for p in pairs
                    if p.invoke.f == "write" and p.type is OpType.OK and p.complete}
        checked = stale = 0
        lags: list[float] = []
        for p in pairs:
            if p.invoke.f != "read" or p.type is not OpType.OK or p.complete is None:
                continue
            want, result = p.invoke.value, p.complete.value
            if want not in acked_at or acked_at[want] >= p.invoke.time or result.get("found", False) is None:
                continue  # found None: the read did not look for ``want`` (cache-aside's random keys)
            checked += 1
            if not result.get("found"):
                stale += 1
                seen_at = acked_at.get(result.get("seen"))
                if seen_at is not None and seen_at < p.invoke.time:
                    lags.append(p.invoke.time - seen_at)
        lags.sort()
        worst = lags[-1] if lags else 0.0
        median = lags[len(lags) // 2] if lags else 0.0
        detail = f"{stale} of {checked} reads missed a write acknowledged before they began"
        if lags:
            detail += f"; stale data was up to {worst * 1000:.0f} ms old (median {median * 1000:.0f} ms)"
        return CheckResult(self.name, Valid.TRUE if not stale else Valid.FALSE, detail,
                           {"stale_reads": stale, "reads_checked": checked,
                            "stale_fraction": stale / checked if checked else 0.0,
                            "max_lag_ms": round(worst * 1000, 1), "median_lag_ms": round(median * 1000, 1)})


class Availability:
    """Outage windows: gaps between successful writes longer than ``threshold_s``; steady-state latency."""

    name = "availability"

    def __init__(self, threshold_s: float = 0.25) -> None:
        self.threshold_s = threshold_s

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        ops = history.snapshot()
        writes = [op for op in ops if op.f == "write"]
        oks = sorted(op.time for op in writes if op.type is OpType.OK)
        if writes:  # an outage at the very start or lasting to the end of the run counts too
            oks = [min(op.time for op in writes), *oks, max(op.time for op in writes)]
        counts = {t: sum(1 for op in ops if op.type is t and op.f in ("write", "read")) for t in OpType}
        gaps = [(a, b) for a, b in zip(oks, oks[1:], strict=False) if b - a > self.threshold_s]
        unavailable = sum(b - a for a, b in gaps)
        longest = max((b - a for a, b in gaps), default=0.0)
        steady_end = facts.fault_at if facts.fault_at is not None else float("inf")
        times = sorted(op.time for op in ops if op.time < steady_end and op.f in ("write", "read"))
        max_gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)
        latencies = sorted(p.complete.time - p.invoke.time for p in history.pairs()
                           if p.invoke.f == "write" and p.type is OpType.OK and p.complete
                           and p.complete.time < steady_end)
        durations = [p.complete.time - p.invoke.time for p in history.pairs()
                     if p.invoke.f in ("write", "read") and p.complete is not None]
        metrics: dict[str, Number] = {
            "ops_ok": counts[OpType.OK], "ops_fail": counts[OpType.FAIL], "ops_info": counts[OpType.INFO],
            "ops_errors": counts[OpType.FAIL] + counts[OpType.INFO],
            "unavailable_s": round(unavailable, 3), "longest_outage_s": round(longest, 3),
            "outages": len(gaps), "max_op_gap_ms": round(max_gap * 1000, 2),
            "write_p50_ms": _percentile_ms(latencies, 0.50), "write_p99_ms": _percentile_ms(latencies, 0.99),
            "max_op_ms": round(max(durations, default=0.0) * 1000, 1),
        }
        detail = (f"{len(gaps)} outage window(s), {unavailable:.2f} s without a successful write "
                  f"(longest {longest:.2f} s); {counts[OpType.FAIL]} failed, {counts[OpType.INFO]} indeterminate ops")
        return CheckResult(self.name, Valid.TRUE if not gaps else Valid.FALSE, detail, metrics)


def _percentile_ms(sorted_values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of already sorted seconds, in ms; None when there are none."""
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000, 2)


class RtoPhases:
    """Recovery in phases: fault -> detection -> new primary -> first ok write on the new primary.

    On a leaderless system there is no new primary: recovery is the first ok write after the *last*
    disruption (see :meth:`_recovered_leaderless`) and ``failover_happened`` is not applicable (None).
    """

    name = "rto"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        if facts.fault_at is None:
            return CheckResult(self.name, Valid.UNKNOWN, "no fault applied", {"rto_s": None})
        t0 = facts.fault_at
        after = sorted((e for e in facts.events if e.time >= t0), key=lambda e: e.time)
        detected = next((e.time for e in after if e.kind in facts.detected_kinds), None)
        switch = None if facts.leaderless else next((e for e in after if e.kind in facts.promoted_kinds), None)
        new_primary = switch.node if switch else None
        if facts.leaderless:
            recovered = self._recovered_leaderless(history.pairs(), t0)
        else:
            recovered = self._recovered(history.pairs(), t0, switch.time if switch else None, new_primary)
        m: dict[str, Number] = {
            "fault_at": round(t0, 3),
            "detected_at": round(detected, 3) if detected is not None else None,
            "promoted_at": round(switch.time, 3) if switch else None,
            "recovered_at": round(recovered, 3) if recovered is not None else None,
            "rto_s": round(recovered - t0, 3) if recovered is not None else None,
            "failover_happened": None if facts.leaderless else switch is not None,
            "client_recovered": recovered is not None,
        }
        parts = [f"{label} +{(t - t0):.2f}s" for label, t in
                 (("detected", detected), ("new primary", switch.time if switch else None),
                  ("client recovered", recovered)) if t is not None]
        detail = ", ".join(parts) or "no failover and no client recovery observed"
        if facts.leaderless:
            erred = any(p.invoke.f == "write" and p.complete is not None and p.complete.time >= t0
                        and p.type is not OpType.OK for p in history.pairs())
            quiet = "writes were never disrupted" if not erred else "no client recovery observed"
            detail = ("leaderless (no failover): " + (", ".join(parts) or quiet)
                      + (" -- the first ok write after the last error" if recovered is not None else ""))
        if new_primary:
            detail += f" (new primary {new_primary})"
        return CheckResult(self.name, Valid.TRUE if recovered is not None else Valid.FALSE, detail, m)

    @staticmethod
    def _write_completions(pairs: list[Pair], t0: float) -> list[tuple[float, int, OpType, str | None]]:
        return sorted(((c.time, c.process, p.type, c.node) for p in pairs
                       if p.invoke.f == "write" and (c := p.complete) is not None and c.time >= t0),
                      key=lambda d: (d[0], d[1]))

    @staticmethod
    def _recovered_leaderless(pairs: list[Pair], t0: float) -> float | None:
        """Walking write completions after the fault in completion order: the ok one that ends the last
        disruption -- it follows a failed/indeterminate completion, or comes more than 0.25 s after the
        previous ok completion (or the fault). None if the writes end disrupted or were never disrupted."""
        recovered: float | None = None
        erred, last_ok = False, t0
        for t, _, type_, _node in RtoPhases._write_completions(pairs, t0):
            if type_ is not OpType.OK:
                erred, recovered = True, None
                continue
            if erred or t - last_ok > 0.25:
                recovered, erred = t, False
            last_ok = t
        return recovered

    @staticmethod
    def _recovered(pairs: list[Pair], t0: float, switched: float | None, new_primary: str | None) -> float | None:
        """The earliest *completion* (not invocation) that marks recovery.

        With a promotion, when the client says which node served each write: the earliest ok write completed
        on the new primary at or after both the fault and the promotion. Otherwise (no promotion, or a
        client that names no node, such as a user's own): walking write completions after the fault in
        completion order, the first ok one that comes after a failed/indeterminate completion or more than
        0.25 s after the previous ok completion (or the fault) -- the first success after the writes were
        disrupted.
        """
        attributed = any(p.complete.node is not None for p in pairs
                         if p.invoke.f == "write" and p.complete is not None and p.type is OpType.OK)
        done = RtoPhases._write_completions(pairs, t0)
        if new_primary is not None and switched is not None and attributed:
            return next((t for t, _, type_, node in done
                         if type_ is OpType.OK and node == new_primary and t >= switched), None)
        disrupted = False
        last_ok = t0
        for t, _, type_, _node in done:
            if type_ is not OpType.OK or t - last_ok > 0.25:
                disrupted = True
            if type_ is OpType.OK:
                if disrupted:
                    return t
                last_ok = t
        return None


class OldPrimary:
    """Whether the primary hit by the fault was demoted after heal (split brain resolved)."""

    name = "old-primary"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        if facts.leaderless:
            return CheckResult(self.name, Valid.TRUE, "not applicable: a leaderless system has no primary",
                               {"old_primary_demoted": None})
        if not facts.one_primary:
            return CheckResult(self.name, Valid.TRUE, "not applicable: a primary per shard, spread over the nodes",
                               {"old_primary_demoted": None})
        if not facts.old_primary:
            return CheckResult(self.name, Valid.UNKNOWN, "no primary was targeted", {"old_primary_demoted": None})
        role = facts.roles_after.get(facts.old_primary, "unknown")
        demoted = role == "replica"
        return CheckResult(self.name, Valid.TRUE if demoted else Valid.FALSE,
                           f"old primary {facts.old_primary} is now {role}", {"old_primary_demoted": demoted})


class Load:
    """Attempts per op (offered-load amplification) and op latency before / during / after the fault
    (:mod:`chaoskit.phases`). Figures only: whether they are acceptable is the experiment's to say."""

    name = "load"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        ops = [(p.invoke.time, p.complete.time, p.complete.attempts) for p in history.pairs()
               if p.invoke.f in ("write", "read") and p.complete is not None]
        m = load_metrics(ops, facts.fault_at, facts.healed_at)
        per = ", ".join(f"{ph} {v}" for ph in ("before", "during", "after") if (v := m[f"attempts_per_op_{ph}"]))
        return CheckResult(self.name, Valid.TRUE, f"{m['attempts']} attempts, {m['attempts_per_op']} per op ({per})", m)


DEFAULT_CHECKERS: tuple[Checker, ...] = (LostWrites(), StaleReads(), Availability(), RtoPhases(), OldPrimary(),
                                         Load())


def run_checkers(history: History, facts: RunFacts,
                 checkers: tuple[Checker, ...] | None = None) -> list[CheckResult]:
    if checkers is None:
        checkers = DEFAULT_CHECKERS
        if facts.cache:  # a cache's own figures: hit ratio, errors, misses (chaoskit.cache_checks)
            from chaoskit.cache_checks import CacheHits

            checkers = (*checkers, CacheHits())
        if facts.cache_aside:  # registers behind a cache: divergence of the two (chaoskit.cache_aside_checks)
            from chaoskit.cache_aside_checks import CacheDivergence

            checkers = (*checkers, CacheDivergence())
        from chaoskit.catch_up import CatchUp  # a probed replica's catch-up (n/a without probe events)

        checkers = (*checkers, CatchUp())
    out = []
    for checker in checkers:
        try:
            out.append(checker.check(history, facts))
        except Exception as exc:  # noqa: BLE001 -- a crashing checker is unknown, never true
            out.append(CheckResult(checker.name, Valid.UNKNOWN, f"checker crashed: {type(exc).__name__}: {exc}"))
    return out


def summarize(results: list[CheckResult]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in results:
        out.update(r.metrics)
    return out

