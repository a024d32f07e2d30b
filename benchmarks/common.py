"""Shared by the benchmark scripts: memory of a node's process tree, experiment variants, one run."""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chaoskit.backends import make_backend
from chaoskit.experiment import Experiment, load
from chaoskit.runner import run
from chaoskit.systems import get_system


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def tree_pss_mb(pid: int | None, tree: dict[int, list[int]]) -> float:
    """Proportional set size of a process and all its descendants, in MB."""
    total, todo = 0.0, [pid] if pid else []
    while todo:
        p = todo.pop()
        todo += tree.get(p, [])
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def bench_ready(system: str, experiment: str, backend_name: str, trials: int, what: str) -> float:
    """Up-to-ready time and memory (PSS of every node's process tree) of ``experiment``'s topology."""
    exp = load(experiment)
    times, mems = [], []
    for _ in range(trials):
        run_id = secrets.token_hex(3)
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
        backend = make_backend(backend_name, run_id, str(workdir))
        try:
            t = time.monotonic()
            topo = get_system(system).topology(exp, backend, workdir)
            topo.up(lambda _msg: None)
            topo.wait_ready(90)
            times.append(time.monotonic() - t)
            tree = _children()
            mems.append(sum(tree_pss_mb(n.pid, tree) for n in topo.nodes.values()))
        finally:
            backend.teardown()
    median = statistics.median(times)
    print(f"[{backend_name}] topology up-to-ready: median {median:.2f} s  (min {min(times):.2f}, "
          f"max {max(times):.2f} = {max(times) / median:.2f} x median, {trials} starts)")
    print(f"[{backend_name}] topology memory:      {statistics.median(mems):.0f} MB PSS for {what}", flush=True)
    return statistics.median(times)


def variant(name: str, *, steady_s: float | None = None, fault_s: float | None = None,
            rto_max: float | None = None, **topology: object) -> Experiment:
    """Experiment ``name`` with other topology settings, a longer steady state or fault window, and
    another RTO bound (an experiment file's bound is for its own settings)."""
    exp = load(name)
    schedule = {k: v for k, v in (("steady_s", steady_s), ("fault_s", fault_s)) if v is not None}
    expect = [e.model_copy(update={"max": rto_max}) if e.metric == "rto_s" and rto_max is not None else e
              for e in exp.expect]
    return exp.model_copy(update={"topology": {**exp.topology, **topology}, "expect": expect,
                                  "schedule": exp.schedule.model_copy(update=schedule)})


def run_once(exp: Experiment, backend_name: str) -> dict[str, float | None]:
    with tempfile.TemporaryDirectory() as out:
        result = run(exp, backend_name, Path(out), progress=lambda _msg: None)
    m = result.journal["metrics"]
    return {"rto": m.get("rto_s"), "p50": m.get("write_p50_ms"), "p99": m.get("write_p99_ms"),
            "lost": m["lost_writes"], "acked": m["acked_writes"], "pass": float(result.verdict.value == "pass")}


def fmt(values: list[float | None], digits: int = 2) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    return f"{statistics.median(got):.{digits}f}" + (f" ({min(got):.{digits}f}-{max(got):.{digits}f})"
                                                     if len(got) > 1 else "")


def bench_rto_sweep(backend_name: str, title: str, label: str, values_s: list[float],
                    experiment: Callable[[float], Experiment], trials: int) -> None:
    """RTO of ``experiment(value)`` for each value of a timeout that should drive it (ttl, election timeout)."""
    print(f"\n[{backend_name}] {title}")
    print(f"[{backend_name}] {label:>9} {'RTO s (median, range)':>24} {'RTO - it':>9} {'lost':>5} verdicts")
    for value in values_s:
        exp = experiment(value)
        runs = [run_once(exp, backend_name) for _ in range(trials)]
        rtos = [r["rto"] for r in runs]
        got = [r for r in rtos if r is not None]
        over = f"{statistics.median(got) - value:+.2f}" if got else "-"
        print(f"[{backend_name}] {value:9.1f} {fmt(rtos):>24} {over:>9} {sum(int(r['lost'] or 0) for r in runs):5d} "
              f"{sum(int(r['pass'] or 0) for r in runs)}/{trials} pass", flush=True)
