"""Benchmark figures for the Postgres stand-in (prints figures; not a timed test).

    make bench-postgres   # or: .venv/bin/python benchmarks/bench_postgres.py [--trials 3] [--backends local docker]

Figures per backend: topology up-to-ready and memory (PSS of every process of the 3 Patroni/Postgres
+ 3 etcd nodes, so shared buffers are not counted three times); the RTO of postgres-primary-kill for
several Patroni ttl values (Patroni promotes once the dead leader's lock expires, so RTO should
follow ttl); and steady-state write latency with asynchronous vs synchronous replication (the price
of "0 lost commits").
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
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


def bench_ready(backend_name: str, trials: int) -> None:
    exp = load("postgres-primary-kill")
    times, mems = [], []
    for _ in range(trials):
        run_id = secrets.token_hex(3)
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
        backend = make_backend(backend_name, run_id, str(workdir))
        try:
            t = time.monotonic()
            topo = get_system("postgres").topology(exp, backend, workdir)
            topo.up(lambda _msg: None)
            topo.wait_ready(90)
            times.append(time.monotonic() - t)
            tree = _children()
            mems.append(sum(tree_pss_mb(n.pid, tree) for n in topo.nodes.values()))
        finally:
            backend.teardown()
    print(f"[{backend_name}] topology up-to-ready: median {statistics.median(times):.2f} s  (min {min(times):.2f}, "
          f"max {max(times):.2f}, {trials} trials)")
    print(f"[{backend_name}] topology memory:      {statistics.median(mems):.0f} MB PSS for 3 Patroni/Postgres + "
          "3 etcd", flush=True)


def _variant(name: str, steady_s: float | None = None, **topology: object) -> Experiment:
    """``name`` with other topology settings; with another ttl the kill lasts ttl + 8 s and the RTO
    expectation becomes ttl + 5 s (the experiment file's is for ttl 10)."""
    exp = load(name)
    update: dict[str, object] = {"topology": {**exp.topology, **topology}}
    schedule: dict[str, float] = {} if steady_s is None else {"steady_s": steady_s}
    ttl = topology.get("ttl")
    if isinstance(ttl, int):
        schedule["fault_s"] = float(max(exp.schedule.fault_s, ttl + 8))
        update["expect"] = [e.model_copy(update={"max": float(ttl + 5)}) if e.metric == "rto_s" else e
                            for e in exp.expect]
    update["schedule"] = exp.schedule.model_copy(update=schedule)
    return exp.model_copy(update=update)


def _run(exp: Experiment, backend_name: str) -> dict[str, float | None]:
    with tempfile.TemporaryDirectory() as out:
        result = run(exp, backend_name, Path(out), progress=lambda _msg: None)
    m = result.journal["metrics"]
    return {"rto": m.get("rto_s"), "p50": m.get("write_p50_ms"), "p99": m.get("write_p99_ms"),
            "lost": m["lost_writes"], "acked": m["acked_writes"], "pass": float(result.verdict.value == "pass")}


def _fmt(values: list[float | None], digits: int = 2) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    return f"{statistics.median(got):.{digits}f}" + (f" ({min(got):.{digits}f}-{max(got):.{digits}f})"
                                                     if len(got) > 1 else "")


def bench_rto_vs_ttl(backend_name: str, ttls: list[int], trials: int) -> None:
    print(f"\n[{backend_name}] postgres-primary-kill (synchronous standby): RTO vs Patroni ttl")
    print(f"[{backend_name}] {'ttl s':>6} {'RTO s (median, range)':>24} {'RTO - ttl':>10} {'lost':>5} verdicts")
    for ttl in ttls:
        runs = [_run(_variant("postgres-primary-kill", ttl=ttl), backend_name) for _ in range(trials)]
        rtos = [r["rto"] for r in runs]
        med = statistics.median([r for r in rtos if r is not None]) if any(r is not None for r in rtos) else None
        over = f"{med - ttl:+.2f}" if med is not None else "-"
        print(f"[{backend_name}] {ttl:6d} {_fmt(rtos):>24} {over:>10} {sum(int(r['lost'] or 0) for r in runs):5d} "
              f"{sum(int(r['pass'] or 0) for r in runs)}/{trials} pass", flush=True)


def bench_sync_vs_async(backend_name: str, trials: int) -> None:
    print(f"\n[{backend_name}] write latency over 10 s of steady state (2 writers, 50 ops/s each), then lost "
          "commits after the kill")
    print(f"[{backend_name}] {'replication':12} {'p50 ms':>16} {'p99 ms':>16} {'lost/acked':>12}")
    for sync in (False, True):
        exp = _variant("postgres-primary-kill", steady_s=10, synchronous=sync)
        runs = [_run(exp, backend_name) for _ in range(trials)]
        lost = sum(int(r["lost"] or 0) for r in runs)
        acked = sum(int(r["acked"] or 0) for r in runs)
        print(f"[{backend_name}] {'synchronous' if sync else 'asynchronous':12} {_fmt([r['p50'] for r in runs]):>16} "
              f"{_fmt([r['p99'] for r in runs]):>16} {f'{lost}/{acked}':>12}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--ttls", type=int, nargs="*", default=[10, 15, 20])
    p.add_argument("--backends", nargs="*", default=["local"], choices=["local", "docker"])
    args = p.parse_args()
    for backend in args.backends:
        bench_ready(backend, args.trials)
        bench_rto_vs_ttl(backend, args.ttls, max(1, args.trials // 2))
        bench_sync_vs_async(backend, max(1, args.trials // 2))


if __name__ == "__main__":
    main()
