"""The cache figures (chaoskit.cache_checks) on hand-made Memcached histories, and their second reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaoskit.cache_checks import CacheHits, hit_ratio_series
from chaoskit.checkers import RunFacts, Valid, run_checkers, summarize
from chaoskit.history import History, Op, OpType
from chaoskit.recount import CACHE_KEYS, disagreements, recount

FACTS = RunFacts(fault_at=4.0, healed_at=8.0, leaderless=True, cache=True)
NODES = ("memcached-1", "memcached-2", "memcached-3")


class Ops:
    """Ops on their own process each (a get or a set), stamped as the Memcached client records them."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(self, f: str, t: float, value: dict[str, Any], type_: OpType = OpType.OK, *, process: int | None = None,
            node: str | None = None, error: str | None = None) -> None:
        p = len(self.ops) if process is None else process
        self.ops += [Op(p, OpType.INVOKE, f, 1, t), Op(p, type_, f, value, t + 0.001, node, error)]

    def history(self) -> History:
        return History(sorted(self.ops, key=lambda op: op.time))


def _cache_run() -> History:
    """Keys k0..k29 set at t < 1 (k_i on node i % 3); 30 gets per second from t=1 to t=12, key i in turn.
    From the fault (4.0) until 6.0 keys of memcached-1 miss (and their refill is not stored); from 6.0 their
    first get misses once more and the refill stores it (rehashed to memcached-2); hits otherwise."""
    ops = Ops()
    for i in range(30):
        ops.add("write", 0.01 * i, {"key": f"k{i}", "stored": True}, node=NODES[i % 3])
    refilled: set[int] = set()
    for second in range(1, 12):
        for i in range(30):
            t = second + i / 30
            home, reader = NODES[i % 3], 100 + i % 2  # two reader processes
            if i % 3 == 0 and 4.0 <= t < 6.0:  # the dead node: a miss, the set after it not stored
                ops.add("read", t, {"key": f"k{i}", "hit": False, "refilled": False}, process=reader, node=home)
            elif i % 3 == 0 and t >= 6.0 and i not in refilled:  # rehashed: one miss, refilled
                refilled.add(i)
                ops.add("read", t, {"key": f"k{i}", "hit": False, "refilled": True}, process=reader,
                        node="memcached-2")
            else:
                ops.add("read", t, {"key": f"k{i}", "hit": True, "refilled": None}, process=reader,
                        node="memcached-2" if i % 3 == 0 and t >= 6.0 else home)
    ops.add("write", 7.0, {"key": "k1", "stored": None}, OpType.INFO, error="MemcacheUnexpectedCloseError: x")
    ops.add("read", 7.5, {"key": "k2", "hit": None, "refilled": None}, OpType.FAIL, error="ConnectionRefusedError: y")
    return ops.history()


def test_hit_ratio_per_phase_window_and_end() -> None:
    m = CacheHits().check(_cache_run(), FACTS).metrics
    assert m["gets"] == 331 and m["hits"] == 30 * 11 - 20 - 10
    assert m["hit_ratio_before"] == 1.0
    # 20 dead-node misses, 10 misses refilled on the new node, and the get at 7.5 that raised (no hit)
    assert m["hit_ratio_during"] == round((4 * 30 - 20 - 10) / (4 * 30 + 1), 4)
    assert m["min_hit_ratio"] == round(20 / 30, 4)  # seconds 4 and 5: a third of the keys miss
    assert m["hit_ratio_after"] == 1.0
    assert m["hit_ratio_end"] == 1.0


def test_errors_are_what_raised_and_unstored_sets_are_not_errors() -> None:
    res = CacheHits().check(_cache_run(), FACTS)
    assert res.metrics["cache_errors"] == 2
    assert res.valid is Valid.FALSE
    assert res.metrics["sets_not_stored"] == 20


def test_misses_on_keys_set_before_and_the_miss_rates() -> None:
    m = CacheHits().check(_cache_run(), FACTS).metrics
    assert m["unexpected_misses"] == 30  # every miss was on a key set at t < 1
    assert m["miss_rate_before"] == 0.0
    assert m["miss_rate_during"] == 30 / 4.0


def test_rehash_is_when_the_last_process_first_saw_a_key_on_another_node() -> None:
    m = CacheHits().check(_cache_run(), FACTS).metrics
    assert m["rehash_s"] == round(6.0 + 3 / 30 + 0.001 - 4.0, 3)  # reader 100 saw k0 at 6.0, reader 101 k3 at 6.1


def test_a_miss_on_a_key_never_set_is_no_unexpected_miss() -> None:
    ops = Ops()
    ops.add("read", 1.0, {"key": "k5", "hit": False, "refilled": True})
    ops.add("read", 2.0, {"key": "k5", "hit": True, "refilled": None})
    m = CacheHits().check(ops.history(), RunFacts(cache=True)).metrics
    assert m["unexpected_misses"] == 0 and m["hit_ratio"] == 0.5 and m["rehash_s"] is None
    assert m["min_hit_ratio"] is None and m["hit_ratio_during"] is None


def test_series_bins_gets_by_invocation_time() -> None:
    gets = [p for p in _cache_run().pairs() if p.invoke.f == "read"]
    series = hit_ratio_series(gets, 4.0)
    assert series[0] == (4.0, 30, 20) and series[2] == (6.0, 30, 20)


def test_on_a_cache_lost_and_stale_do_not_apply_and_the_cache_checker_runs() -> None:
    results = {r.name: r for r in run_checkers(_cache_run(), FACTS)}
    assert results["lost-writes"].metrics["lost_writes"] is None
    assert results["stale-reads"].metrics["stale_reads"] is None
    assert "not applicable" in results["stale-reads"].detail
    assert "cache" in results
    assert "cache" not in {r.name for r in run_checkers(_cache_run(), RunFacts())}


def test_the_recount_agrees_on_a_cache_run(tmp_path: Path) -> None:
    history = _cache_run()
    history.write_jsonl(tmp_path / "history.jsonl")
    metrics = summarize(run_checkers(history, FACTS))
    journal = {"metrics": metrics, "history": "history.jsonl",
               "faults": [{"kind": "kill", "applied_at": 4.0, "healed_at": 8.0}], "events": [],
               "rto": {"promoted_kinds": [], "leaderless": True, "cache": True}}
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    assert disagreements(tmp_path) == []
    again = recount(tmp_path)
    assert all(again[k] is not None for k in CACHE_KEYS)
    journal["metrics"] = {**metrics, "unexpected_misses": 29}  # the second reading does catch a difference
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    assert disagreements(tmp_path) == ["unexpected_misses: journal 29, recount 30"]


def test_the_report_of_a_cache_run_plots_the_hit_ratio_over_time() -> None:
    from chaoskit.report import render_report

    ops = [op.to_dict() for op in _cache_run()]
    journal = {"experiment": "x", "faults": [{"kind": "kill", "target": "memcached-1", "applied_at": 4.0,
                                              "healed_at": 8.0}], "rto": {"cache": True}}
    html = render_report(journal, ops)
    assert "Hit ratio over time" in html
    points = html.split("<polyline points=\"", 1)[1].split('"', 1)[0].split()
    assert len(points) == 11  # one per second with gets: 1..11
    heights = [float(p.split(",")[1]) for p in points]
    assert heights[3] > heights[2] and heights[4] > heights[2]  # seconds 4 and 5 dip (a lower ratio is lower down)
    assert "Hit ratio over time" not in render_report({**journal, "rto": {}}, ops)
