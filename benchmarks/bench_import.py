"""Figures of the light install (prints figures; not a timed test).

    .venv/bin/python benchmarks/bench_import.py [--runs 30] [--sessions 40] [--baseline REF]

Builds the wheel of this checkout and installs it into fresh venvs (pip's cache): the core alone,
``chaoskit[redis]``, ``[all]`` and ``[all,mongo-local]``; prints what each adds to a bare venv's
site-packages. In the ``[all]`` venv (every driver installed, so an import of one would show), each
measured in fresh interpreters, the median of ``--runs``:

- ``import chaoskit`` and ``from chaoskit import cluster, Kill, Partition`` (time in the interpreter), and the
  driver modules each imported;
- the pytest plugin's cost per session: a trivial test session run ``--sessions`` times with the plugin and
  as many times with ``-p no:chaoskit``, interleaved (wall time of the whole session, the difference of the
  medians), and the import of the package and the plugin, with all they import, in an interpreter that has
  imported pytest already, as a session has (the part of that difference that is chaoskit's, without the
  session's noise; pytest's entry point hides it from ``-X importtime``).

``--baseline REF`` measures the same in a venv built from the wheel of git REF (e.g. the commit before the
light install), for a before/after on the same machine at the same time. ``--backends`` (from ``make
bench-import``) is accepted and ignored: nothing here runs a backend.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ("redis", "psycopg", "psycopg_binary", "pymongo", "bson", "dns", "cassandra", "pymemcache", "opensearchpy")
INSTALLS = ("", "[redis]", "[all]", "[all,mongo-local]")
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".*_cache")


def _run(args: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    res = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))}: exit {res.returncode}\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return res


def build_wheel(source: Path, out: Path) -> Path:
    """The wheel of ``source`` (a copy of a checkout), built into ``out``."""
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", out, source], out.parent, 300)
    (wheel,) = out.glob("chaoskit-*.whl")
    return wheel


def site_mb(venv: Path) -> float:
    """The size of the venv's site-packages, in MB (files as installed, byte code included)."""
    (site,) = (venv / "lib").glob("python3*/site-packages")
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def make_venv(venv: Path, requirement: str | None) -> float:
    """A fresh venv with ``requirement`` installed; returns how long pip took (s)."""
    _run([sys.executable, "-m", "venv", venv], venv.parent, 120)
    if requirement is None:
        return 0.0
    t = time.monotonic()
    _run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", requirement], venv.parent, 900)
    return time.monotonic() - t


def timed(python: Path, statement: str, runs: int, cwd: Path, setup: str = "pass") -> tuple[list[float], list[str]]:
    """``statement``'s time (ms) in ``runs`` fresh interpreters (after ``setup``, untimed), and the driver
    modules it imported."""
    code = textwrap.dedent(f"""
        import json, sys, time
        {setup}
        t = time.perf_counter()
        {statement}
        ms = (time.perf_counter() - t) * 1000
        print(json.dumps([ms, sorted({{m.split('.')[0] for m in sys.modules}} & {set(DRIVERS)!r})]))
        """)
    times, drivers = [], set()
    for _ in range(runs):
        ms, loaded = json.loads(_run([python, "-c", code], cwd).stdout)
        times.append(ms)
        drivers |= set(loaded)
    return times, sorted(drivers)


def _session_dir(tmp: Path) -> Path:
    """A project of its own with one trivial test: chaoskit is merely installed in its venv."""
    d = tmp / "project"
    d.mkdir(exist_ok=True)
    (d / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -q\n")
    (d / "test_trivial.py").write_text("def test_nothing():\n    assert True\n")
    return d


def plugin_cost(python: Path, sessions: int, tmp: Path) -> dict[str, float]:
    """Session wall times with and without the plugin (interleaved, medians, ms) and their interquartile range."""
    d = _session_dir(tmp)
    with_plugin, without = [], []
    for _ in range(sessions):
        for extra, into in (([], with_plugin), (["-p", "no:chaoskit"], without)):
            t = time.perf_counter()
            _run([python, "-m", "pytest", *extra, "test_trivial.py"], d)
            into.append((time.perf_counter() - t) * 1000)
    return {"with": statistics.median(with_plugin), "without": statistics.median(without),
            "with_min": min(with_plugin), "without_min": min(without),
            "spread": statistics.quantiles(with_plugin + without, n=4)[2] - statistics.quantiles(
                with_plugin + without, n=4)[0]}


def imports(python: Path, runs: int, sessions: int, tmp: Path, label: str) -> None:
    """Print the import figures of the chaoskit installed for ``python``."""
    cwd = _session_dir(tmp)
    print(f"\n{label}")
    for statement in ("import chaoskit", "from chaoskit import cluster, Kill, Partition", "import chaoskit.cli"):
        times, drivers = timed(python, statement, runs, cwd)
        print(f"  {statement:<48} median {statistics.median(times):6.1f} ms (min {min(times):.1f}, max "
              f"{max(times):.1f}, {runs} interpreters); drivers imported: {', '.join(drivers) or 'none'}")
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "pytest"], cwd, 300)  # a user's
    cost = plugin_cost(python, sessions, tmp)
    print(f"  pytest session, trivial test: {cost['with']:.0f} ms with the plugin, {cost['without']:.0f} ms with "
          f"-p no:chaoskit (medians of {sessions} each, interleaved; interquartile range of all "
          f"{cost['spread']:.0f} ms): the plugin costs {cost['with'] - cost['without']:+.0f} ms (fastest sessions: "
          f"{cost['with_min']:.0f} and {cost['without_min']:.0f} ms, {cost['with_min'] - cost['without_min']:+.0f} ms)")
    own, drivers = timed(python, "import chaoskit.pytest_plugin", runs, cwd, setup="import pytest")
    print(f"  import chaoskit.pytest_plugin after import pytest (the package and the plugin, with all they "
          f"import, as a session loads them): median {statistics.median(own):.1f} ms; drivers imported: "
          f"{', '.join(drivers) or 'none'}")


def sizes(wheel: Path, tmp: Path) -> Path:
    """Print what each install adds to a bare venv; returns the ``[all]`` venv."""
    make_venv(tmp / "bare", None)
    bare = site_mb(tmp / "bare")
    print(f"\ninstalled size beyond a bare venv's site-packages ({bare:.1f} MB: pip, setuptools), fresh venvs, "
          "pip's cache warm")
    for extras in INSTALLS:
        venv = tmp / f"venv{extras.replace(',', '-')}"
        took = make_venv(venv, f"{wheel}{extras}")
        print(f"  chaoskit{extras:<20} {site_mb(venv) - bare:7.1f} MB  (pip install {took:.0f} s)")
    return tmp / "venv[all]"


def baseline(ref: str, tmp: Path, runs: int, sessions: int) -> None:
    """The same import figures for the wheel of git ``ref`` (its dependencies: all of them then)."""
    src = tmp / "baseline-src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    (tmp / "baseline-dist").mkdir()
    wheel = build_wheel(src, tmp / "baseline-dist")
    venv = tmp / "baseline-venv"
    make_venv(venv, str(wheel))
    imports(venv / "bin" / "python", runs, sessions, tmp, f"baseline: the wheel of {ref} (every driver a dependency; "
            f"installed size beyond a bare venv: {site_mb(venv) - site_mb(tmp / 'bare'):.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="fresh interpreters per import figure")
    parser.add_argument("--sessions", type=int, default=40, help="pytest sessions with and without the plugin each")
    parser.add_argument("--baseline", metavar="REF", help="also measure the wheel of this git ref")
    parser.add_argument("--backends", nargs="*", help=argparse.SUPPRESS)  # make bench-%: nothing to run on
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the temporary venvs are removed then too
    tmp = Path(tempfile.mkdtemp(prefix="chaoskit-bench-import-"))
    try:
        (tmp / "dist").mkdir()
        source = tmp / "source"
        shutil.copytree(ROOT, source, ignore=IGNORE)
        t = time.monotonic()
        wheel = build_wheel(source, tmp / "dist")
        print(f"wheel: {wheel.name} ({wheel.stat().st_size / 1e3:.0f} kB, built in {time.monotonic() - t:.1f} s)")
        every = sizes(wheel, tmp)
        imports(every / "bin" / "python", args.runs, args.sessions, tmp,
                "this checkout, installed as chaoskit[all] (every driver there to be imported)")
        if args.baseline:
            baseline(args.baseline, tmp, args.runs, args.sessions)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
