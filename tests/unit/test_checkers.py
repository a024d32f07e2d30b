"""Tests for chaoskit.checkers on hand-made histories whose answers are known in advance."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from chaoskit.catch_up import CatchUp
from chaoskit.checkers import (
    Availability,
    CheckResult,
    Load,
    LostWrites,
    OldPrimary,
    RtoPhases,
    RunFacts,
    StaleReads,
    Valid,
    Verdict,
    run_checkers,
)
from chaoskit.experiment import Expectation, Metric
from chaoskit.history import History, Op, OpType
from chaoskit.systems.base import Event
from chaoskit.verdicts import CHECK_OF_METRIC, Check, evaluate, verdict

NO_FACTS = RunFacts()


class Builder:
    """Appends invoke/completion pairs; each op gets its own process so nothing interleaves wrongly."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._proc = 0

    def op(self, f: str, value: Any, t_inv: float, t_done: float | None, type_: OpType = OpType.OK, *,
           result: Any = None, node: str | None = None) -> Builder:
        self._proc += 1
        self.ops.append(Op(self._proc, OpType.INVOKE, f, value, t_inv))
        if t_done is not None:
            self.ops.append(Op(self._proc, type_, f, value if result is None else result, t_done, node=node))
        return self

    def final_read(self, values: list[int], t: float = 100.0) -> Builder:
        self.ops.append(Op(0, OpType.INVOKE, "final-read", None, t))
        self.ops.append(Op(0, OpType.OK, "final-read", values, t + 0.1))
        return self

    def history(self) -> History:
        return History(self.ops)


# ---- lost writes ------------------------------------------------------------------------------

def _hundred_writes() -> Builder:
    """100 writes: 1..90 ok, 91..95 info, 96..100 fail. Final read lacks 1..10 and info 93..95."""
    b = Builder()
    for v in range(1, 101):
        t = v * 0.01
        type_ = OpType.OK if v <= 90 else OpType.INFO if v <= 95 else OpType.FAIL
        b.op("write", v, t, t + 0.005, type_)
    return b.final_read(list(range(11, 91)) + [91, 92])


def test_lost_writes_counts_exactly_the_missing_acked_writes() -> None:
    res = LostWrites().check(_hundred_writes().history(), NO_FACTS)
    assert res.valid is Valid.FALSE
    assert res.metrics["acked_writes"] == 90
    assert res.metrics["lost_writes"] == 10
    assert res.metrics["lost_fraction"] == pytest.approx(10 / 90)


def test_lost_writes_info_writes_are_neither_acked_nor_lost() -> None:
    res = LostWrites().check(_hundred_writes().history(), NO_FACTS)
    assert res.metrics["info_writes"] == 5
    assert res.metrics["info_writes_applied"] == 2
    assert res.metrics["failed_writes_present"] == 0


def test_lost_writes_all_present_is_valid() -> None:
    b = Builder()
    for v in range(1, 11):
        b.op("write", v, v * 0.1, v * 0.1 + 0.01)
    b.op("write", 11, 2.0, None)  # never completed -> info, absent: fine
    res = LostWrites().check(b.final_read(list(range(1, 11))).history(), NO_FACTS)
    assert res.valid is Valid.TRUE
    assert res.metrics["lost_writes"] == 0
    assert res.metrics["info_writes"] == 1


def test_lost_writes_without_final_read_is_unknown() -> None:
    b = Builder().op("write", 1, 0.1, 0.2)
    b.ops.append(Op(0, OpType.INVOKE, "final-read", None, 1.0))
    b.ops.append(Op(0, OpType.INFO, "final-read", None, 1.5))  # the final read itself failed
    res = LostWrites().check(b.history(), NO_FACTS)
    assert res.valid is Valid.UNKNOWN
    assert res.metrics["lost_writes"] is None
    assert res.metrics["lost_fraction"] is None
    assert res.metrics["acked_writes"] == 1


def test_lost_writes_flags_failed_write_found_in_final_read() -> None:
    b = Builder().op("write", 1, 0.1, 0.2).op("write", 2, 0.3, 0.4, OpType.FAIL)
    res = LostWrites().check(b.final_read([1, 2]).history(), NO_FACTS)
    assert res.metrics["lost_writes"] == 0
    assert res.metrics["failed_writes_present"] == 1
    assert res.valid is Valid.FALSE
    assert "reported failed were found" in res.detail


# ---- stale reads ------------------------------------------------------------------------------

def _read(b: Builder, want: int, t: float, found: bool, seen: int | None, type_: OpType = OpType.OK) -> None:
    b.op("read", want, t, t + 0.01, type_, result={"want": want, "found": found, "seen": seen})


def test_stale_reads_counts_only_reads_of_values_acked_before_invoke() -> None:
    b = Builder()
    b.op("write", 1, 0.9, 1.0).op("write", 2, 1.9, 2.0).op("write", 3, 2.9, 3.5)
    _read(b, 2, 2.5, found=False, seen=1)     # stale, lag 2.5 - 1.0
    _read(b, 2, 2.6, found=True, seen=2)      # fresh
    _read(b, 3, 3.2, found=False, seen=2)     # 3 not acked yet at invoke: not checked
    _read(b, 1, 3.0, found=False, seen=None)  # stale, no lag known
    _read(b, 2, 3.1, found=False, seen=1, type_=OpType.FAIL)  # failed read: not checked
    res = StaleReads().check(b.history(), NO_FACTS)
    assert res.valid is Valid.FALSE
    assert res.metrics["stale_reads"] == 2
    assert res.metrics["reads_checked"] == 3
    assert res.metrics["stale_fraction"] == pytest.approx(2 / 3)


def test_stale_reads_lag_is_read_start_minus_ack_of_seen_value() -> None:
    b = Builder()
    b.op("write", 1, 0.9, 1.0).op("write", 2, 1.9, 2.0).op("write", 3, 2.9, 3.0)
    _read(b, 3, 3.5, found=False, seen=2)  # lag 1.5 s
    _read(b, 3, 3.2, found=False, seen=1)  # lag 2.2 s
    res = StaleReads().check(b.history(), NO_FACTS)
    assert res.metrics["max_lag_ms"] == pytest.approx(2200.0)
    assert res.metrics["stale_reads"] == 2


def test_stale_reads_all_fresh_is_valid() -> None:
    b = Builder().op("write", 1, 0.0, 0.1)
    _read(b, 1, 0.5, found=True, seen=1)
    res = StaleReads().check(b.history(), NO_FACTS)
    assert res.valid is Valid.TRUE
    assert (res.metrics["stale_reads"], res.metrics["reads_checked"]) == (0, 1)
    assert res.metrics["max_lag_ms"] == 0.0


# ---- availability -----------------------------------------------------------------------------

def _ok_writes(b: Builder, start_ds: int, stop_ds: int) -> None:
    """ok writes completing every 0.1 s from start_ds/10 to stop_ds/10 inclusive."""
    for ds in range(start_ds, stop_ds + 1):
        b.op("write", ds, ds / 10 - 0.005, ds / 10)


def test_availability_gaps_between_ok_writes_become_outages() -> None:
    b = Builder()
    _ok_writes(b, 0, 10)    # 0.0 .. 1.0
    _ok_writes(b, 15, 20)   # gap 0.5 s
    _ok_writes(b, 30, 30)   # gap 1.0 s
    b.op("write", 999, 1.2, 1.3, OpType.FAIL).op("write", 998, 2.2, 2.8, OpType.INFO)
    res = Availability().check(b.history(), NO_FACTS)
    assert res.valid is Valid.FALSE
    assert res.metrics["outages"] == 2
    assert res.metrics["unavailable_s"] == pytest.approx(1.5)
    assert res.metrics["longest_outage_s"] == pytest.approx(1.0)
    assert (res.metrics["ops_ok"], res.metrics["ops_fail"], res.metrics["ops_info"]) == (18, 1, 1)
    assert res.metrics["ops_errors"] == 2


def test_availability_gap_at_threshold_is_not_an_outage() -> None:
    b = Builder().op("write", 1, 0.0, 0.25).op("write", 2, 0.3, 0.5)  # gap exactly 0.25 s
    res = Availability().check(b.history(), NO_FACTS)
    assert res.valid is Valid.TRUE
    assert res.metrics["outages"] == 0
    assert res.metrics["unavailable_s"] == 0


def test_availability_threshold_is_configurable() -> None:
    b = Builder()
    _ok_writes(b, 0, 2)
    _ok_writes(b, 4, 5)  # gap 0.2 s
    assert Availability(threshold_s=0.15).check(b.history(), NO_FACTS).metrics["outages"] == 1
    assert Availability().check(b.history(), NO_FACTS).metrics["outages"] == 0


def test_availability_outage_lasting_until_end_of_run_is_counted() -> None:
    b = Builder()
    _ok_writes(b, 0, 10)  # ok until 1.0 s
    for ds in range(11, 51):  # then every write fails until 5.0 s
        b.op("write", 1000 + ds, ds / 10 - 0.005, ds / 10, OpType.FAIL)
    res = Availability().check(b.history(), NO_FACTS)
    assert res.valid is Valid.FALSE
    assert (res.metrics["unavailable_s"] or 0) >= 3.9


# ---- RTO phases -------------------------------------------------------------------------------

SWITCH_FACTS = RunFacts(
    fault_at=1.0,
    events=(
        Event(0.5, "sentinel-1", "+switch-master", "mymaster 10.0.0.3 6379 10.0.0.1 6379", "redis-1"),  # before fault
        Event(1.8, "sentinel-1", "+odown", "master mymaster 10.0.0.1 6379 #quorum 2/2"),
        Event(2.2, "sentinel-2", "+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2 6379", "redis-2"),
    ),
    detected_kinds=("+odown",),
    promoted_kinds=("+switch-master",),
)


def _writes_until_fault(b: Builder, node: str = "redis-1") -> None:
    for ds in range(1, 10):
        b.op("write", ds, ds / 10 - 0.005, ds / 10, node=node)


def test_rto_recovery_is_first_ok_write_on_new_primary_after_switch() -> None:
    b = Builder()
    _writes_until_fault(b)
    for ds in range(11, 21):
        b.op("write", 100 + ds, ds / 10 - 0.005, ds / 10, OpType.FAIL)
    b.op("write", 200, 2.25, 2.3, node="redis-1")  # ok, but on the old primary: not recovery
    b.op("write", 201, 2.45, 2.5, node="redis-2")
    b.op("write", 202, 2.55, 2.6, node="redis-2")
    res = RtoPhases().check(b.history(), SWITCH_FACTS)
    assert res.valid is Valid.TRUE
    m = res.metrics
    assert (m["fault_at"], m["detected_at"], m["promoted_at"]) == (1.0, 1.8, 2.2)
    assert m["recovered_at"] == 2.5
    assert m["rto_s"] == pytest.approx(1.5)
    assert m["failover_happened"] is True and m["client_recovered"] is True
    assert "new primary redis-2" in res.detail


def test_rto_switch_without_ok_write_on_new_primary_is_not_recovered() -> None:
    b = Builder()
    _writes_until_fault(b)
    b.op("write", 200, 2.25, 2.3, node="redis-1")
    b.op("write", 201, 2.5, 3.0, OpType.FAIL)
    res = RtoPhases().check(b.history(), SWITCH_FACTS)
    assert res.valid is Valid.FALSE
    assert res.metrics["failover_happened"] is True
    assert res.metrics["recovered_at"] is None and res.metrics["rto_s"] is None
    assert res.metrics["client_recovered"] is False


def test_rto_without_switch_recovery_is_first_ok_after_errors() -> None:
    b = Builder()
    _writes_until_fault(b)
    for ds in range(11, 16):
        b.op("write", 100 + ds, ds / 10 - 0.005, ds / 10, OpType.FAIL)
    b.op("write", 200, 1.55, 1.6)
    b.op("write", 201, 1.65, 1.7)
    res = RtoPhases().check(b.history(), RunFacts(fault_at=1.0))
    assert res.valid is Valid.TRUE
    assert res.metrics["failover_happened"] is False
    assert res.metrics["recovered_at"] == 1.6
    assert res.metrics["rto_s"] == pytest.approx(0.6)
    assert res.metrics["detected_at"] is None and res.metrics["promoted_at"] is None


def test_rto_without_switch_recovery_is_first_ok_after_a_gap() -> None:
    b = Builder()
    _writes_until_fault(b)
    b.op("write", 200, 1.75, 1.8)  # no error, but 0.8 s after the fault without an ok write
    b.op("write", 201, 1.85, 1.9)
    res = RtoPhases().check(b.history(), RunFacts(fault_at=1.0))
    assert res.metrics["recovered_at"] == 1.8
    assert res.metrics["rto_s"] == pytest.approx(0.8)


def test_rto_is_the_earliest_completion_not_the_first_invocation() -> None:
    """The redis-primary-kill recount of issue 9: a write invoked during the outage completes last."""
    b = Builder()
    _writes_until_fault(b)
    b.op("write", 1010, 2.3, 4.8857, node="redis-2")  # invoked first (retrying through the outage)
    b.op("write", 1011, 4.80, 4.830, node="redis-2")  # invoked later, acknowledged first
    m = RtoPhases().check(b.history(), SWITCH_FACTS).metrics
    assert m["recovered_at"] == 4.83
    assert m["rto_s"] == pytest.approx(3.83)


def test_rto_without_switch_is_the_earliest_completion_too() -> None:
    b = Builder()
    _writes_until_fault(b)
    b.op("write", 300, 1.05, 1.2, OpType.FAIL)
    b.op("write", 301, 1.3, 2.9)  # invoked first after the error, completes last
    b.op("write", 302, 1.4, 1.45)
    b.op("write", 303, 1.5, 1.55)
    m = RtoPhases().check(b.history(), RunFacts(fault_at=1.0)).metrics
    assert m["recovered_at"] == 1.45


def test_rto_of_a_client_that_names_no_node_is_the_first_ok_after_the_disruption() -> None:
    """A user's own client does not say which node served a write: recovery cannot be "on the new primary"."""
    b = Builder()
    for ds in range(1, 10):
        b.op("write", ds, ds / 10 - 0.005, ds / 10)
    b.op("write", 100, 1.1, 1.5, OpType.INFO)
    b.op("write", 101, 1.6, 1.9)  # before the promotion at 2.2, but the first success after the error
    m = RtoPhases().check(b.history(), SWITCH_FACTS).metrics
    assert m["failover_happened"] is True and m["recovered_at"] == 1.9


def test_rto_never_recovering_is_invalid() -> None:
    b = Builder()
    _writes_until_fault(b)
    for ds in range(11, 30):
        b.op("write", 100 + ds, ds / 10 - 0.005, ds / 10, OpType.FAIL)
    res = RtoPhases().check(b.history(), RunFacts(fault_at=1.0))
    assert res.valid is Valid.FALSE
    assert res.metrics["rto_s"] is None
    assert res.metrics["client_recovered"] is False


def test_rto_without_fault_is_unknown() -> None:
    b = Builder()
    _writes_until_fault(b)
    res = RtoPhases().check(b.history(), RunFacts())
    assert res.valid is Valid.UNKNOWN
    assert res.metrics == {"rto_s": None}


# ---- old primary ------------------------------------------------------------------------------

@pytest.mark.parametrize(("roles", "valid", "demoted"), [
    ({"redis-1": "replica", "redis-2": "primary"}, Valid.TRUE, True),
    ({"redis-1": "primary", "redis-2": "primary"}, Valid.FALSE, False),
    ({"redis-2": "primary"}, Valid.FALSE, False),  # old primary did not report a role at all
])
def test_old_primary_demoted_only_when_it_reports_replica(roles: dict[str, str], valid: Valid,
                                                          demoted: bool) -> None:
    res = OldPrimary().check(History(), RunFacts(old_primary="redis-1", roles_after=roles))
    assert res.valid is valid
    assert res.metrics["old_primary_demoted"] is demoted


def test_old_primary_without_target_is_unknown() -> None:
    res = OldPrimary().check(History(), RunFacts(roles_after={"redis-1": "replica"}))
    assert res.valid is Valid.UNKNOWN
    assert res.metrics["old_primary_demoted"] is None


# ---- run_checkers / evaluate / verdict -------------------------------------------------------

class CrashingChecker:
    name = "crashy"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        raise ZeroDivisionError("boom")


def test_run_checkers_turns_a_crash_into_unknown_and_keeps_going() -> None:
    history = Builder().op("write", 1, 0.0, 0.1).final_read([1]).history()
    results = run_checkers(history, NO_FACTS, (CrashingChecker(), LostWrites()))
    assert [r.name for r in results] == ["crashy", "lost-writes"]
    assert results[0].valid is Valid.UNKNOWN
    assert "ZeroDivisionError: boom" in results[0].detail
    assert results[1].valid is Valid.TRUE


def test_default_checkers_do_not_crash_on_empty_history() -> None:
    results = run_checkers(History(), NO_FACTS)
    assert [r.name for r in results] == ["lost-writes", "stale-reads", "availability", "rto", "old-primary", "load",
                                        "catch-up"]
    assert not [r for r in results if "crashed" in r.detail]


def test_every_expectation_metric_maps_to_a_checker() -> None:
    from chaoskit.cache_aside_checks import CacheDivergence
    from chaoskit.cache_checks import CacheHits

    names = {LostWrites.name, StaleReads.name, Availability.name, RtoPhases.name, OldPrimary.name, Load.name,
             CacheHits.name, CatchUp.name, CacheDivergence.name}
    for metric in typing.get_args(Metric):
        assert CHECK_OF_METRIC[metric] in names, metric


RESULTS = [
    CheckResult("lost-writes", Valid.FALSE, "3 of 90 missing", {"lost_writes": 3, "acked_writes": 90}),
    CheckResult("rto", Valid.FALSE, "no recovery", {"rto_s": None, "failover_happened": True}),
]


@pytest.mark.parametrize(("exp", "valid"), [
    (Expectation(metric="lost_writes", max=0), Valid.FALSE),
    (Expectation(metric="lost_writes", max=3), Valid.TRUE),
    (Expectation(metric="lost_writes", min=1), Valid.TRUE),
    (Expectation(metric="lost_writes", min=1, max=2), Valid.FALSE),
    (Expectation(metric="lost_writes", equals=3), Valid.TRUE),
    (Expectation(metric="failover_happened", equals=True), Valid.TRUE),
    (Expectation(metric="failover_happened", equals=False), Valid.FALSE),
    (Expectation(metric="rto_s", max=2.5), Valid.UNKNOWN),      # metric is None
    (Expectation(metric="stale_reads", max=0), Valid.UNKNOWN),  # no checker reported it
])
def test_evaluate_expectation_against_metrics(exp: Expectation, valid: Valid) -> None:
    (check,) = evaluate([exp], RESULTS)
    assert check.valid is valid


def test_evaluate_check_carries_name_expected_observed_and_why() -> None:
    (check,) = evaluate([Expectation(metric="lost_writes", max=0, why="no loss allowed")], RESULTS)
    assert check.name == "lost-writes"
    assert check.expected == "lost_writes <= 0"
    assert check.observed == "3"
    assert check.detail == "no loss allowed -- 3 of 90 missing"
    (na,) = evaluate([Expectation(metric="rto_s", max=2.5)], RESULTS)
    assert na.observed == "n/a"


def _check(valid: Valid) -> Check:
    return Check("x", valid, "", "", "")


@pytest.mark.parametrize(("valids", "expected"), [
    ([Valid.TRUE, Valid.TRUE], Verdict.PASS),
    ([Valid.TRUE, Valid.UNKNOWN], Verdict.UNKNOWN),
    ([Valid.UNKNOWN, Valid.FALSE, Valid.TRUE], Verdict.FAIL),
    ([Valid.FALSE], Verdict.FAIL),
])
def test_verdict_composition(valids: list[Valid], expected: Verdict) -> None:
    assert verdict([_check(v) for v in valids]) is expected


# ---- leaderless systems (a Cassandra ring): no failover, RTO = the ok write ending the last disruption ----

LEADERLESS = RunFacts(fault_at=1.0, leaderless=True, promoted_kinds=("promoted",),
                      events=(Event(1.2, "w", "promoted", "", "redis-2"),))  # a promotion event is ignored


def test_rto_leaderless_is_the_first_ok_after_the_last_error() -> None:
    b = Builder()
    _writes_until_fault(b)
    b.op("write", 300, 1.05, 1.2, OpType.FAIL)
    b.op("write", 301, 1.25, 1.3)  # would be recovery for a leader-based system
    b.op("write", 302, 1.35, 1.4, OpType.INFO)  # ... but the writes are disrupted again
    b.op("write", 303, 1.45, 1.5, OpType.FAIL)
    b.op("write", 304, 1.55, 1.6, node="redis-1")
    b.op("write", 305, 1.65, 1.7)
    res = RtoPhases().check(b.history(), LEADERLESS)
    assert res.valid is Valid.TRUE
    assert res.metrics["recovered_at"] == 1.6 and res.metrics["rto_s"] == pytest.approx(0.6)
    assert res.metrics["failover_happened"] is None and res.metrics["promoted_at"] is None
    assert "leaderless" in res.detail and "after the last error" in res.detail
    leader = RtoPhases().check(b.history(), RunFacts(fault_at=1.0)).metrics
    assert leader["recovered_at"] == 1.3 and leader["failover_happened"] is False


def test_rto_leaderless_a_late_gap_counts_and_errors_to_the_end_never_recover() -> None:
    b = Builder()
    _writes_until_fault(b)
    b.op("write", 300, 1.05, 1.1, OpType.FAIL)
    b.op("write", 301, 1.15, 1.2)
    b.op("write", 302, 1.85, 1.9)  # 0.7 s without an ok write: a disruption without errors
    m = RtoPhases().check(b.history(), LEADERLESS).metrics
    assert m["recovered_at"] == 1.9
    b.op("write", 303, 1.95, 2.0, OpType.INFO)
    res = RtoPhases().check(b.history(), LEADERLESS)
    assert res.valid is Valid.FALSE and res.metrics["rto_s"] is None and res.metrics["client_recovered"] is False


def test_old_primary_is_not_applicable_to_a_leaderless_system() -> None:
    res = OldPrimary().check(History(), RunFacts(leaderless=True, roles_after={"cassandra-1": "up"}))
    assert res.valid is Valid.TRUE and "not applicable" in res.detail
    assert res.metrics == {"old_primary_demoted": None}


def _probe(kind: str, t: float) -> Event:
    return Event(t, "cassandra", kind, "", "cassandra-3")


@pytest.mark.parametrize(("marks", "caught_up_s", "behind_at_end"), [
    ([("replica-behind", 5.0), ("replica-caught-up", 13.5)], 3.5, False),  # hints replayed 3.5 s after heal
    ([("replica-behind", 5.0)], None, True),  # never caught up: stale until repair
    ([("replica-behind", 5.0), ("replica-caught-up", 9.0)], 0.0, False),  # caught up before heal
    ([], None, None),  # no probe: not applicable
])
def test_catch_up_from_probe_events(marks: list[tuple[str, float]], caught_up_s: float | None,
                                    behind_at_end: bool | None) -> None:
    facts = RunFacts(fault_at=4.0, healed_at=10.0, events=tuple(_probe(k, t) for k, t in marks), leaderless=True)
    m = CatchUp().check(History(), facts).metrics
    assert m == {"caught_up_s": caught_up_s, "behind_at_end": behind_at_end}
