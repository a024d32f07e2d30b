"""The second reading (``chaoskit.recount``) against the checkers, on generated and hand-made runs."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given

from chaoskit.checkers import RunFacts, run_checkers, summarize
from chaoskit.cli import main
from chaoskit.history import History, Op, OpType
from chaoskit.recount import ASIDE_KEYS, CACHE_KEYS, KEYS, disagreements, recount
from chaoskit.systems.base import Event
from tests.unit.histories import PROPS, Model, models


def write_run(run_dir: Path, history: History, facts: RunFacts) -> dict[str, object]:
    """The files a run writes, with the journal's fields the recount reads, figures from the checkers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    history.write_jsonl(run_dir / "history.jsonl")
    metrics = summarize(run_checkers(history, facts))
    journal = {
        "metrics": metrics, "history": "history.jsonl",
        "faults": [] if facts.fault_at is None else [{"kind": "kill", "applied_at": facts.fault_at,
                                                      "healed_at": facts.healed_at}],
        "events": [{"time": e.time, "kind": e.kind, **({"node": e.node} if e.node else {})} for e in facts.events],
        "rto": {"promoted_kinds": list(facts.promoted_kinds), "leaderless": facts.leaderless},
    }
    (run_dir / "journal.json").write_text(json.dumps(journal))
    return metrics


@PROPS
@given(models())
def test_the_recount_agrees_with_the_checkers_on_generated_runs(tmp_path_factory: object, m: Model) -> None:
    run_dir = Path(tmp_path_factory.mktemp("run"))  # type: ignore[attr-defined]
    metrics = write_run(run_dir, m.history(), m.facts)
    assert disagreements(run_dir) == [], (metrics, recount(run_dir))


def _kill_run(tmp_path: Path) -> Path:
    ops = [Op(0, OpType.INVOKE, "write", 1, 0.1), Op(0, OpType.OK, "write", 1, 0.2, node="a"),
           Op(1, OpType.INVOKE, "write", 2, 1.1), Op(0, OpType.INVOKE, "write", 3, 1.2),
           Op(0, OpType.OK, "write", 3, 3.5, node="b", attempts=4),
           Op(1, OpType.OK, "write", 2, 3.9, node="b", attempts=2),
           Op(2, OpType.INVOKE, "read", 1, 4.0), Op(2, OpType.OK, "read", {"found": False}, 4.1),
           Op(9, OpType.INVOKE, "final-read", None, 5.0), Op(9, OpType.OK, "final-read", [1, 2, 2], 5.1)]
    facts = RunFacts(fault_at=1.0, healed_at=3.0, events=(Event(3.0, "w", "promoted", "", "b"),),
                     promoted_kinds=("promoted",))
    write_run(tmp_path, History(ops), facts)
    return tmp_path


def test_recount_figures_of_a_hand_made_run(tmp_path: Path) -> None:
    got = recount(_kill_run(tmp_path))
    assert got == {"ops_ok": 4, "ops_fail": 0, "ops_info": 0, "acked_writes": 3, "info_writes": 0,
                   "lost_writes": 1, "reads_checked": 1, "stale_reads": 1, "rto_s": 2.5,
                   "max_op_ms": 2800.0, "duplicates": 1, "attempts": 8, "attempts_per_op": 2.0,
                   "attempts_per_op_before": 1.0, "op_p50_ms_before": 100.0, "op_p99_ms_before": 100.0,
                   "op_max_ms_before": 100.0,
                   "attempts_per_op_during": 3.0, "op_p50_ms_during": 2800.0, "op_p99_ms_during": 2800.0,
                   "op_max_ms_during": 2800.0,
                   "attempts_per_op_after": 1.0, "op_p50_ms_after": 100.0, "op_p99_ms_after": 100.0,
                   "op_max_ms_after": 100.0, **dict.fromkeys(CACHE_KEYS),  # no cache: no cache figures
                   **dict.fromkeys(ASIDE_KEYS)}
    assert set(got) == set(KEYS)
    assert disagreements(tmp_path) == [], "the checkers count the same duplicates, attempts and phases"


def test_recount_cli_exits_1_and_names_the_figure_when_the_journal_differs(tmp_path: Path, capsys: object) -> None:
    run_dir = _kill_run(tmp_path)
    assert main(["recount", str(run_dir)]) == 0
    journal = json.loads((run_dir / "journal.json").read_text())
    journal["metrics"]["lost_writes"] = 0
    (run_dir / "journal.json").write_text(json.dumps(journal))
    assert disagreements(run_dir) == ["lost_writes: journal 0, recount 1"]
    assert main(["recount", str(run_dir)]) == 1
    assert main(["recount", str(tmp_path / "nowhere")]) == 2
