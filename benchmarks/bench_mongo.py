"""Benchmark figures for the MongoDB stand-in (prints figures; not a timed test).

    make bench-mongo   # or: .venv/bin/python benchmarks/bench_mongo.py
        [--trials 3] [--ready-trials 10] [--backends local docker]

Figures per backend: replica set up-to-ready (start, initiate, first election) and memory (PSS of the
three mongod); the RTO of mongo-primary-kill, and when the new primary was elected, for several
electionTimeoutMillis values (the secondaries call an election once the primary has been silent
that long, so both should follow it); the write pause of a planned replSetStepDown.
"""

from __future__ import annotations

import argparse

from common import bench_ready, bench_rto_sweep, fmt, run_once, variant


def bench_stepdown(backend_name: str, trials: int) -> None:
    runs = [run_once(variant("mongo-stepdown"), backend_name) for _ in range(trials)]
    print(f"\n[{backend_name}] mongo-stepdown: write pause {fmt([r['rto'] for r in runs])} s, "
          f"{sum(int(r['pass'] or 0) for r in runs)}/{trials} pass (0 client errors expected)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--ready-trials", type=int, default=10, help="starts measured for the up-to-ready spread")
    p.add_argument("--election-timeouts-ms", type=int, nargs="*", default=[1000, 2000, 5000])
    p.add_argument("--backends", nargs="*", default=["local"], choices=["local", "docker"])
    args = p.parse_args()
    for backend in args.backends:
        bench_ready("mongo", "mongo-primary-kill", backend, args.ready_trials, "3 mongod")
        bench_rto_sweep(backend, "mongo-primary-kill: RTO vs electionTimeoutMillis (catch-up timeout 2 s)",
                        "timeout s", [ms / 1000 for ms in args.election_timeouts_ms],
                        lambda t: variant("mongo-primary-kill", election_timeout_ms=int(t * 1000),
                                          fault_s=max(8.0, t + 6), rto_max=t + 4),
                        max(1, args.trials // 2))
        bench_stepdown(backend, max(1, args.trials // 2))


if __name__ == "__main__":
    main()
