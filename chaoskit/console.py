"""Terminal output: timestamped progress and verdict tables (colour only on a TTY); the one line a permission
problem gets."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from chaoskit.checkers import Valid
from chaoskit.verdicts import Check

_COLOURS = {"pass": "32", "fail": "31", "unknown": "33", "true": "32", "false": "31"}


def _tty() -> bool:
    return sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def paint(text: str, key: str) -> str:
    code = _COLOURS.get(key)
    return f"\033[{code}m{text}\033[0m" if code and _tty() else text


class Progress:
    """Prints ``[  12.3s] message`` lines, time counted from construction."""

    def __init__(self, prefix: str = "") -> None:
        self.t0 = time.monotonic()
        self.prefix = prefix

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {self.prefix}{message}", flush=True)


def _mark(valid: Valid) -> str:
    text = {Valid.TRUE: "holds", Valid.FALSE: "VIOLATED", Valid.UNKNOWN: "unknown"}[valid]
    return paint(text, {Valid.TRUE: "true", Valid.FALSE: "false", Valid.UNKNOWN: "unknown"}[valid])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          visible_widths: Sequence[Sequence[int]] | None = None) -> str:
    """Align columns; ``visible_widths`` gives cell widths without colour codes."""
    widths = [len(h) for h in headers]
    plain: Sequence[Sequence[int]] = visible_widths or [[len(c) for c in row] for row in rows]
    for lens_row in plain:
        widths = [max(w, c) for w, c in zip(widths, lens_row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    for row, lens in zip(rows, plain, strict=True):
        lines.append("  ".join(c + " " * (w - n) for c, w, n in zip(row, widths, lens, strict=True)).rstrip())
    return "\n".join(line.rstrip() for line in lines)


def check_table(checks: Sequence[Check], color: bool = True) -> str:
    """The check table: each expectation, what was observed, and whether the hypothesis holds."""
    rows, lens = [], []
    for c in checks:
        plain = {Valid.TRUE: "holds", Valid.FALSE: "VIOLATED", Valid.UNKNOWN: "unknown"}[c.valid]
        row = [c.name, c.expected, c.observed, _mark(c.valid) if color else plain]
        rows.append(row)
        lens.append([len(row[0]), len(row[1]), len(row[2]), len(plain)])
    return table(["check", "expected", "observed", "hypothesis"], rows, lens)


def verdict_line(name: str, verdict: str, out_dir: str) -> str:
    return f"{paint(verdict.upper(), verdict)}  {name}  ->  {out_dir}/report.html"


def permission_problem(exc: PermissionError) -> str:
    """One line for a permission this user lacks, naming the path and its owner, and what to do."""
    import pwd

    path = str(exc.filename or "")
    owner = ""
    existing = next((p for p in (Path(path), *Path(path).parents) if p.exists()), None) if path else None
    with contextlib.suppress(OSError, KeyError):
        owner = pwd.getpwuid(existing.stat().st_uid).pw_name if existing else ""
    whose = f" ({existing} belongs to {owner})" if owner else ""
    return (f"{exc.strerror or 'permission denied'}: {path}{whose} -- another user's file in the way: "
            "remove it as that user, or use a directory of your own")
