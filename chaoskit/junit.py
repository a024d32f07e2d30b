"""JUnit XML for CI (``chaoskit run ... --junit-xml FILE``): one test case per experiment, or per run of
``--repeat N`` (N > 1; named ``<experiment> run-03``).

classname is the system, name the experiment, time the run's duration. A ``fail`` verdict is a
``<failure>``, an ``unknown`` verdict or a run that raised (infrastructure error, exit 3;
interruption) an ``<error>``; the message carries the check table (or the error). Experiments not
reached because an earlier one raised are ``<skipped>``. The report path is a ``<property>``.
The file is rewritten (atomically) after each experiment, so it is there even if a later one hangs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chaoskit import console
from chaoskit.checkers import Verdict
from chaoskit.suite_stats import run_label, run_numbers
from chaoskit.verdicts import Check

if TYPE_CHECKING:
    from chaoskit.experiment import Experiment
    from chaoskit.runner import RunResult



@dataclass
class Case:
    """The outcome of one experiment, as CI sees it."""

    system: str
    name: str
    time_s: float = 0.0
    verdict: Verdict | None = None  # None: the run raised (error) or never ran (skipped)
    checks: Sequence[Check] = ()
    report: str | None = None
    error: str | None = None  # "Type: message" of what the run raised
    skipped: bool = False


def case_name(experiment: str, run: int | None) -> str:
    """A test case's name: the experiment's, with the run's label when it is one of several."""
    return experiment if run is None else f"{experiment} {run_label(run)}"


def check_table(checks: Sequence[Check]) -> str:
    """The check table as the terminal shows it, without colour."""
    return console.check_table(checks, color=False)


def _details(checks: Sequence[Check]) -> str:
    return "\n".join(f"{c.name}: {c.detail}" for c in checks if c.detail)


def testcase(case: Case) -> ET.Element:
    el = ET.Element("testcase", classname=case.system, name=case.name, time=f"{case.time_s:.3f}")
    props = {"verdict": case.verdict.value if case.verdict else ("skipped" if case.skipped else "error")}
    if case.report:
        props["report"] = case.report
    plist = ET.SubElement(el, "properties")
    for key, value in props.items():
        ET.SubElement(plist, "property", name=key, value=value)
    if case.skipped:
        ET.SubElement(el, "skipped", message=case.error or "not run")
    elif case.error is not None:
        err = ET.SubElement(el, "error", message=case.error.splitlines()[0] if case.error else "error",
                            type=case.error.split(":", 1)[0])
        err.text = case.error
    elif case.verdict in (Verdict.FAIL, Verdict.UNKNOWN):
        table = check_table(case.checks)
        kind = "failure" if case.verdict is Verdict.FAIL else "error"
        bad = ET.SubElement(el, kind, message=table, type=f"verdict-{case.verdict.value}")
        bad.text = "\n\n".join(part for part in (table, _details(case.checks)) if part)
    return el


def document(cases: Sequence[Case], suite: str = "chaoskit", timestamp: dt.datetime | None = None) -> ET.Element:
    """``<testsuites>`` holding one ``<testsuite>`` with a ``<testcase>`` per case."""
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(c.verdict is Verdict.FAIL for c in cases)),
        "errors": str(sum(not c.skipped and (c.error is not None or c.verdict is Verdict.UNKNOWN) for c in cases)),
        "skipped": str(sum(c.skipped for c in cases)),
        "time": f"{sum(c.time_s for c in cases):.3f}",
    }
    root = ET.Element("testsuites", {"name": suite, **counts})
    stamp = (timestamp or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    ts = ET.SubElement(root, "testsuite", {"name": suite, "timestamp": stamp, "hostname": socket.gethostname(),
                                           **counts})
    ts.extend(testcase(c) for c in cases)
    return root


def write(path: Path, cases: Sequence[Case], timestamp: dt.datetime | None = None) -> None:
    """Write the file atomically (a reader never sees half of it)."""
    tree = ET.ElementTree(document(cases, timestamp=timestamp))
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


@dataclass
class _Pending:
    case: Case
    result: RunResult | None = None

    def record(self, result: RunResult) -> None:
        self.result = result


@dataclass
class JUnitLog:
    """Collects a run of experiments for ``--junit-xml``; a no-op when ``path`` is None.

    ``with log.case(exp) as c: c.record(run(exp, ...))`` times the run and writes the file;
    if the run raises, the case becomes an error, the rest are marked skipped, and it re-raises.
    """

    path: Path | None
    experiments: Sequence[Experiment]
    cases: list[Case] = field(default_factory=list)
    repeat: int = 1
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @contextlib.contextmanager
    def case(self, exp: Experiment, run: int | None = None, keep_going: bool = False) -> Iterator[_Pending]:
        """Record one run. An exception is recorded as the case's error and re-raised; the cases not run yet are
        marked skipped unless ``keep_going`` (a repeated run whose infrastructure failed: the next run goes on)."""
        pending = _Pending(Case(exp.system, case_name(exp.name, run)))
        t0 = time.monotonic()
        try:
            yield pending
        except BaseException as exc:
            pending.case.time_s = time.monotonic() - t0
            pending.case.error = f"{type(exc).__name__}: {exc}".rstrip()
            self.cases.append(pending.case)
            if not keep_going:
                self._skip_rest(exc)
            self.write()
            raise
        pending.case.time_s = time.monotonic() - t0
        if pending.result is None:
            pending.case.error = "RuntimeError: the run recorded no result"
        else:
            pending.case.verdict = pending.result.verdict
            pending.case.checks = pending.result.checks
            pending.case.report = str(pending.result.out_dir / "report.html")
        self.cases.append(pending.case)
        self.write()

    def _skip_rest(self, exc: BaseException) -> None:
        done = {(c.system, c.name) for c in self.cases}
        for exp in self.experiments:
            for name in (case_name(exp.name, run) for run in run_numbers(self.repeat)):
                if (exp.system, name) not in done:
                    reason = f"not run: an earlier run raised {type(exc).__name__}"
                    self.cases.append(Case(exp.system, name, skipped=True, error=reason))

    def write(self) -> None:
        if self.path is not None:
            write(self.path, self.cases, self.started)
