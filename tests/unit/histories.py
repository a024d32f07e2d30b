"""Generated histories for property-based tests (Hypothesis), built from a model that knows every answer.

A model is several processes, each a sequence of ops whose outcome (ok, fail, info, or no completion at
all) and times are drawn; reads ask for values that were written; the final read includes or omits each
value; the facts may hold a fault and promotion events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from chaoskit.checkers import RunFacts
from chaoskit.history import History, Op, OpType
from chaoskit.systems.base import Event

NODES = ("n1", "n2", "n3")
OUTCOMES = (OpType.OK, OpType.FAIL, OpType.INFO, None)  # None: the op never returned (its process hung)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class W:
    outcome: OpType | None
    invoked: float
    done: float | None
    node: str | None
    process: int


@dataclass
class Model:
    """A generated run: per-process op lists (each process in its own order), the final read and the facts."""

    per_process: list[list[Op]]
    writes: dict[int, W]  # value -> what became of that write
    reads: list[tuple[int, float, bool]]  # (value asked, invoked at, found) of every ok read
    final: set[int] | None
    facts: RunFacts
    duplicates: int = 0  # extra copies of values the final read holds

    def ops(self, order: random.Random | None = None) -> list[Op]:
        """All ops merged by time, or in a random interleaving that keeps every process's own order."""
        queues = [list(ops) for ops in self.per_process if ops]
        if order is None:
            return sorted((op for q in queues for op in q), key=lambda op: (op.time, op.process))
        out: list[Op] = []
        while queues:
            q = order.choice(queues)
            out.append(q.pop(0))
            if not q:
                queues.remove(q)
        return out

    def history(self, order: random.Random | None = None) -> History:
        return History(self.ops(order))


@dataclass
class _Clock:
    t: float = 0.0
    ops: list[Op] = field(default_factory=list)


@st.composite
def models(draw: st.DrawFn) -> Model:
    writers, readers = draw(st.integers(1, 4)), draw(st.integers(0, 2))
    attributed = draw(st.booleans()) or draw(st.booleans())  # a user's client names no node
    next_value = 1
    writes: dict[int, W] = {}
    per_process: list[list[Op]] = []
    for proc in range(writers):
        clock = _Clock(draw(st.floats(0, 0.5)))
        for i in range(draw(st.integers(0, 12))):
            clock.t += draw(st.floats(0, 0.6))
            outcome = draw(st.sampled_from(OUTCOMES)) if i else draw(st.sampled_from(OUTCOMES[:3]))
            node = draw(st.sampled_from(NODES)) if attributed else None
            inv = Op(proc, OpType.INVOKE, "write", next_value, round(clock.t, 6))
            clock.ops.append(inv)
            done = None
            if outcome is not None:
                clock.t += draw(st.floats(0, 1.5))
                done = round(clock.t, 6)
                clock.ops.append(Op(proc, outcome, "write", next_value, done, node=node,
                                    attempts=draw(st.sampled_from([None, 1, 1, 2, 7]))))
            writes[next_value] = W(outcome, inv.time, done, node, proc)
            next_value += 1
            if outcome is None:
                break  # a process whose op never returned invokes nothing more
        per_process.append(clock.ops)
    reads: list[tuple[int, float, bool]] = []
    for r in range(readers):
        proc, clock = writers + r, _Clock(draw(st.floats(0, 0.5)))
        for _ in range(draw(st.integers(0, 10)) if writes else 0):
            clock.t += draw(st.floats(0, 0.8))
            want = draw(st.sampled_from(sorted(writes)))
            found, outcome = draw(st.booleans()), draw(st.sampled_from(OUTCOMES[:3]))
            inv = Op(proc, OpType.INVOKE, "read", want, round(clock.t, 6))
            clock.t += draw(st.floats(0, 0.3))
            result = {"found": found, "seen": draw(st.sampled_from(sorted(writes)))} if outcome is OpType.OK else None
            clock.ops += [inv, Op(proc, outcome, "read", result, round(clock.t, 6), node="n2")]
            if outcome is OpType.OK:
                reads.append((want, inv.time, found))
        per_process.append(clock.ops)
    final: set[int] | None = None
    twice: list[int] = []
    if draw(st.booleans()) or not writes:
        final = {v for v in writes if draw(st.booleans())} | set(draw(st.sets(st.integers(1000, 1010), max_size=2)))
        twice = [v for v in sorted(final) if not draw(st.integers(0, 7))]  # a write applied twice, now and then
        end = round(max([op.time for ops in per_process for op in ops], default=0.0) + 1.0, 6)
        per_process.append([Op(writers + readers, OpType.INVOKE, "final-read", None, end),
                            Op(writers + readers, OpType.OK, "final-read", sorted([*final, *twice]),
                               round(end + 0.1, 6))])
    return Model(per_process, writes, reads, final, draw(facts()), len(twice))


@st.composite
def facts(draw: st.DrawFn) -> RunFacts:
    if not draw(st.booleans()):
        return RunFacts()
    fault_at = round(draw(st.floats(0, 4)), 6)
    healed_at = round(fault_at + draw(st.floats(0, 3)), 6) if draw(st.booleans()) else None
    events = tuple(Event(round(draw(st.floats(0, 8)), 6), "watcher", draw(st.sampled_from(["promoted", "noise"])),
                         "", draw(st.sampled_from([*NODES, None]))) for _ in range(draw(st.integers(0, 3))))
    return RunFacts(fault_at=fault_at, healed_at=healed_at, events=events, detected_kinds=("noise",),
                    promoted_kinds=("promoted",),
                    leaderless=draw(st.booleans()))
