"""Tests for chaoskit.generator with a fake clock, fake sleep and fake clients (nothing waits)."""

from __future__ import annotations

import threading
from typing import Any

from chaoskit.clients.base import Outcome
from chaoskit.generator import Pacer, SharedState, WorkerSpec, Workload, run_op, worker_loop, worker_specs
from chaoskit.history import History, OpType
from tests.unit.fakes import FakeTime


class FakeClient:
    """Records calls; ``outcome(f, value)`` decides each result (default: ok on node redis-1)."""

    def __init__(self, outcome: Any = None, stop_after: int | None = None,
                 stop: threading.Event | None = None, open_error: Exception | None = None) -> None:
        self.outcome = outcome or (lambda f, v: Outcome(OpType.OK, node="redis-1"))
        self.calls: list[tuple[str, Any]] = []
        self.stop_after, self.stop = stop_after, stop
        self.open_error = open_error
        self.opened = self.closed = False
        self.lock = threading.Lock()

    def open(self) -> None:
        self.opened = True
        if self.open_error:
            raise self.open_error

    def invoke(self, f: str, value: Any) -> Outcome:
        with self.lock:
            self.calls.append((f, value))
            n = len(self.calls)
        if self.stop is not None and self.stop_after is not None and n >= self.stop_after:
            self.stop.set()
        return self.outcome(f, value)

    def close(self) -> None:
        self.closed = True


# ---- Pacer ------------------------------------------------------------------------------------

def test_pacer_spaces_slots_at_rate() -> None:
    ft = FakeTime(10.0)
    pacer = Pacer(10.0, clock=ft.clock, sleep=ft.sleep)
    slots = []
    for _ in range(5):
        pacer.wait()
        slots.append(round(ft.now, 6))
    assert slots == [10.0, 10.1, 10.2, 10.3, 10.4]


def test_pacer_does_not_burst_after_a_stall() -> None:
    ft = FakeTime()
    pacer = Pacer(10.0, clock=ft.clock, sleep=ft.sleep)
    pacer.wait()
    pacer.wait()
    ft.now += 5.0  # the op took 5 s: 50 slots were missed
    pacer.wait()
    stall_end = ft.now
    pacer.wait()
    pacer.wait()
    # after the stall, slots continue at the rate from *now* -- no catch-up burst
    assert round(ft.now - stall_end, 6) == 0.2
    assert all(abs(s - 0.1) < 1e-9 for s in ft.sleeps)


def test_pacer_does_not_sleep_when_ops_are_slower_than_rate() -> None:
    ft = FakeTime()
    pacer = Pacer(100.0, clock=ft.clock, sleep=ft.sleep)
    for _ in range(5):
        pacer.wait()
        ft.now += 0.05  # each op takes longer than the 10 ms interval
    assert ft.sleeps == []


# ---- SharedState ------------------------------------------------------------------------------

def test_shared_state_values_are_unique_across_threads() -> None:
    state = SharedState()
    out: list[list[int]] = [[] for _ in range(8)]

    def take(i: int) -> None:
        out[i].extend(state.next_value() for _ in range(500))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = [v for chunk in out for v in chunk]
    assert len(values) == 4000
    assert set(values) == set(range(1, 4001))


def test_shared_state_last_acked_only_moves_forward() -> None:
    state = SharedState()
    assert state.last_acked is None
    state.acked(5)
    state.acked(3)
    assert state.last_acked == 5
    state.acked(9)
    assert state.last_acked == 9


# ---- run_op / worker_loop ---------------------------------------------------------------------

def test_run_op_records_invoke_and_completion() -> None:
    h = History()
    out = run_op(h, FakeClient(), 4, "write", 17)
    assert out.type is OpType.OK
    ops = h.snapshot()
    assert [(o.process, o.type, o.f, o.value) for o in ops] == [(4, OpType.INVOKE, "write", 17),
                                                                (4, OpType.OK, "write", 17)]
    assert ops[1].node == "redis-1"


def test_run_op_turns_client_exception_into_info_op() -> None:
    def explode(f: str, v: Any) -> Outcome:
        raise RuntimeError("driver bug")

    h = History()
    out = run_op(h, FakeClient(outcome=explode), 0, "write", 1)
    assert out.type is OpType.INFO
    done = h.snapshot()[-1]
    assert done.type is OpType.INFO and done.value == 1
    assert done.error == "RuntimeError: driver bug"


def test_run_op_keeps_the_read_result_value() -> None:
    result = {"want": 3, "found": True, "seen": 4}
    h = History()
    run_op(h, FakeClient(outcome=lambda f, v: Outcome(OpType.OK, result)), 1, "read", 3)
    assert h.snapshot()[-1].value == result


def _fake_pacer() -> Pacer:
    ft = FakeTime()
    return Pacer(1000.0, clock=ft.clock, sleep=ft.sleep)


def test_worker_loop_writes_unique_values_and_acks_only_ok_ones() -> None:
    stop = threading.Event()
    client = FakeClient(outcome=lambda f, v: Outcome(OpType.OK if v % 2 else OpType.FAIL),
                        stop_after=6, stop=stop)
    h, state = History(), SharedState()
    worker_loop(WorkerSpec(0, "write", 1000.0), client, h, state, stop, _fake_pacer())
    assert [v for _, v in client.calls] == [1, 2, 3, 4, 5, 6]
    assert state.last_acked == 5  # 6 failed, so 5 is the newest acknowledged value
    assert client.opened and client.closed
    assert len(h) == 12


def test_worker_loop_never_crashes_when_invoke_raises() -> None:
    stop = threading.Event()

    def explode(f: str, v: Any) -> Outcome:
        raise ConnectionResetError("reset")

    client = FakeClient(outcome=explode, stop_after=3, stop=stop)
    h, state = History(), SharedState()
    worker_loop(WorkerSpec(0, "write", 1000.0), client, h, state, stop, _fake_pacer())
    completions = [op for op in h if op.type is not OpType.INVOKE]
    assert [op.type for op in completions] == [OpType.INFO] * 3
    assert state.last_acked is None
    assert client.closed


def test_worker_loop_records_open_failure_as_info_and_keeps_running() -> None:
    stop = threading.Event()
    client = FakeClient(open_error=OSError("no route"), stop_after=2, stop=stop)
    h = History()
    worker_loop(WorkerSpec(3, "write", 1000.0), client, h, SharedState(), stop, _fake_pacer())
    first = h.snapshot()[0]
    assert (first.f, first.type, first.process) == ("open", OpType.INFO, 3)
    assert "OSError: no route" in (first.error or "")
    assert len(client.calls) == 2


def test_reader_looks_for_last_acked_value() -> None:
    stop = threading.Event()
    state = SharedState()
    state.acked(41)
    state.acked(42)
    client = FakeClient(outcome=lambda f, v: Outcome(OpType.OK, {"want": v, "found": True, "seen": v}),
                        stop_after=2, stop=stop)
    worker_loop(WorkerSpec(1, "read", 1000.0), client, History(), state, stop, _fake_pacer())
    assert client.calls == [("read", 42), ("read", 42)]


def test_reader_does_nothing_before_any_write_is_acked() -> None:
    stop = threading.Event()
    ft = FakeTime()

    def sleep(s: float) -> None:
        ft.sleep(s)
        if len(ft.sleeps) >= 5:
            stop.set()

    client = FakeClient()
    h = History()
    worker_loop(WorkerSpec(1, "read", 100.0), client, h, SharedState(), stop,
                Pacer(100.0, clock=ft.clock, sleep=sleep))
    assert client.calls == []
    assert len(h) == 0


# ---- Workload ---------------------------------------------------------------------------------

def test_worker_specs_numbers_writers_then_readers() -> None:
    specs = worker_specs(2, 1, 50.0)
    assert [(s.process, s.f, s.rate_hz) for s in specs] == [(0, "write", 50.0), (1, "write", 50.0),
                                                            (2, "read", 50.0)]


def test_workload_start_stop_with_fake_clients() -> None:
    enough = threading.Event()
    clients: list[FakeClient] = []

    def make_client(spec: WorkerSpec) -> FakeClient:
        def outcome(f: str, v: Any) -> Outcome:
            if sum(len(c.calls) for c in clients) >= 30:
                enough.set()
            return Outcome(OpType.OK, {"want": v, "found": True, "seen": v} if f == "read" else None)

        c = FakeClient(outcome=outcome)
        clients.append(c)
        return c

    h = History()
    wl = Workload(h, make_client, worker_specs(2, 1, 2000.0))
    wl.start()
    assert enough.wait(5.0)
    wl.stop(timeout=5.0)
    assert not any(t.is_alive() for t in wl._threads)
    assert all(c.opened and c.closed for c in clients)
    written = [v for c in clients[:2] for f, v in c.calls]
    assert len(written) == len(set(written)) > 0
    assert wl.state.last_acked == max(written)
    assert all(p.complete is not None for p in h.pairs())  # every op finished before stop returned
