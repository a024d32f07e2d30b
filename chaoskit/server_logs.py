"""The servers' own account of a fault, kept with the run: around each heal, every log line of the node the
fault hit (the node that was cut off, paused or killed: what it said as it came back) and the other nodes'
lines that match the system's patterns -- each on the run clock (seconds since the history started).

A system opts in by giving its topology a :class:`LogSpec` (``log_evidence``): the patterns worth a look and
the window. The runner reads each node's log through the backend after the run (before teardown), and
:func:`gather` keeps what falls in the windows; the journal writes it as ``evidence.jsonl`` and names it in
its ``server_logs`` section. Log lines carry wall-clock timestamps: the first ISO-8601-like stamp of a line
(``2024-05-01T12:34:56,789+00:00``, ``2024-05-01 12:34:56.789 UTC``; without a zone it is this host's local
time), or the platform's own stamp when the backend has one (docker's), which is preferred. A line without a
stamp of its own continues the entry before it (a Java exception's lines); stack frames are left out.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaoskit.backends.base import Backend, LogLine, Node

FILE = "evidence.jsonl"
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?\s?(Z|UTC|[+-]\d{2}:?\d{2})?")
_STAMP_WITHIN = 100  # a line's own timestamp starts within its first characters
_FRAME = ("at ", "...")  # a Java stack's frames: left out of an entry
_KEEP_CONTINUATION = 8  # lines of an entry after its first (an exception and its causes)
_CAP = 2000  # entries kept per window at most (a node that floods its log)


@dataclass(frozen=True)
class LogSpec:
    """What a system's logs are searched for: ``patterns`` (case-insensitive regular expressions), and the
    window kept around each heal (``before_s`` before it, ``after_s`` after it). ``verbose``: regular
    expressions of entries too many to keep whole (a logger turned up to trace): kept, even from a faulted
    node, only when they match a pattern."""

    patterns: tuple[str, ...]
    before_s: float = 5.0
    after_s: float = 20.0
    verbose: tuple[str, ...] = ()

    def matches(self, text: str) -> tuple[str, ...]:
        """The patterns ``text`` matches, in the spec's order."""
        return tuple(p for p in self.patterns if re.search(p, text, re.IGNORECASE))

    def is_verbose(self, text: str) -> bool:
        return any(re.search(p, text) for p in self.verbose)


@dataclass(frozen=True)
class Window:
    """The span kept around one heal: the fault's kind, the nodes it hit, when it was healed (run clock)."""

    fault: str
    nodes: tuple[str, ...]
    healed_at: float
    start: float
    end: float

    @classmethod
    def around(cls, fault: str, target: str, healed_at: float, spec: LogSpec) -> Window:
        nodes = tuple(n for n in target.split(",") if n)
        return cls(fault, nodes, healed_at, healed_at - spec.before_s, healed_at + spec.after_s)


@dataclass(frozen=True)
class Entry:
    """One log entry kept: its node, run-clock time, text (first line, then an exception's lines), the patterns
    it matches, whether its node is one the fault hit, and the window it falls in (index)."""

    node: str
    time: float
    text: str
    matches: tuple[str, ...]
    faulted: bool
    window: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time": round(self.time, 3), "matches": list(self.matches)}


@dataclass
class Evidence:
    """What :func:`gather` kept, and how: run clock zero as wall time, the windows, lines read, time taken."""

    clock_t0: float
    patterns: tuple[str, ...] = ()
    windows: list[Window] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    lines_read: int = 0
    took_s: float = 0.0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The journal's ``server_logs`` section."""
        t0 = dt.datetime.fromtimestamp(self.clock_t0, dt.UTC).isoformat(timespec="microseconds")
        return {"file": FILE, "clock_t0": t0, "lines_read": self.lines_read, "kept": len(self.entries),
                "patterns": list(self.patterns), "took_s": round(self.took_s, 3),
                "windows": [{**asdict(w), "nodes": list(w.nodes)} for w in self.windows],
                **({"error": self.error} if self.error else {})}


def wall_time(text: str) -> float | None:
    """Seconds since the epoch of the first ISO-8601-like timestamp near the start of ``text``, else None."""
    m = _STAMP.search(text[:_STAMP_WITHIN])
    if m is None:
        return None
    day, clock, frac, zone = m.groups()
    try:
        stamp = dt.datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        return None
    if zone in ("Z", "UTC"):
        stamp = stamp.replace(tzinfo=dt.UTC)
    elif zone:
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        stamp = stamp.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes)))
    return stamp.timestamp() + (float(f"0.{frac}") if frac else 0.0)  # naive: this host's local time


def without_stamp(text: str) -> str:
    """``text`` without its leading timestamp (and the brackets around it), for display."""
    m = _STAMP.search(text[:_STAMP_WITHIN])
    if m is None or text[:m.start()].strip("[ ") != "":
        return text
    return text[m.end():].lstrip("] ")


def entries(lines: Iterable[LogLine]) -> list[tuple[float, str]]:
    """(wall time, text) per entry: a line with a timestamp starts one, a line without continues the last (a
    stack's frames left out, at most a few lines kept); lines before the first timestamp are dropped."""
    out: list[tuple[float, list[str]]] = []
    for line in lines:
        own = wall_time(line.text)
        if own is not None or (line.at is not None and not out):
            out.append((line.at if line.at is not None else own or 0.0, [line.text.rstrip()]))
        elif (out and line.text.strip() and not line.text.lstrip().startswith(_FRAME)
              and len(out[-1][1]) <= _KEEP_CONTINUATION):
            out[-1][1].append(line.text.rstrip())
    return [(t, "\n".join(text)) for t, text in out]


def select(logs: Mapping[str, Iterable[LogLine]], windows: Sequence[Window], spec: LogSpec,
           clock_t0: float) -> list[Entry]:
    """The entries inside a window: every one of a node the window's fault hit (but its verbose ones), and
    the others' that match a pattern; by time, then node."""
    kept: list[Entry] = []
    per_window = [0] * len(windows)
    for node, lines in logs.items():
        for wall, text in entries(lines):
            t = wall - clock_t0
            i = next((i for i, w in enumerate(windows) if w.start <= t <= w.end), None)
            if i is None or per_window[i] >= _CAP:
                continue
            faulted, found = node in windows[i].nodes, spec.matches(text)
            if (faulted and not spec.is_verbose(text)) or found:
                kept.append(Entry(node, t, text, found, faulted, i))
                per_window[i] += 1
    return sorted(kept, key=lambda e: (e.time, e.node))


def gather(backend: Backend, nodes: Mapping[str, Node], spec: LogSpec,
           healed: Sequence[tuple[str, str, float | None]], clock_t0: float) -> Evidence:
    """Read each node's log and keep what :func:`select` keeps around each heal (``healed``: each fault's
    kind, target node names joined by commas, and heal time on the run clock, None if not healed). Never
    raises: a log that cannot be read is said in ``error``."""
    started = time.monotonic()
    windows = [Window.around(kind, target, at, spec) for kind, target, at in healed if at is not None]
    evidence = Evidence(clock_t0, spec.patterns, windows)
    if not windows:
        return evidence
    since = clock_t0 + min(w.start for w in windows) - 1.0
    try:
        logs = {name: backend.log_lines(node, since=since) for name, node in nodes.items()}
        evidence.lines_read = sum(len(lines) for lines in logs.values())
        evidence.entries = select(logs, windows, spec, clock_t0)
    except Exception as exc:  # noqa: BLE001 -- the run's verdict does not depend on its evidence
        evidence.error = f"{type(exc).__name__}: {exc}"[:200]
    evidence.took_s = time.monotonic() - started
    return evidence


def write_jsonl(path: Path, kept: Iterable[Entry]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for entry in kept:
            fh.write(json.dumps(entry.to_dict(), separators=(",", ":")) + "\n")


def read_jsonl(run_dir: Path, journal: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries a run directory keeps ([] for a run without: older runs, systems without a LogSpec)."""
    section = journal.get("server_logs")
    name = section.get("file") if isinstance(section, Mapping) else None
    path = run_dir / Path(str(name or FILE)).name
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out
