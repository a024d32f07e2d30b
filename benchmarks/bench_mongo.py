"""Benchmark figures for the MongoDB stand-in (prints figures; not a timed test).

    make bench-mongo   # or: .venv/bin/python benchmarks/bench_mongo.py [--trials 3] [--backends local docker]

Figures per backend: replica set up-to-ready (start, initiate, first election) and memory (PSS of the
three mongod); the RTO of mongo-primary-kill, and when the new primary was elected, for several
electionTimeoutMillis values (the secondaries call an election once the primary has been silent
that long, so both should follow it); the write pause of a planned replSetStepDown.
"""

from __future__ import annotations

import argparse
import statistics

from common import bench_ready, fmt, run_once, variant


def bench_election(backend_name: str, timeouts_ms: list[int], trials: int) -> None:
    print(f"\n[{backend_name}] mongo-primary-kill: RTO vs electionTimeoutMillis (catch-up timeout 2 s)")
    print(f"[{backend_name}] {'timeout s':>9} {'RTO s (median, range)':>24} {'RTO - timeout':>13} {'lost':>5} verdicts")
    for ms in timeouts_ms:
        timeout = ms / 1000
        exp = variant("mongo-primary-kill", election_timeout_ms=ms, fault_s=max(8.0, timeout + 6),
                      rto_max=timeout + 4)
        runs = [run_once(exp, backend_name) for _ in range(trials)]
        rtos = [r["rto"] for r in runs]
        got = [r for r in rtos if r is not None]
        over = f"{statistics.median(got) - timeout:+.2f}" if got else "-"
        print(f"[{backend_name}] {timeout:9.1f} {fmt(rtos):>24} {over:>13} {sum(int(r['lost'] or 0) for r in runs):5d} "
              f"{sum(int(r['pass'] or 0) for r in runs)}/{trials} pass", flush=True)


def bench_stepdown(backend_name: str, trials: int) -> None:
    runs = [run_once(variant("mongo-stepdown"), backend_name) for _ in range(trials)]
    print(f"\n[{backend_name}] mongo-stepdown: write pause {fmt([r['rto'] for r in runs])} s, "
          f"{sum(int(r['pass'] or 0) for r in runs)}/{trials} pass (0 client errors expected)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--election-timeouts-ms", type=int, nargs="*", default=[1000, 2000, 5000])
    p.add_argument("--backends", nargs="*", default=["local"], choices=["local", "docker"])
    args = p.parse_args()
    for backend in args.backends:
        bench_ready("mongo", "mongo-primary-kill", backend, args.trials, "3 mongod")
        bench_election(backend, args.election_timeouts_ms, max(1, args.trials // 2))
        bench_stepdown(backend, max(1, args.trials // 2))


if __name__ == "__main__":
    main()
