"""Benchmark figures for the Redis stand-in (prints figures; not a timed test).

    make bench   # or: .venv/bin/python benchmarks/bench_redis.py
        [--trials 3] [--ready-trials 20] [--backends local docker]

Figures per backend: topology up-to-ready, topology memory (PSS of all servers), each experiment's
wall time, measured RTO vs down-after, the longest gap between recorded ops in steady state; and
docker/local ratios. Targets (2 cores): RTO <= down-after + 1.5 s; <= 10 ms between ops.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import bench_ready

from chaoskit.experiment import list_experiments, load
from chaoskit.runner import run


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
    p.add_argument("--ready-trials", type=int, default=20, help="starts measured for the up-to-ready spread")
    p.add_argument("--experiments", nargs="*", default=[e.name for e in list_experiments() if e.system == "redis"])
    p.add_argument("--backends", nargs="*", default=["local"], choices=["local", "docker"])
    args = p.parse_args()
    ready: dict[str, float] = {}
    walls: dict[str, dict[str, float]] = {}
    for backend in args.backends:
        ready[backend] = bench_ready("redis", "redis-primary-kill", backend, args.ready_trials, "3 redis + 3 sentinels")
        walls[backend] = bench_experiments(backend, args.experiments, 1 if args.trials < 3 else args.trials)
    if {"local", "docker"} <= set(args.backends):
        print(f"\ndocker/local: up-to-ready x{ready['docker'] / ready['local']:.2f}")
        for name in args.experiments:
            print(f"docker/local: {name} wall time x{walls['docker'][name] / walls['local'][name]:.2f}")


if __name__ == "__main__":
    main()
