"""Op history after Jepsen: every op is an ``invoke`` followed by ``ok``, ``fail`` or ``info``.

``ok``: it happened. ``fail``: it certainly did not. ``info``: unknown (timeout, connection
dropped mid-call) -- it may or may not have been applied.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class OpType(enum.StrEnum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Op:
    process: int
    type: OpType
    f: str
    value: Any
    time: float
    node: str | None = None
    error: str | None = None
    attempts: int | None = None  # a completion: how many times the client sent the op (retries + 1)
    wire: tuple[str, ...] | None = None  # a completion: each attempt's fate as the client saw it, one line each

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "process": self.process,
            "type": self.type.value,
            "f": self.f,
            "value": self.value,
            "time": round(self.time, 6),
        }
        if self.node is not None:
            out["node"] = self.node
        if self.error is not None:
            out["error"] = self.error
        if self.attempts is not None:
            out["attempts"] = self.attempts
        if self.wire is not None:
            out["wire"] = list(self.wire)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        return cls(
            process=int(d["process"]),
            type=OpType(d["type"]),
            f=str(d["f"]),
            value=d.get("value"),
            time=float(d["time"]),
            node=d.get("node"),
            error=d.get("error"),
            attempts=d.get("attempts"),
            wire=tuple(str(w) for w in d["wire"]) if d.get("wire") is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Pair:
    """An invocation and its completion (completion is None if the op never returned)."""

    invoke: Op
    complete: Op | None

    @property
    def type(self) -> OpType:
        return self.complete.type if self.complete else OpType.INFO


class History:
    """Append-only, thread-safe op history; times are seconds since ``t0`` (monotonic)."""

    def __init__(self, ops: Iterable[Op] = (), clock: Any = time.monotonic) -> None:
        self._ops: list[Op] = list(ops)
        self._lock = threading.Lock()
        self._clock = clock
        self.t0 = clock()
        self.wall_t0 = time.time()  # the wall clock at t0 (seconds since the epoch): servers' log lines are on it

    def now(self) -> float:
        """Seconds since the history started, to the microsecond: exactly what ``history.jsonl`` holds, so a
        recount from the files sees the very times the checkers saw."""
        return round(float(self._clock() - self.t0), 6)

    def append(self, op: Op) -> Op:
        with self._lock:
            self._ops.append(op)
        return op

    def record(self, process: int, type_: OpType, f: str, value: Any, *,
               node: str | None = None, error: str | None = None, attempts: int | None = None,
               wire: tuple[str, ...] | None = None) -> Op:
        """Stamp an op with the current time and append it."""
        return self.append(Op(process, type_, f, value, self.now(), node, error, attempts, wire))

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.snapshot())

    def snapshot(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def pairs(self) -> list[Pair]:
        """Match each invoke with the next completion of the same process (Jepsen's pairing)."""
        open_: dict[int, Op] = {}
        out: list[Pair] = []
        for op in self.snapshot():
            if op.type is OpType.INVOKE:
                open_[op.process] = op
                continue
            inv = open_.pop(op.process, None)
            if inv is not None:
                out.append(Pair(inv, op))
            else:  # a completion without invoke (e.g. final-read): its own invoke
                out.append(Pair(op, op))
        out.extend(Pair(inv, None) for inv in open_.values())
        out.sort(key=lambda p: p.invoke.time)
        return out

    def write_jsonl(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as fh:
            for op in self.snapshot():
                fh.write(json.dumps(op.to_dict(), separators=(",", ":")) + "\n")

    @classmethod
    def read_jsonl(cls, path: Path) -> History:
        ops = []
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    ops.append(Op.from_dict(json.loads(line)))
        return cls(ops)
