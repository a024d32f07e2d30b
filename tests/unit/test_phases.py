"""Which phase an op belongs to: the ops the fault window touched are ``during``."""

from __future__ import annotations

from chaoskit.phases import load_metrics, phase_of


def test_an_op_held_through_the_fault_counts_during_it() -> None:
    assert phase_of(1.0, 1.5, fault_at=2.0, healed_at=5.0) == "before"  # done before the fault
    assert phase_of(1.9, 5.5, fault_at=2.0, healed_at=5.0) == "during"  # invoked before, held through it
    assert phase_of(3.0, 3.1, fault_at=2.0, healed_at=5.0) == "during"
    assert phase_of(4.9, 6.0, fault_at=2.0, healed_at=5.0) == "during"  # invoked in it, done after heal
    assert phase_of(5.0, 5.1, fault_at=2.0, healed_at=5.0) == "after"
    assert phase_of(9.0, 9.1, fault_at=2.0, healed_at=None) == "during"  # never healed
    assert phase_of(9.0, 9.1, fault_at=None, healed_at=None) == "before"  # no fault


def test_two_writers_stuck_across_the_whole_window_still_give_figures_during_it() -> None:
    """Both ops were invoked before the fault and retried until heal (what a reset or a black hole does):
    counted by invocation time alone, the fault window would have no op at all."""
    ops = [(0.5, 0.6, 1), (1.99, 5.1, 12), (1.98, 5.2, 13), (5.3, 5.4, 1)]
    m = load_metrics(ops, fault_at=2.0, healed_at=5.0)
    assert m["attempts"] == 27 and m["attempts_per_op"] == 6.75
    assert m["attempts_per_op_during"] == 12.5 and m["op_max_ms_during"] == 3220.0
    assert m["attempts_per_op_before"] == 1.0 and m["attempts_per_op_after"] == 1.0
