"""Several experiments in one go: one after another, or side by side (``chaoskit run -j N``), each in its own
topology, subnet and run id; a verdict table in the experiments' order at the end, and the suite report
(``index.html``, :mod:`chaoskit.suite_report`) beside the runs.

Side by side, each experiment runs in a child ``chaoskit run`` process (its own signal handling, teardown and
ledger, exactly as when run alone); its lines are printed as they come, prefixed by its name.

Repeated (``--repeat N``, N > 1), each experiment runs N times one after another, each run in
``<root>/<experiment>/run-01`` ...; ``-j`` still counts experiments: up to ``-j`` experiments' sequences of runs
go side by side, never two runs of one experiment. Every run ends with one line (verdict and headline figures).
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
from typing import TYPE_CHECKING, Any

from chaoskit import console
from chaoskit.errors import InfrastructureError, Interrupted, MissingDependencyError
from chaoskit.experiment import Experiment
from chaoskit.junit import Case, JUnitLog, case_name
from chaoskit.suite_report import Row, write_suite
from chaoskit.suite_stats import aggregate, run_label, run_numbers

if TYPE_CHECKING:
    from chaoskit.clients.user import Factory

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
    run: int | None = None  # 1, 2, ... of ``--repeat N`` (N > 1)

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

    def out_dir(self, exp: Experiment, run: int | None = None) -> Path:
        return self.root / exp.name / run_label(run) if run is not None else self.root / exp.name

    def sort(self, exps: Sequence[Experiment]) -> None:
        """The outcomes in the experiments' order, each experiment's runs in run order."""
        order = {e.name: i for i, e in enumerate(exps)}
        self.outcomes.sort(key=lambda o: (order.get(o.experiment.name, len(order)), o.run or 0))


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


def found_runs(root: Path) -> list[tuple[Path, int | None]]:
    """The run directories of a suite directory, each with its run number: ``<experiment>/`` (one run) or
    ``<experiment>/run-NN/`` (repeated runs), in name and run order; only those holding a journal."""
    found: list[tuple[Path, int | None]] = [(p.parent, None) for p in root.glob("*/journal.json")]
    for p in root.glob("*/run-*/journal.json"):
        number = p.parent.name.removeprefix("run-")
        if number.isdigit():
            found.append((p.parent, int(number)))
    return sorted(found, key=lambda f: (f[0].parent.name if f[1] is not None else f[0].name, f[1] or 0))


def write_index(root: Path, runs: Sequence[tuple[Path, int | None]]) -> Path:
    """(Re)write ``root/index.html`` from the journals of ``runs`` (as :func:`found_runs` gives them)."""
    rows = []
    for d, n in runs:
        j = read_journal(d)
        name = (j or {}).get("experiment") or (d.parent.name if n is not None else d.name)
        rows.append(Row(str(name), d, j, (j or {}).get("compare_with"), run=n))
    write_suite(root / "index.html", rows)
    return root / "index.html"


def run_in_turn(exps: Sequence[Experiment], suite: Suite, junit: JUnitLog, repeat: int, backend: str,
                client: Factory | None, paths: Sequence[str]) -> None:
    """Each experiment's runs one after another, in this process; each outcome added to the suite as it ends.
    A run that raises ends the suite, as it does without ``--repeat``; with ``--repeat``, a run whose
    infrastructure failed (not a missing dependency) is an error row and the next run goes on."""
    from chaoskit.runner import run

    for exp in exps:
        print(f"\n=== {exp.name}: {exp.purpose}\n    hypothesis: {exp.hypothesis}", flush=True)
        for n in run_numbers(repeat):
            if n is not None:
                print(f"--- {exp.name}: run {n} of {repeat} -> {suite.out_dir(exp, n)}", flush=True)
            t0 = time.monotonic()
            try:
                with junit.case(exp, n, keep_going=n is not None) as case:
                    result = run(exp, backend, suite.out_dir(exp, n), console.Progress("  "), client=client,
                                 paths=paths)
                    case.record(result)
            except InfrastructureError as exc:
                if n is None or isinstance(exc, MissingDependencyError):
                    raise
                # one of N runs could not be carried out (a node did not start...): it is an error row, not a
                # verdict, and the next run goes on; the cleanup of this one already ran
                suite.outcomes.append(Outcome(exp, suite.out_dir(exp, n), exc.exit_code, time.monotonic() - t0,
                                              error=str(exc).splitlines()[0], run=n))
                print(f"{exp.name}: run {n} of {repeat}: ERROR {str(exc).splitlines()[0]}", flush=True)
                continue
            print(console.check_table(result.checks))
            outcome = Outcome(exp, result.out_dir, result.exit_code, time.monotonic() - t0, result.journal, run=n)
            suite.outcomes.append(outcome)
            print(console.verdict_line(exp.name, result.verdict.value, str(result.out_dir)) if n is None
                  else f"{exp.name}: {run_line(outcome, repeat)}", flush=True)


def child_argv(exp: Experiment, out_dir: Path, backend: str, client: str | None, paths: Sequence[str],
               settings: Sequence[str] = ()) -> list[str]:
    """The ``chaoskit run`` of one experiment, by its file (so user directories need not be passed on), with the
    suite's ``--set KEY=VALUE`` options."""
    argv = [sys.executable, "-m", "chaoskit.cli", "run", exp.source or exp.name, "--backend", backend,
            "--out", str(out_dir)]
    for pair in settings:
        argv += ["--set", pair]
    if client:
        argv += ["--client", client]
    for p in paths:
        argv += ["--path", p]
    return argv


def run_side_by_side(exps: Sequence[Experiment], suite: Suite, jobs: int, backend: str, client: str | None,
                     paths: Sequence[str], say: Callable[[str], None] = print, repeat: int = 1,
                     settings: Sequence[str] = ()) -> None:
    """Run ``exps`` in child processes, at most ``jobs`` experiments at a time, each ``repeat`` times in a row;
    each outcome is added to ``suite.outcomes`` as its run ends (an interrupted suite keeps the finished ones),
    in the experiments' order at the end."""
    lock = threading.Lock()
    stopping = threading.Event()  # set under ``lock``: no child starts after it
    width = max(len(e.name) for e in exps)
    live: dict[str, subprocess.Popen[str]] = {}

    def one(exp: Experiment, run: int | None) -> Outcome | None:
        out_dir = suite.out_dir(exp, run)
        t0 = time.monotonic()
        tail: list[str] = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with lock:
            if stopping.is_set():
                return None
            if run is not None:
                say(f"{exp.name:<{width}} | --- run {run} of {repeat} -> {out_dir}")
            proc = subprocess.Popen(child_argv(exp, out_dir, backend, client, paths, settings), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env=env)
            live[exp.name] = proc
        with proc:
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
        return Outcome(exp, out_dir, proc.returncode, time.monotonic() - t0, journal, error, run)

    def runs_of(exp: Experiment) -> None:
        for run in run_numbers(repeat):
            outcome = one(exp, run)
            if outcome is None:
                return
            with lock:
                suite.outcomes.append(outcome)
                if repeat > 1:
                    say(f"{exp.name:<{width}} | {run_line(outcome, repeat)}")

    def interrupted(signum: int, _frame: Any) -> None:
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}; every run healed and torn down")

    old_term = signal.signal(signal.SIGTERM, interrupted)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        list(pool.map(runs_of, exps))
    except BaseException:
        # interrupted (SIGINT/SIGTERM of this process only): each running child heals its faults and tears
        # down as a run alone does on SIGINT; the ones not started yet never start
        with lock:
            stopping.set()
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
        suite.sort(exps)


def run_line(o: Outcome, repeat: int) -> str:
    """One run's end on one line: which of how many, its verdict and headline figures, where its report is."""
    head = f"run {o.run or 1} of {repeat}: {console.paint(o.verdict.upper(), o.verdict)}"
    if o.journal is None:
        return f"{head}  {o.error or 'no journal'}"
    m = o.journal.get("metrics") or {}
    parts = []
    if m.get("acked_writes") is not None:
        lost = m.get("lost_writes")
        parts.append(f"lost {'n/a' if lost is None else lost} of {m['acked_writes']} acked")
    for key, label, unit in (("ops_info", "info ops", ""), ("max_op_ms", "longest op", " ms"),
                             ("unavailable_s", "unavailable", " s")):
        if isinstance(m.get(key), int | float):
            parts.append(f"{label} {m[key]:g}{unit}")
    return f"{head}  {', '.join(parts)}  ({o.wall_s:.0f} s)  -> {o.out_dir}/report.html"


def junit_from(log: JUnitLog, outcomes: Sequence[Outcome]) -> None:
    """Cases for ``--junit-xml`` from the children's journals (side-by-side runs)."""
    from chaoskit.checkers import Valid, Verdict
    from chaoskit.verdicts import Check

    for o in outcomes:
        case = Case(o.experiment.system, case_name(o.experiment.name, o.run), time_s=o.wall_s)
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
    rows = [[case_name(o.experiment.name, o.run), o.verdict.upper(), f"{o.wall_s:.0f}s" if o.wall_s else "",
             f"{o.out_dir}/report.html" if o.journal else (o.error or "")] for o in outcomes]
    return console.table(["experiment", "verdict", "wall", "report"], rows)


def loss_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """Per experiment of repeated runs: in how many runs acknowledged writes were lost, with the 95% interval."""
    names = list(dict.fromkeys(o.experiment.name for o in outcomes if o.run is not None))
    lines = []
    for name in names:
        a = aggregate(name, [o.journal for o in outcomes if o.experiment.name == name])
        rate = "no run states its lost writes" if a.interval is None else \
            f"{a.lossy} of {a.counted} runs lost acknowledged writes (95% CI {a.interval[0]:.0%} - {a.interval[1]:.0%})"
        lines.append(f"{name}: {rate}; {a.lost} lost of {a.acked} acked in all; "
                     + ", ".join(f"{n} {v}" for v, n in a.verdicts.items() if n))
    return lines
