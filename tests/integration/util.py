"""Helpers shared by the integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHAOSKIT = [sys.executable, "-m", "chaoskit.cli"]


def created_runs(state_dir: Path) -> set[str]:
    """Run ids ledgered under ``state_dir`` (the ledger keeps a line per run after the run is gone)."""
    log = state_dir / "runs" / "created.log"
    return {line.split()[0] for line in log.read_text().splitlines() if line.strip()} if log.exists() else set()


def netns_names(state_dir: Path | None = None) -> set[str]:
    """Network namespaces (with ``state_dir``: only those of runs ledgered there)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    if state_dir is None:
        return names
    runs = created_runs(state_dir)
    return {n for n in names if n.count("-") >= 2 and n.split("-")[1] in runs and n.startswith("ck-")}


SERVERS = ("redis-server", "redis-sentinel", "postgres", "patroni", "etcd", "haproxy", "mongod", "java",
           "toxiproxy-serve", "memcached", "dnsmasq")  # comm is cut to 15 characters: toxiproxy-server


def _started_under(pid: int, runs: set[str]) -> bool:
    """Started by one of ``runs``: its working directory is in that run's work directory (``chaoskit-RUN_ID``
    under the temp dir, where every node runs; redis-server rewrites its environment, but keeps its cwd)."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    tmp = tempfile.gettempdir()
    return any(cwd.startswith(f"{tmp}/chaoskit-{run}/") or cwd == f"{tmp}/chaoskit-{run}" for run in runs)


def server_pids(state_dir: Path | None = None) -> set[int]:
    """Live server processes of every system (zombies awaiting their reaper are not running); with
    ``state_dir``, only those of the runs ledgered there -- not other tests' on a shared machine."""
    out = subprocess.run(["ps", "-eo", "pid=,stat=,comm="], capture_output=True, text=True).stdout
    pids = set()
    for line in out.splitlines():
        pid, stat, comm = line.split(None, 2)
        if comm.strip() in SERVERS and not stat.startswith("Z"):
            pids.add(int(pid))
    if state_dir is None:
        return pids
    runs = created_runs(state_dir)
    return {p for p in pids if _started_under(p, runs)}


def cli_env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "CHAOSKIT_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


def _labelled(kind: str, state_dir: Path | None) -> set[str]:
    fmt = "{{.Names}}" if kind == "ps" else "{{.Name}}"
    args = ["docker", kind, "-a"] if kind == "ps" else ["docker", "network", "ls"]
    runs = created_runs(state_dir) if state_dir is not None else None
    out = subprocess.run([*args, "--filter", "label=io.chaoskit.run", "--format", fmt + " {{.Labels}}"],
                         capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        name, _, labels = line.partition(" ")
        run = dict(kv.split("=", 1) for kv in labels.split(",") if "=" in kv).get("io.chaoskit.run")
        if runs is None or run in runs:
            names.add(name)
    return names


def chaoskit_containers(state_dir: Path | None = None) -> set[str]:
    """chaoskit's containers (with ``state_dir``: only those of runs ledgered there)."""
    return _labelled("ps", state_dir)


def chaoskit_networks(state_dir: Path | None = None) -> set[str]:
    """chaoskit's networks (with ``state_dir``: only those of runs ledgered there)."""
    return _labelled("network", state_dir)


def start_run(state_dir: Path, out: Path, experiment: str = "redis-primary-partition",
              backend: str = "local") -> subprocess.Popen[str]:
    """`chaoskit run EXPERIMENT` on the local backend (or ``backend``) in a child process, its output piped."""
    return subprocess.Popen([*CHAOSKIT, "run", experiment, "--backend", backend, "--out", str(out)],
                            env=cli_env(state_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 90) -> list[str]:
    """The child's lines up to the first holding ``needle``; kills it and fails when it never comes."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"never saw {needle!r}; output:\n{''.join(lines)}\n{err}")


def run_ids(state_dir: Path) -> list[str]:
    """The runs still ledgered in ``state_dir``."""
    return [p.stem for p in (state_dir / "runs").glob("*.json")]


@contextmanager
def runner_killed_at(state_dir: Path, out: Path, experiment: str, needle: str = "steady state",
                     timeout: float = 90, backend: str = "local") -> Iterator[str]:
    """`chaoskit run EXPERIMENT` SIGKILLed once it prints ``needle``: yields the run's id, its servers left
    running. Afterwards the process is reaped and, if the test left the run ledgered, cleaned up."""
    proc = start_run(state_dir, out, experiment, backend)
    try:
        wait_for_line(proc, needle, timeout)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        (run_id,) = run_ids(state_dir)
        yield run_id
    finally:
        proc.kill()
        proc.wait(10)
        if run_ids(state_dir):
            subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, timeout=60)


def cleanup_cli(state_dir: Path) -> str:
    """`chaoskit cleanup` for ``state_dir``'s runs; asserts exit 0 and returns what it printed."""
    res = subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def completed_ops(run_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(invoke, completion) of every workload op of a run, in completion order (from history.jsonl)."""
    pending: dict[int, dict[str, Any]] = {}
    out = []
    for op in (json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()):
        if op["type"] == "invoke":
            pending[op["process"]] = op
        elif op["f"] in ("write", "read") and op["process"] in pending:
            out.append((pending.pop(op["process"]), op))
    return out
