"""The figures of repeated runs (chaoskit.suite_stats) on fabricated journals, checked by hand: the Wilson
interval, the aggregate of an experiment's runs, and the compare_with chains."""

from __future__ import annotations

from typing import Any

import pytest

from chaoskit.suite_stats import Spread, aggregate, chains, run_numbers, versions_label, wilson


def _journal(verdict: str, lost: int | None, acked: int, info: int, longest: float,
             version: str | None = "3.6.0") -> dict[str, Any]:
    return {"verdict": verdict, "metrics": {"lost_writes": lost, "acked_writes": acked, "ops_info": info,
                                            "max_op_ms": longest},
            **({"server": {"version": version, "java": 25}} if version else {})}


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 20, 0.0, 0.1611),  # z^2 / (n + z^2) = 3.8415 / 23.8415
    (20, 20, 0.8389, 1.0),  # the mirror image
    (5, 20, 0.1119, 0.4687),  # centre 6.9207 / 23.8415 = 0.2903, half 0.0822 * sqrt(3.75 + 0.9604) = 0.1784
    (1, 2, 0.0945, 0.9055),  # centre exactly 0.5, half 0.3355 * sqrt(0.5 + 0.9604) = 0.4055
    (2, 3, 0.2077, 0.9385),
])
def test_the_wilson_interval_matches_the_hand_computed_one(k: int, n: int, low: float, high: float) -> None:
    interval = wilson(k, n)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=1e-4)


def test_the_wilson_interval_of_no_runs_is_none_and_a_bad_count_is_refused() -> None:
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_an_aggregate_counts_only_runs_that_state_the_figure() -> None:
    journals = [_journal("pass", 0, 100, 0, 120.0), _journal("fail", 3, 90, 2, 800.0), None,
                _journal("unknown", None, 50, 1, 400.0, version=None), _journal("fail", 7, 110, 0, 300.0)]
    a = aggregate("x", journals)
    assert a.runs == 5 and dict(a.verdicts) == {"pass": 1, "fail": 2, "unknown": 1, "error": 1}
    assert (a.lossy, a.counted, a.uncounted) == (2, 3, 2)  # the errored and the unknown-loss run are not "0 lost"
    assert a.interval == wilson(2, 3)
    assert (a.lost, a.acked) == (10, 300)  # the 50 acked of the run without a lost figure are left out
    assert a.lost_per_run == Spread(0, 3, 7)
    assert (a.info_runs, a.info_counted, a.info_total) == (2, 4, 3)
    assert a.longest_op_ms == Spread(120.0, 350.0, 800.0)
    assert a.version == "3.6.0 (3 of 5 runs)"
    assert a.lost_by_run == (0, 3, None, None, 7)


def test_an_aggregate_of_runs_without_figures_states_none() -> None:
    a = aggregate("x", [None, {"verdict": "unknown", "metrics": {}}])
    assert a.interval is None and a.counted == 0 and a.lost_per_run is None and a.longest_op_ms is None
    assert a.version is None and dict(a.verdicts) == {"pass": 0, "fail": 0, "unknown": 1, "error": 1}


def test_the_version_is_one_when_all_agree_and_mixed_when_they_differ() -> None:
    same = [_journal("pass", 0, 1, 0, 1.0, "2.19.6")] * 3
    assert versions_label(same) == "2.19.6"
    assert versions_label([*same, _journal("pass", 0, 1, 0, 1.0, "3.6.0")]) == "mixed (2.19.6, 3.6.0)"


@pytest.mark.parametrize(("links", "expected"), [
    ([("c", "b"), ("b", "a"), ("a", None)], [["a", "b", "c"]]),  # listed newest first, read oldest first
    ([("a", None), ("b", "a"), ("c", "a"), ("lone", None)], [["a", "b", "c"]]),  # two compared with one
    ([("a", "b"), ("b", "a")], [["a", "b"]]),  # a cycle is broken at its first member
    ([("a", "c"), ("b", "a"), ("c", "b")], [["a", "b", "c"]]),
    ([("c", "b"), ("b", "a")], [["b", "c"]]),  # a missing member: the rest of the chain
    ([("b", "a"), ("c", None)], []),  # nothing here to compare with
    ([("a", "a")], []),  # compared with itself
    ([("b", "a"), ("a", None), ("b", "a")], [["a", "b"]]),  # repeated runs of one experiment: once
])
def test_chains_group_compared_experiments_weakest_first(links: list[tuple[str, str | None]],
                                                         expected: list[list[str]]) -> None:
    assert chains(links) == expected


def test_one_run_keeps_the_single_run_layout() -> None:
    assert run_numbers(1) == [None] and run_numbers(3) == [1, 2, 3]
