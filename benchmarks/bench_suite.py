"""Benchmark: a system's experiments one after another and side by side (prints figures; not a timed test).

    .venv/bin/python benchmarks/bench_suite.py [--systems redis postgres mongo] [--backend local]
        [--jobs 1 auto]

For each system and each -j: the wall time of `chaoskit run --system S -j N`, the verdicts, and per
experiment the figures timing could move when runs share the CPU: RTO, unavailable seconds and the
longest gap between recorded ops (the hypotheses must hold at the default -j as they do at -j 1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_suite(system: str, backend: str, jobs: str, out: Path) -> tuple[float, int]:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "chaoskit.cli", "run", "--system", system, "--backend", backend,
                          "-j", jobs, "--out", str(out)], capture_output=True, text=True, check=False)
    return time.monotonic() - t0, res.returncode


def figures(out: Path) -> dict[str, dict[str, object]]:
    found = {}
    for journal in sorted(out.glob("*/journal.json")):
        j = json.loads(journal.read_text())
        m = j.get("metrics", {})
        failed = [f"{c['name']} ({c.get('observed')})" for c in j.get("checks", []) if c.get("valid") is not True]
        found[j["experiment"]] = {"verdict": j.get("verdict"), "failed": ", ".join(failed), "rto_s": m.get("rto_s"),
                                  "unavailable_s": m.get("unavailable_s"), "max_op_gap_ms": m.get("max_op_gap_ms")}
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--systems", nargs="*", default=["redis", "postgres", "mongo"])
    p.add_argument("--backend", default="local", choices=["local", "docker"])
    p.add_argument("--jobs", nargs="*", default=["1", "auto"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaoskit-bench-suite.") as tmp:
        for system in args.systems:
            by_jobs = {}
            for jobs in args.jobs:
                out = Path(tmp) / f"{system}-j{jobs}"
                wall, code = run_suite(system, args.backend, jobs, out)
                by_jobs[jobs] = figures(out)
                passed = sum(f["verdict"] == "pass" for f in by_jobs[jobs].values())
                print(f"[{args.backend}] {system} -j {jobs}: {wall:.0f} s wall, {passed}/{len(by_jobs[jobs])} PASS "
                      f"(exit {code})", flush=True)
            print(f"  {'experiment':34} " + "  ".join(f"{'-j ' + j + ' rto/unavail/gap':>28}" for j in args.jobs))
            for name in sorted(set().union(*by_jobs.values())):
                cells = []
                for jobs in args.jobs:
                    f = by_jobs[jobs].get(name, {})
                    cells.append(f"{f.get('rto_s')!s:>8} {f.get('unavailable_s')!s:>8} {f.get('max_op_gap_ms')!s:>8}ms")
                bad = "; ".join(f"-j {j}: {by_jobs[j][name]['failed']}" for j in args.jobs
                                if by_jobs[j].get(name, {}).get("failed"))
                print(f"  {name:34} " + "  ".join(f"{c:>28}" for c in cells) + (f"  NOT HELD {bad}" if bad else ""),
                      flush=True)


if __name__ == "__main__":
    main()
