"""Helpers shared by the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHAOSKIT = [sys.executable, "-m", "chaoskit.cli"]


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


SERVERS = ("redis-server", "redis-sentinel", "postgres", "patroni", "etcd", "haproxy", "mongod")


def _started_for(pid: int, state_dir: Path) -> bool:
    """The process inherited ``CHAOSKIT_STATE_DIR=state_dir``: a runner of that test started it."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"CHAOSKIT_STATE_DIR={state_dir}".encode() in environ


def server_pids(state_dir: Path | None = None) -> set[int]:
    """Live server processes of every system (zombies awaiting their reaper are not running); with
    ``state_dir``, only those started by runs using it -- not other tests' on a shared machine."""
    out = subprocess.run(["ps", "-eo", "pid=,stat=,comm="], capture_output=True, text=True).stdout
    pids = set()
    for line in out.splitlines():
        pid, stat, comm = line.split(None, 2)
        if comm.strip() in SERVERS and not stat.startswith("Z"):
            pids.add(int(pid))
    return pids if state_dir is None else {p for p in pids if _started_for(p, state_dir)}


def cli_env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "CHAOSKIT_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


def chaoskit_containers() -> set[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", "label=io.chaoskit.run", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def chaoskit_networks() -> set[str]:
    out = subprocess.run(["docker", "network", "ls", "--filter", "label=io.chaoskit.run", "--format", "{{.Name}}"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())
