"""Fakes shared by the unit tests."""

from __future__ import annotations


class FakeTime:
    """An injectable clock and sleep: sleeping advances the clock instantly and is recorded."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s
