"""Benchmark figures for the OpenSearch cluster (prints figures; not a timed test), on either backend.

    .venv/bin/python benchmarks/bench_opensearch.py [--trials 3] [--backends local docker]

(docker: run with the image variables of `chaoskit images --env`, as `make bench-opensearch` does.)

Per trial: start to green (every node answers HTTP, one cluster of three, the index created, green), memory
(RSS and PSS of the three JVMs); then the node holding the most primaries is SIGKILLed and the time until the
manager's view is yellow (the topology's ``health-yellow`` event) is measured; it is restarted and the time
until green is measured; then the elected cluster manager is SIGKILLed and the time until another is agreed
(``cluster-manager-elected``) is measured.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import _children, tree_pss_mb

from chaoskit.backends import make_backend
from chaoskit.experiment import load
from chaoskit.systems import get_system
from chaoskit.systems.base import Event


def _rss_mb(pid: int | None) -> float:
    """RSS of a node: its process tree (local: runuser, then the JVM as nobody; docker: the container's
    first process, which is the JVM)."""
    if pid is None:
        return 0.0
    total = 0.0
    for p in [pid, *_children().get(pid, [])]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def _wait(kind: str, events: list[Event], after: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hit = [e.time for e in events if e.kind == kind and e.time >= after]
        if hit:
            return min(hit) - after
        time.sleep(0.05)
    return None


def trial(backend_name: str) -> dict[str, float | None]:
    exp = load("opensearch-primary-holder-kill")
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
    backend = make_backend(backend_name, run_id, str(workdir))
    out: dict[str, float | None] = {}
    try:
        t = time.monotonic()
        topo = get_system("opensearch").topology(exp, backend, workdir)
        topo.up(lambda _msg: None)
        topo.wait_ready(180)
        out["green_s"] = time.monotonic() - t
        tree = _children()
        out["rss_mb"] = max(_rss_mb(n.pid) for n in topo.nodes.values())
        out["pss_mb"] = sum(tree_pss_mb(n.pid, tree) for n in topo.nodes.values()) / len(topo.nodes)
        events: list[Event] = []
        lock = threading.Lock()

        def sink(e: Event) -> None:
            with lock:
                events.append(e)

        stop = topo.watch(sink, time.monotonic)
        time.sleep(2)
        (victim,) = topo.resolve("primary-holder")
        killed = time.monotonic()
        backend.kill(victim)
        out["kill_to_yellow_s"] = _wait("health-yellow", events, killed, 60)
        time.sleep(2)
        restarted = time.monotonic()
        topo.restart(victim)
        out["restart_to_green_s"] = _wait("health-green", events, restarted, 180)
        topo.wait_settled(120)
        time.sleep(1)
        (manager,) = topo.resolve("cluster-manager")
        killed = time.monotonic()
        backend.kill(manager)
        out["manager_reelected_s"] = _wait("cluster-manager-elected", events, killed, 60)
        stop()
    finally:
        backend.teardown()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--backends", nargs="+", choices=("local", "docker"), default=["local"])
    args = p.parse_args()
    for name in args.backends:
        runs = [trial(name) for _ in range(args.trials)]
        for r in runs:
            print(f"{name}: " + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} n/a" for k, v in r.items()),
                  flush=True)
        for key in runs[0]:
            vals = sorted(v for r in runs if (v := r.get(key)) is not None)
            if vals:
                print(f"  {key}: min {vals[0]:.2f}, median {statistics.median(vals):.2f}, max {vals[-1]:.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
