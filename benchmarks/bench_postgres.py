"""Benchmark figures for the Postgres stand-in (prints figures; not a timed test).

    make bench-postgres   # or: .venv/bin/python benchmarks/bench_postgres.py
        [--trials 3] [--ready-trials 10] [--backends local docker]

Figures per backend: topology up-to-ready and memory (PSS of every process of the 3 Patroni/Postgres
+ 3 etcd nodes, so shared buffers are not counted three times); the RTO of postgres-primary-kill for
several Patroni ttl values (Patroni promotes once the dead leader's lock expires, so RTO should
follow ttl); and steady-state write latency with asynchronous vs synchronous replication (the price
of "0 lost commits").
"""

from __future__ import annotations

import argparse

from common import bench_ready, bench_rto_sweep, fmt, run_once, variant


def bench_sync_vs_async(backend_name: str, trials: int) -> None:
    print(f"\n[{backend_name}] write latency over 10 s of steady state (2 writers, 50 ops/s each), then lost "
          "commits after the kill")
    print(f"[{backend_name}] {'replication':12} {'p50 ms':>16} {'p99 ms':>16} {'lost/acked':>12}")
    for sync in (False, True):
        exp = variant("postgres-primary-kill", steady_s=10, synchronous=sync)
        runs = [run_once(exp, backend_name) for _ in range(trials)]
        lost = sum(int(r["lost"] or 0) for r in runs)
        acked = sum(int(r["acked"] or 0) for r in runs)
        print(f"[{backend_name}] {'synchronous' if sync else 'asynchronous':12} {fmt([r['p50'] for r in runs]):>16} "
              f"{fmt([r['p99'] for r in runs]):>16} {f'{lost}/{acked}':>12}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--ready-trials", type=int, default=10, help="starts measured for the up-to-ready spread")
    p.add_argument("--ttls", type=int, nargs="*", default=[10, 15, 20])
    p.add_argument("--backends", nargs="*", default=["local"], choices=["local", "docker"])
    args = p.parse_args()
    for backend in args.backends:
        bench_ready("postgres", "postgres-primary-kill", backend, args.ready_trials, "3 Patroni/Postgres + 3 etcd")
        bench_rto_sweep(backend, "postgres-primary-kill (synchronous standby): RTO vs Patroni ttl", "ttl s",
                        [float(t) for t in args.ttls],
                        lambda ttl: variant("postgres-primary-kill", ttl=int(ttl), fault_s=max(15.0, ttl + 8),
                                            rto_max=ttl + 5),
                        max(1, args.trials // 2))
        bench_sync_vs_async(backend, max(1, args.trials // 2))


if __name__ == "__main__":
    main()
