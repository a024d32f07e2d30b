"""Tests for chaoskit.history: Op serialisation, Jepsen-style pairing and the JSONL round trip."""

from __future__ import annotations

from pathlib import Path

from chaoskit.history import History, Op, OpType


def test_op_to_dict_omits_absent_node_and_error_and_rounds_time() -> None:
    d = Op(3, OpType.OK, "write", 7, 1.23456789).to_dict()
    assert d == {"process": 3, "type": "ok", "f": "write", "value": 7, "time": 1.234568}


def test_op_from_dict_restores_enum_type_and_optional_fields() -> None:
    op = Op.from_dict({"process": "2", "type": "info", "f": "write", "value": 5, "time": "0.5",
                       "node": "redis-1", "error": "TimeoutError: x"})
    assert op == Op(2, OpType.INFO, "write", 5, 0.5, "redis-1", "TimeoutError: x")
    assert op.type is OpType.INFO


def test_record_stamps_time_relative_to_t0_with_injected_clock() -> None:
    now = [100.0]
    h = History(clock=lambda: now[0])
    now[0] = 101.5
    op = h.record(0, OpType.INVOKE, "write", 1)
    assert op.time == 1.5
    assert len(h) == 1


def test_pairs_matches_each_invoke_with_next_completion_of_same_process() -> None:
    h = History([
        Op(0, OpType.INVOKE, "write", 1, 0.0),
        Op(1, OpType.INVOKE, "write", 2, 0.1),
        Op(1, OpType.FAIL, "write", 2, 0.2),
        Op(0, OpType.OK, "write", 1, 0.3),
        Op(0, OpType.INVOKE, "write", 3, 0.4),
        Op(0, OpType.INFO, "write", 3, 0.5),
    ])
    got = [(p.invoke.value, p.complete.type if p.complete else None) for p in h.pairs()]
    assert got == [(1, OpType.OK), (2, OpType.FAIL), (3, OpType.INFO)]


def test_pairs_invoke_without_completion_counts_as_info() -> None:
    h = History([Op(0, OpType.INVOKE, "write", 1, 0.0), Op(1, OpType.INVOKE, "write", 2, 0.1),
                 Op(1, OpType.OK, "write", 2, 0.2)])
    pairs = h.pairs()
    assert [p.invoke.value for p in pairs] == [1, 2]
    assert pairs[0].complete is None
    assert pairs[0].type is OpType.INFO
    assert pairs[1].type is OpType.OK


def test_pairs_completion_without_invoke_is_its_own_pair() -> None:
    done = Op(9, OpType.OK, "final-read", [1, 2], 3.0)
    pairs = History([done]).pairs()
    assert len(pairs) == 1
    assert pairs[0].invoke is done and pairs[0].complete is done


def test_jsonl_round_trip_preserves_ops(tmp_path: Path) -> None:
    ops = [
        Op(0, OpType.INVOKE, "write", 1, 0.001),
        Op(0, OpType.OK, "write", 1, 0.002, node="redis-1"),
        Op(1, OpType.INVOKE, "read", 1, 0.003),
        Op(1, OpType.OK, "read", {"want": 1, "found": True, "seen": 1}, 0.004),
        Op(0, OpType.INVOKE, "write", 2, 0.005),
        Op(0, OpType.INFO, "write", 2, 0.5, error="TimeoutError: Timeout reading from socket"),
        Op(2, OpType.OK, "final-read", [1, 2], 1.0),
    ]
    path = tmp_path / "history.jsonl"
    History(ops).write_jsonl(path)
    back = History.read_jsonl(path)
    assert back.snapshot() == ops
    assert len(path.read_text().splitlines()) == len(ops)


def test_read_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"process":0,"type":"invoke","f":"write","value":1,"time":0.1}\n\n  \n'
                    '{"process":0,"type":"ok","f":"write","value":1,"time":0.2}\n')
    assert [op.type for op in History.read_jsonl(path)] == [OpType.INVOKE, OpType.OK]
