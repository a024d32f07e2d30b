"""Property-based tests of every checker over generated histories (``tests/unit/histories.py``).

The model behind each history knows the answer of every figure, so each property states the definition
directly instead of re-running the checker's own reasoning.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaoskit.checkers import (
    DEFAULT_CHECKERS,
    Availability,
    CheckResult,
    LostWrites,
    RtoPhases,
    RunFacts,
    StaleReads,
    Valid,
    Verdict,
    run_checkers,
)
from chaoskit.experiment import Expectation
from chaoskit.history import History, OpType
from chaoskit.verdicts import evaluate, verdict
from tests.unit.histories import PROPS, Model, models


def _by_outcome(m: Model, outcome: OpType | None) -> set[int]:
    return {v for v, w in m.writes.items() if w.outcome is outcome}


@PROPS
@given(models())
def test_lost_writes_is_acked_minus_final_and_never_counts_info_or_fail(m: Model) -> None:
    res = LostWrites().check(m.history(), m.facts)
    acked, failed = _by_outcome(m, OpType.OK), _by_outcome(m, OpType.FAIL)
    maybe = _by_outcome(m, OpType.INFO) | _by_outcome(m, None)
    assert res.metrics["acked_writes"] == len(acked)
    assert res.metrics["info_writes"] == len(maybe)
    if m.final is None:
        assert res.valid is Valid.UNKNOWN and res.metrics["lost_writes"] is None
        return
    lost = res.metrics["lost_writes"]
    assert isinstance(lost, int) and 0 <= lost <= len(acked)
    assert lost == len(acked - m.final)  # an info or fail write is never lost
    assert res.metrics["failed_writes_present"] == len(failed & m.final)
    assert res.metrics["info_writes_applied"] == len(maybe & m.final)
    assert res.metrics["duplicates"] == m.duplicates
    assert (res.valid is Valid.TRUE) == (not acked - m.final and not failed & m.final and not m.duplicates)


@PROPS
@given(models())
def test_stale_reads_are_reads_missing_a_write_acked_before_they_began(m: Model) -> None:
    res = StaleReads().check(m.history(), m.facts)
    acked_at = {v: w.done for v, w in m.writes.items() if w.outcome is OpType.OK}
    checked = [(want, at, found) for want, at, found in m.reads
               if want in acked_at and acked_at[want] < at]  # type: ignore[operator]
    assert res.metrics["reads_checked"] == len(checked)
    assert res.metrics["stale_reads"] == sum(not found for *_x, found in checked)
    assert 0 <= res.metrics["stale_reads"] <= res.metrics["reads_checked"]  # type: ignore[operator]


def _last_recovery(done: list[Any], t0: float) -> float | None:
    """Leaderless: the ok completion that ends the last disruption (an error, or a gap > 0.25 s without an
    ok completion), provided no error comes after it."""
    for i in range(len(done) - 1, -1, -1):
        w = done[i]
        if w.outcome is not OpType.OK:
            return None  # an error with no ok completion after it (else the loop stopped there)
        previous_ok = max((x.done for x in done[:i] if x.outcome is OpType.OK), default=t0)
        if (i > 0 and done[i - 1].outcome is not OpType.OK) or w.done - previous_ok > 0.25:
            return w.done  # type: ignore[no-any-return]
    return None


def _earliest_recovery(m: Model) -> float | None:
    """RTO's definition, straight from the model: the earliest qualifying *completion*."""
    t0 = m.facts.fault_at
    assert t0 is not None
    promos = sorted((e for e in m.facts.events if e.time >= t0 and e.kind == "promoted"), key=lambda e: e.time)
    done = sorted((w for w in m.writes.values() if w.done is not None and w.done >= t0),
                  key=lambda w: (w.done, w.process))  # completion order; a tie goes by process
    named = any(w.node is not None for w in m.writes.values() if w.outcome is OpType.OK)
    if m.facts.leaderless:
        return _last_recovery(done, t0)
    if promos and promos[0].node and named:
        node, at = promos[0].node, promos[0].time
        return min((w.done for w in done if w.outcome is OpType.OK and w.node == node and w.done >= at),  # type: ignore[operator]
                   default=None)
    # no promotion: the first ok completion after a failed/indeterminate one or after a gap > 0.25 s
    for i, w in enumerate(done):
        if w.outcome is not OpType.OK:
            continue
        oks_before = [x.done for x in done[:i] if x.outcome is OpType.OK]
        errors_before = any(x.outcome is not OpType.OK for x in done[:i])
        if errors_before or w.done - (oks_before[-1] if oks_before else t0) > 0.25:  # type: ignore[operator]
            return w.done
    return None


@PROPS
@given(models())
def test_rto_is_non_negative_and_the_earliest_qualifying_completion(m: Model) -> None:
    res = RtoPhases().check(m.history(), m.facts)
    if m.facts.fault_at is None:
        assert res.valid is Valid.UNKNOWN and res.metrics["rto_s"] is None
        return
    expected = _earliest_recovery(m)
    assert res.metrics["recovered_at"] == (None if expected is None else round(expected, 3))
    rto = res.metrics["rto_s"]
    assert (rto is None) == (expected is None)
    if rto is not None:
        assert rto >= 0
        assert rto == pytest.approx(expected - m.facts.fault_at, abs=1e-3)  # type: ignore[operator]
    assert (res.valid is Valid.TRUE) == (expected is not None)


@PROPS
@given(models())
def test_availability_counts_every_completion_and_bounds_outages(m: Model) -> None:
    ops = m.ops()
    res = Availability().check(History(ops), m.facts)
    for t in (OpType.OK, OpType.FAIL, OpType.INFO):
        assert res.metrics[f"ops_{t.value}"] == sum(op.type is t and op.f in ("write", "read") for op in ops)
    times = [op.time for op in ops if op.f == "write"]
    span = max(times) - min(times) if times else 0.0
    assert 0 <= res.metrics["unavailable_s"] <= span + 1e-3  # type: ignore[operator]
    assert res.metrics["longest_outage_s"] <= res.metrics["unavailable_s"] + 1e-3  # type: ignore[operator]
    assert (res.valid is Valid.TRUE) == (res.metrics["outages"] == 0)


@PROPS
@given(models(), st.randoms(use_true_random=False))
def test_no_checker_depends_on_how_processes_interleave(m: Model, rnd: random.Random) -> None:
    """Reordering lines of *different* processes (each process's order and every time kept) changes nothing."""
    merged = run_checkers(m.history(), m.facts)
    shuffled = run_checkers(m.history(rnd), m.facts)
    assert [(r.name, r.valid, r.metrics) for r in merged] == [(r.name, r.valid, r.metrics) for r in shuffled]
    assert all(not r.detail.startswith("checker crashed") for r in merged)


class _Raises:
    def __init__(self, name: str, exc: BaseException) -> None:
        self.name, self.exc = name, exc

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        raise self.exc


EXCEPTIONS = st.sampled_from([ValueError("bad"), KeyError("found"), ZeroDivisionError(), TypeError("None"),
                              AttributeError("get"), AssertionError(), RuntimeError("boom")])


@PROPS
@given(models(), EXCEPTIONS, st.lists(st.sampled_from(["lost_writes", "stale_reads", "rto_s", "unavailable_s"]),
                                      min_size=1, max_size=3))
def test_a_checker_that_raises_gives_unknown_never_pass(m: Model, exc: BaseException, metrics: list[Any]) -> None:
    names = {"lost_writes": "lost-writes", "stale_reads": "stale-reads", "rto_s": "rto",
             "unavailable_s": "availability"}
    crashing = tuple(_Raises(names[metric], exc) if c.name == names[metric] else c
                     for metric in metrics[:1] for c in DEFAULT_CHECKERS)
    results = run_checkers(m.history(), m.facts, crashing)
    crashed = next(r for r in results if r.name == names[metrics[0]])
    assert crashed.valid is Valid.UNKNOWN and crashed.detail.startswith("checker crashed")
    checks = evaluate([Expectation(metric=metric, max=1e9) for metric in metrics], results)
    assert verdict(checks) is not Verdict.PASS
