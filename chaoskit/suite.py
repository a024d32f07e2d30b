"""Several experiments in one go: one after another, or side by side (``chaoskit run -j N``), each in its own
topology, subnet and run id; a verdict table in the experiments' order at the end, and the suite report
(``index.html``, :mod:`chaoskit.suite_report`) beside the runs.

Side by side, each experiment runs in a child ``chaoskit run`` process (its own signal handling, teardown and
ledger, exactly as when run alone); its lines are printed as they come, prefixed by its name.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit import console
from chaoskit.errors import Interrupted
from chaoskit.experiment import Experiment
from chaoskit.junit import Case, JUnitLog

# What one run of each system needs while it runs (servers and the runner), for the default -j.
MEMORY_PER_RUN_GIB = 1.0


@dataclass
class Outcome:
    """One experiment's end, as the summary and the suite report see it."""

    experiment: Experiment
    out_dir: Path
    exit_code: int
    wall_s: float = 0.0
    journal: dict[str, Any] | None = None
    error: str | None = None  # why there is no journal (the run raised or the child died)

    @property
    def verdict(self) -> str:
        return str(self.journal.get("verdict", "unknown")) if self.journal else "error"


@dataclass
class Suite:
    """Where a multi-experiment run writes: ``root/<experiment>/`` per run and ``root/index.html``."""

    root: Path
    outcomes: list[Outcome] = field(default_factory=list)

    @classmethod
    def for_run(cls, out: Path | None) -> Suite:
        return cls(out or Path("runs") / f"{dt.datetime.now():%Y%m%d-%H%M%S}-suite")

    def out_dir(self, exp: Experiment) -> Path:
        return self.root / exp.name


def default_jobs(cores: int | None = None, mem_gib: float | None = None, weight: float = 1.0) -> int:
    """Side by side by default as far as the machine allows: most of a run is waiting (for a failover, an
    election, a timeout), so two runs per core, capped by memory (``MEMORY_PER_RUN_GIB`` each) and at 4 --
    divided by the heaviest system's ``run_weight`` (a Cassandra ring counts as two Redis runs)."""
    cores = cores or os.cpu_count() or 1
    mem_gib = mem_gib if mem_gib is not None else _available_gib()
    slots = min(4, 2 * cores, int(mem_gib // MEMORY_PER_RUN_GIB))
    return max(1, int(slots // max(weight, 1.0)))


def _available_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 4.0


def read_journal(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out_dir / "journal.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def child_argv(exp: Experiment, out_dir: Path, backend: str, client: str | None, paths: Sequence[str]) -> list[str]:
    """The ``chaoskit run`` of one experiment, by its file (so user directories need not be passed on)."""
    argv = [sys.executable, "-m", "chaoskit.cli", "run", exp.source or exp.name, "--backend", backend,
            "--out", str(out_dir)]
    if client:
        argv += ["--client", client]
    for p in paths:
        argv += ["--path", p]
    return argv


def run_side_by_side(exps: Sequence[Experiment], suite: Suite, jobs: int, backend: str, client: str | None,
                     paths: Sequence[str], say: Callable[[str], None] = print) -> list[Outcome]:
    """Run ``exps`` in child processes, at most ``jobs`` at a time; outcomes in the experiments' order."""
    lock = threading.Lock()
    width = max(len(e.name) for e in exps)
    live: dict[str, subprocess.Popen[str]] = {}

    def one(exp: Experiment) -> Outcome:
        out_dir = suite.out_dir(exp)
        t0 = time.monotonic()
        tail: list[str] = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with subprocess.Popen(child_argv(exp, out_dir, backend, client, paths), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env) as proc:
            live[exp.name] = proc
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                tail = [*tail[-4:], line]
                with lock:
                    say(f"{exp.name:<{width}} | {line}")
        live.pop(exp.name, None)
        journal = read_journal(out_dir)
        error = None if journal else (tail[-1] if tail else f"exited with {proc.returncode}")
        return Outcome(exp, out_dir, proc.returncode, time.monotonic() - t0, journal, error)

    def interrupted(signum: int, _frame: Any) -> None:
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}; every run healed and torn down")

    old_term = signal.signal(signal.SIGTERM, interrupted)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        return list(pool.map(one, exps))
    except BaseException:
        # interrupted (SIGINT/SIGTERM of this process only): each running child heals its faults and tears
        # down as a run alone does on SIGINT; the ones not started yet never start
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(live.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in list(live.values()):
            proc.wait()
        raise
    finally:
        pool.shutdown(wait=True)
        signal.signal(signal.SIGTERM, old_term)


def junit_from(log: JUnitLog, outcomes: Sequence[Outcome]) -> None:
    """Cases for ``--junit-xml`` from the children's journals (side-by-side runs)."""
    from chaoskit.checkers import Valid, Verdict
    from chaoskit.verdicts import Check

    for o in outcomes:
        case = Case(o.experiment.system, o.experiment.name, time_s=o.wall_s)
        if o.journal is None:
            case.error = f"RunError: {o.error}"
        else:
            case.verdict = Verdict(o.journal.get("verdict", "unknown"))
            case.checks = [Check(c.get("name", ""), Valid(c.get("valid", "unknown")), c.get("detail", ""),
                                 c.get("expected", ""), c.get("observed", ""))
                           for c in o.journal.get("checks", [])]
            case.report = str(o.out_dir / "report.html")
        log.cases.append(case)
    log.write()


def summary_table(outcomes: Sequence[Outcome]) -> str:
    rows = [[o.experiment.name, o.verdict.upper(), f"{o.wall_s:.0f}s" if o.wall_s else "",
             f"{o.out_dir}/report.html" if o.journal else (o.error or "")] for o in outcomes]
    return console.table(["experiment", "verdict", "wall", "report"], rows)
