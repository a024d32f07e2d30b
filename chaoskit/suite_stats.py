"""Figures of repeated runs (``chaoskit run --repeat N``), read from their journals: how often acknowledged writes
were lost, with a 95% Wilson interval, and the spread of the other headline figures; and the chains that
``compare_with`` declares between experiments (A <- B <- C), in the order they are read side by side.

Pure functions of journals (dicts as ``journal.json`` holds them); nothing here runs anything. A run without a
journal, or whose journal states no lost-writes figure, is counted as a run but never as a run without loss.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Z_95 = 1.959964  # the normal quantile of a two-sided 95% interval
VERDICTS = ("pass", "fail", "unknown", "error")


def run_numbers(repeat: int) -> list[int | None]:
    """The runs of ``--repeat N``: 1 .. N, or one unnumbered run when N is 1 (the layout of a single run)."""
    return [None] if repeat == 1 else list(range(1, repeat + 1))


def run_label(run: int) -> str:
    """A repeated run's directory name (``run-03``)."""
    return f"run-{run:02d}"


def wilson(k: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``k`` of ``n`` (None for no trials): unlike k/n +- z*se it
    stays inside [0, 1] and is not empty at 0 of n or n of n, which is where chaos runs mostly land."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"{k} of {n}: k must be between 0 and n")
    z2 = z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z / (n + z2) * math.sqrt(k * (n - k) / n + z2 / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Spread:
    """The smallest, the median and the largest of some per-run figures."""

    low: float
    median: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        return cls(min(values), statistics.median(values), max(values)) if values else None


@dataclass(frozen=True)
class Aggregate:
    """One experiment's repeated runs, summed up. ``counted`` are the runs whose journal states the lost-writes
    figure: ``lossy`` of them lost at least one acknowledged write (``interval``: its 95% Wilson interval); ``lost``
    and ``acked`` are their totals over those runs."""

    name: str
    runs: int
    verdicts: Mapping[str, int]
    counted: int
    lossy: int
    interval: tuple[float, float] | None
    lost: int
    acked: int
    lost_per_run: Spread | None
    info_runs: int
    info_counted: int  # runs whose journal states ops_info
    info_total: int
    longest_op_ms: Spread | None
    version: str | None
    lost_by_run: tuple[int | None, ...] = field(default=())  # per run, in run order; None: no figure

    @property
    def uncounted(self) -> int:
        return self.runs - self.counted


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _metrics(journal: Mapping[str, Any] | None) -> Mapping[str, Any]:
    m = (journal or {}).get("metrics")
    return m if isinstance(m, Mapping) else {}


def server_version(journal: Mapping[str, Any] | None) -> str | None:
    """The server's version the journal records (``"server": {"version": ...}``), if it does."""
    server = (journal or {}).get("server")
    version = server.get("version") if isinstance(server, Mapping) else None
    return str(version) if version not in (None, "") else None


def versions_label(journals: Sequence[Mapping[str, Any] | None]) -> str | None:
    """One version if every run that records one says the same (with how many do, if not all), "mixed (...)" if
    they differ, None if none records it."""
    found = [v for v in map(server_version, journals) if v is not None]
    distinct = sorted(set(found))
    if not distinct:
        return None
    if len(distinct) > 1:
        return f"mixed ({', '.join(distinct)})"
    return distinct[0] if len(found) == len(journals) else f"{distinct[0]} ({len(found)} of {len(journals)} runs)"


def aggregate(name: str, journals: Sequence[Mapping[str, Any] | None]) -> Aggregate:
    """The figures of ``journals``, one per run in run order (None: the run ended without a journal)."""
    verdicts = {v: 0 for v in VERDICTS}
    for j in journals:
        v = str(j.get("verdict", "unknown")) if j else "error"
        verdicts[v if v in verdicts else "unknown"] += 1
    lost_by_run = tuple(_int(_metrics(j).get("lost_writes")) if j else None for j in journals)
    lost = [x for x in lost_by_run if x is not None]
    # acknowledged writes of the runs that state their lost ones: lost / acked is then one population
    acked = [_int(_metrics(j).get("acked_writes")) for j, x in zip(journals, lost_by_run, strict=True) if x is not None]
    info = [x for x in (_int(_metrics(j).get("ops_info")) for j in journals if j) if x is not None]
    longest = [float(x) for x in (_metrics(j).get("max_op_ms") for j in journals if j)
               if isinstance(x, int | float) and not isinstance(x, bool)]
    lossy = sum(x > 0 for x in lost)
    return Aggregate(name=name, runs=len(journals), verdicts=verdicts, counted=len(lost), lossy=lossy,
                     interval=wilson(lossy, len(lost)), lost=sum(lost), acked=sum(a for a in acked if a is not None),
                     lost_per_run=Spread.of([float(x) for x in lost]), info_runs=sum(x > 0 for x in info),
                     info_counted=len(info),
                     info_total=sum(info), longest_op_ms=Spread.of(longest), version=versions_label(journals),
                     lost_by_run=lost_by_run)


def chains(links: Sequence[tuple[str, str | None]]) -> list[list[str]]:
    """Experiments connected by ``compare_with``, each group once, weakest (oldest) first.

    ``links`` are (experiment, the experiment it is compared with) in the suite's order. A link to an experiment
    not in ``links`` or to itself is ignored; a group is ordered so each experiment follows the one it is
    compared with, and a cycle is broken at its first member in the suite's order (no crash, every member once).
    Groups of one are left out."""
    names = list(dict.fromkeys(n for n, _ in links))
    weaker = {n: w for n, w in links if w and w in names and w != n}
    group = {n: n for n in names}

    def root(n: str) -> str:
        while group[n] != n:
            n = group[n]
        return n

    for n, w in weaker.items():
        group[root(n)] = root(w)
    out = []
    for first in dict.fromkeys(root(n) for n in names):
        members = [n for n in names if root(n) == first]
        if len(members) > 1:
            out.append(_weakest_first(members, weaker))
    return out


def _weakest_first(members: list[str], weaker: Mapping[str, str]) -> list[str]:
    order: list[str] = []
    while len(order) < len(members):
        left = [n for n in members if n not in order]
        ready = [n for n in left if weaker.get(n) is None or weaker[n] in order]
        order.append((ready or left)[0])
    return order
