"""Workload schedules: paced workers that write unique values and read the latest acknowledged one.

Small pieces (a pacer, a value source, a worker loop) with clock and sleep injected so tests run
without waiting. A worker never crashes the run: any exception from a client becomes an ``info`` op.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaoskit.clients.base import Client, Outcome
from chaoskit.history import History, OpType


class Pacer:
    """Yields slots at ``rate_hz``; after a stall it does not burst to catch up."""

    def __init__(self, rate_hz: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate_hz
        self.clock, self.sleep = clock, sleep
        self._next = clock()

    def wait(self) -> None:
        now = self.clock()
        if self._next > now:
            self.sleep(self._next - now)
            self._next += self.interval
        else:
            self._next = now + self.interval


@dataclass
class SharedState:
    """What workers share: unique write values and the latest acknowledged one (for reads)."""

    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    last_acked: int | None = None

    def next_value(self) -> int:
        with self._lock:
            return next(self._counter)

    def acked(self, value: int) -> None:
        with self._lock:
            if self.last_acked is None or value > self.last_acked:
                self.last_acked = value


@dataclass(frozen=True)
class WorkerSpec:
    process: int
    f: str  # "write" or "read"
    rate_hz: float


def run_op(history: History, client: Client, process: int, f: str, value: Any) -> Outcome:
    """Record invoke, call the client, record the completion. Exceptions become info ops."""
    history.record(process, OpType.INVOKE, f, value)
    try:
        out = client.invoke(f, value)
    except Exception as exc:  # noqa: BLE001 -- a worker never crashes the run
        out = Outcome(OpType.INFO, error=f"{type(exc).__name__}: {exc}"[:200])
    history.record(process, out.type, f, out.value if out.value is not None else value,
                   node=out.node, error=out.error, attempts=out.attempts, wire=out.wire)
    return out


def worker_loop(spec: WorkerSpec, client: Client, history: History, state: SharedState,
                stop: threading.Event, pacer: Pacer | None = None) -> None:
    """Run ops until ``stop`` is set. Writes use fresh unique values; reads look for the last acked."""
    pacer = pacer or Pacer(spec.rate_hz)
    try:
        client.open()
    except Exception as exc:  # noqa: BLE001
        history.record(spec.process, OpType.INFO, "open", None, error=f"{type(exc).__name__}: {exc}"[:200])
    try:
        while not stop.is_set():
            pacer.wait()
            if spec.f == "write":
                value = state.next_value()
                if run_op(history, client, spec.process, "write", value).type is OpType.OK:
                    state.acked(value)
            else:
                want = state.last_acked
                if want is not None:
                    run_op(history, client, spec.process, spec.f, want)
    finally:
        client.close()


class Workload:
    """Starts one thread per worker; ``stop()`` joins them (bounded by the op deadline).

    The cyclic garbage collector is paused while workers run: a full collection walks the whole
    growing history and stalled every worker for ~40 ms (measured), which would show up as a gap
    in the history that the database did not cause.
    """

    def __init__(self, history: History, make_client: Callable[[WorkerSpec], Client],
                 specs: list[WorkerSpec]) -> None:
        self.history, self.make_client, self.specs = history, make_client, specs
        self.state = SharedState()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._gc_was_enabled = False

    def start(self) -> None:
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        for spec in self.specs:
            t = threading.Thread(target=worker_loop, name=f"worker-{spec.process}", daemon=True,
                                 args=(spec, self.make_client(spec), self.history, self.state, self._stop))
            self._threads.append(t)
            t.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._gc_was_enabled:
            gc.enable()
            self._gc_was_enabled = False


def worker_specs(writers: int, readers: int, rate_hz: float) -> list[WorkerSpec]:
    specs = [WorkerSpec(i, "write", rate_hz) for i in range(writers)]
    specs += [WorkerSpec(writers + i, "read", rate_hz) for i in range(readers)]
    return specs
