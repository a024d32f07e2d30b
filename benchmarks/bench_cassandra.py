"""Benchmark figures for the Cassandra ring (prints figures; not a timed test), on either backend.

    .venv/bin/python benchmarks/bench_cassandra.py [--trials 2] [--phi 8 5] [--backends local docker]

(docker: run with the image variables of `chaoskit images --env`, as `make bench-cassandra BACKEND=docker` does.)

Per trial: ring up-to-ready (seed first, then the other two together -- or one after another),
memory (PSS and RSS of the three JVMs); then one node is SIGKILLed and the time until another node's
failure detector convicts it is measured (a read at ALL through each survivor answers Unavailable, the
topology's ``replica-down`` event), for each ``phi_convict_threshold``; then it is restarted and the time
until it answers CQL, and until every node runs a read at ALL again, is measured.

``--handoff N``: instead, N runs of ``cassandra-hinted-handoff`` (a 10 s cut of one replica under
QUORUM writes): how long after heal its own copy had every value (``caught_up_s``), min/median/max.
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
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def trial(phi: float, parallel: bool, ready_only: bool = False, backend_name: str = "local") -> dict[str, float | None]:
    exp = load("cassandra-node-kill")
    exp = exp.model_copy(update={"topology": {**exp.topology, "phi_convict_threshold": phi,
                                              "parallel_start": parallel}})
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
    backend = make_backend(backend_name, run_id, str(workdir))
    out: dict[str, float | None] = {}
    try:
        t = time.monotonic()
        topo = get_system("cassandra").topology(exp, backend, workdir)
        topo.up(lambda _msg: None)
        topo.wait_ready(120)
        out["ready_s"] = time.monotonic() - t
        tree = _children()
        out["pss_mb"] = sum(tree_pss_mb(n.pid, tree) for n in topo.nodes.values()) / len(topo.nodes)
        out["rss_mb"] = max(_rss_mb(n.pid) for n in topo.nodes.values())
        if ready_only:
            return out
        events: list[Event] = []
        seen = threading.Event()

        def sink(e: Event) -> None:
            events.append(e)
            if e.kind == "replica-down":
                seen.set()

        stop = topo.watch(sink, time.monotonic)
        time.sleep(2)
        victim = topo.nodes["cassandra-3"]
        killed = time.monotonic()
        backend.kill(victim)
        seen.wait(60)
        stop()
        down = [e.time for e in events if e.kind == "replica-down"]
        out["detect_s"] = min(down) - killed if down else None
        restarted = time.monotonic()
        topo.restart(victim)
        topo._wait_cql("cassandra-3", 90)  # noqa: SLF001 -- the topology's own readiness probe
        out["restart_cql_s"] = time.monotonic() - restarted
        out["restart_all_s"] = (time.monotonic() - restarted) if topo.wait_settled(90) else None
    finally:
        backend.teardown()
    return out


def handoff(trials: int, backend_name: str = "local") -> None:
    from chaoskit.runner import run

    took = []
    for i in range(trials):
        with tempfile.TemporaryDirectory(prefix="bench-handoff-") as out:
            result = run(load("cassandra-hinted-handoff"), backend_name, Path(out) / "run", progress=lambda _m: None)
            m = result.journal["metrics"]
            print(f"trial {i + 1}: {result.verdict.value}, caught_up_s {m['caught_up_s']}, "
                  f"behind_at_end {m['behind_at_end']}, acked {m['acked_writes']}", flush=True)
            if m["caught_up_s"] is not None:
                took.append(float(m["caught_up_s"]))
    if took:
        print(f"  -> caught up after heal: min {min(took):.1f} s, median {statistics.median(took):.1f} s, "
              f"max {max(took):.1f} s ({len(took)} of {trials})", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--phi", type=float, nargs="*", default=[8.0, 5.0])
    p.add_argument("--ready-only", action="store_true", help="only start the ring (no kill, detection, restart)")
    p.add_argument("--handoff", type=int, default=0, metavar="N", help="N runs of cassandra-hinted-handoff instead")
    p.add_argument("--backends", nargs="+", choices=("local", "docker"), default=["local"])
    args = p.parse_args()
    for backend in args.backends:
        if args.handoff:
            print(f"== {backend}", flush=True)
            handoff(args.handoff, backend)
            continue
        for parallel in (True, False):
            for phi in args.phi:
                _print_trials(backend, phi, parallel, [trial(phi, parallel, args.ready_only, backend)
                                                        for _ in range(args.trials)])


def _print_trials(backend: str, phi: float, parallel: bool, runs: list[dict[str, float | None]]) -> None:
    for r in runs:
        print(f"{backend} parallel_start={parallel} phi={phi:g}: " + ", ".join(
            f"{k} {v:.1f}" if v is not None else f"{k} n/a" for k, v in r.items()), flush=True)
    ready = [r["ready_s"] for r in runs if r["ready_s"] is not None]
    print(f"  -> ready median {statistics.median(ready):.1f} s", flush=True)


if __name__ == "__main__":
    main()
