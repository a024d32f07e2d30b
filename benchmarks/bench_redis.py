"""Benchmark figures for the Redis stand-in (prints figures; not a timed test).

    make bench   # or: .venv/bin/python benchmarks/bench_redis.py [--trials 3] [--backends local docker]

Figures per backend: topology up-to-ready, topology memory (RSS of all servers), each experiment's
wall time, measured RTO vs down-after, the longest gap between recorded ops in steady state; and
docker/local ratios. Targets (2 cores): RTO <= down-after + 1.5 s; <= 10 ms between ops.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from chaoskit.backends import make_backend
from chaoskit.experiment import list_experiments, load
from chaoskit.runner import run
from chaoskit.systems import get_system


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_ready(backend_name: str, trials: int) -> float:
    exp = load("redis-primary-kill")
    times, mems = [], []
    for _ in range(trials):
        run_id = secrets.token_hex(3)
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
        backend = make_backend(backend_name, run_id, str(workdir))
        try:
            t = time.monotonic()
            topo = get_system("redis").topology(exp, backend, workdir)
            topo.up(lambda _msg: None)
            topo.wait_ready(60)
            times.append(time.monotonic() - t)
            mems.append(sum(rss_mb(n.pid) for n in topo.nodes.values()))
        finally:
            backend.teardown()
    print(f"[{backend_name}] topology up-to-ready: median {statistics.median(times):.2f} s  (min {min(times):.2f}, "
          f"max {max(times):.2f}, {trials} trials)")
    print(f"[{backend_name}] topology memory:      {statistics.median(mems):.1f} MB RSS for 3 redis + 3 sentinels")
    return statistics.median(times)


def bench_experiments(backend_name: str, names: list[str], trials: int) -> dict[str, float]:
    walls: dict[str, list[float]] = {}
    print(f"\n[{backend_name}] {'experiment':34} {'wall s':>7} {'rto s':>6} {'down-after':>10} {'lost':>6} "
          f"{'acked':>6} {'max gap ms':>10} verdict")
    for name in names:
        exp = load(name)
        for _ in range(trials):
            t = time.monotonic()
            with tempfile.TemporaryDirectory() as out:
                result = run(exp, backend_name, Path(out), progress=lambda _msg: None)
            wall = time.monotonic() - t
            walls.setdefault(name, []).append(wall)
            m = result.journal["metrics"]
            rto = f"{m['rto_s']:.2f}" if m.get("rto_s") is not None else "-"
            down_after = int(exp.topology.get("down_after_ms", 1000)) / 1000
            print(f"[{backend_name}] {name:34} {wall:7.1f} {rto:>6} {down_after:10.1f} {m['lost_writes']!s:>6} "
                  f"{m['acked_writes']:>6} {m.get('max_op_gap_ms', 0):10.1f} {result.verdict.value}", flush=True)
    return {name: statistics.median(ws) for name, ws in walls.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--experiments", nargs="*", default=[e.name for e in list_experiments() if e.system == "redis"])
    p.add_argument("--backends", nargs="*", default=["local"], choices=["local", "docker"])
    args = p.parse_args()
    ready: dict[str, float] = {}
    walls: dict[str, dict[str, float]] = {}
    for backend in args.backends:
        ready[backend] = bench_ready(backend, args.trials)
        walls[backend] = bench_experiments(backend, args.experiments, 1 if args.trials < 3 else args.trials)
    if {"local", "docker"} <= set(args.backends):
        print(f"\ndocker/local: up-to-ready x{ready['docker'] / ready['local']:.2f}")
        for name in args.experiments:
            print(f"docker/local: {name} wall time x{walls['docker'][name] / walls['local'][name]:.2f}")


if __name__ == "__main__":
    main()
