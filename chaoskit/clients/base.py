"""The client role: invoke one op through a real driver and say how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chaoskit.history import OpType


@dataclass(frozen=True)
class Outcome:
    """How an op ended: ok (applied), fail (certainly not applied) or info (maybe applied)."""

    type: OpType
    value: Any = None
    node: str | None = None
    error: str | None = None
    attempts: int | None = None  # how many times the op was sent (retries + 1); None: not counted
    wire: tuple[str, ...] | None = None  # optional: each attempt's fate, one short line each (node, status, ...)


class Client(Protocol):
    """One worker's connection to the system under test, wrapped in a resilience pattern."""

    def open(self) -> None:
        """Connect (lazily is fine). May raise a driver error; the runner records it as a failed op."""
        ...

    def invoke(self, f: str, value: Any) -> Outcome:
        """Run op ``f`` with ``value``; never raises for database errors -- returns fail/info instead."""
        ...

    def close(self) -> None:
        """Release connections; never raises."""
        ...
