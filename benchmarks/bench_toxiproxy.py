"""Benchmark figures for Toxiproxy on the client path (prints figures; not a timed test).

    .venv/bin/python benchmarks/bench_toxiproxy.py [--ops 2000] [--trials 3]

A Redis topology on the local backend with a proxy in front of each redis node: per-op latency of a
GET on one open connection, direct and through the proxy (p50/p99), and the ops/s of that loop; the
latency a toxic adds against what it was configured to add (10, 50, 200 ms); the proxy's start-up time
(process start to its API answering) and memory (RSS).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import redis

from chaoskit import toxiproxy
from chaoskit.backends.local import LocalBackend
from chaoskit.catalog import parse
from chaoskit.systems.redis.topology import RedisTopology
from chaoskit.toxics import Latency


def _ms(client: redis.Redis, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.get("k")
        out.append((time.perf_counter() - t) * 1000)
    return sorted(out)


def _fmt(values: list[float]) -> str:
    ops_s = 1000 * len(values) / sum(values)
    return (f"p50 {statistics.median(values):.3f} ms, p99 {values[int(0.99 * (len(values) - 1))]:.3f} ms, "
            f"{ops_s:,.0f} ops/s")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--ops", type=int, default=2000)
    p.add_argument("--trials", type=int, default=3)
    args = p.parse_args()
    exp = parse({"name": "bench", "system": "redis", "purpose": "-", "hypothesis": "-",
                 "topology": {"down_after_ms": 60000}, "client": {"pattern": "sentinel-no-retry"},
                 "expect": [{"metric": "lost_writes"}]}, "bench")
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
    backend = LocalBackend(run_id, str(workdir))
    server = toxiproxy.LocalToxiproxy(backend, toxiproxy.server_binary())
    try:
        topo = RedisTopology(exp, backend, workdir)
        topo.up(print)
        topo.wait_ready(60)
        t = time.monotonic()
        path = server.start()
        print(f"toxiproxy start-up (process to API answering): {(time.monotonic() - t) * 1000:.0f} ms")
        topo.route_clients(path)
        primary = topo.resolve("primary")[0]
        direct = redis.Redis(*primary.client_addr)
        proxied = redis.Redis(*topo.client_addr_of((primary.address, primary.port)))
        for trial in range(1, args.trials + 1):
            print(f"trial {trial}: direct {_fmt(_ms(direct, args.ops))}; "
                  f"through the proxy {_fmt(_ms(proxied, args.ops))}")
        base = statistics.median(_ms(proxied, 200))
        for configured in (10, 50, 100, 200):
            applied = Latency(latency_ms=configured).apply(topo, backend)
            slowed = _ms(proxied, 20)
            applied.heal()
            added = statistics.median(slowed) - base
            print(f"{configured} ms latency toxic on the open connection: {min(slowed):.1f}-{max(slowed):.1f} ms "
                  f"per GET, median added {added:.1f} ms ({added - configured:+.1f} ms off the configured)")
        print(f"healed: {_fmt(_ms(proxied, 200))}")
        assert server.proc is not None
        rss = next(line for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS"))
        print(f"toxiproxy-server {rss.split(':')[1].strip()} RSS with {len(path.routes)} proxies")
    finally:
        server.stop()
        backend.teardown()


if __name__ == "__main__":
    main()
