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


def server_pids() -> set[int]:
    """Live server processes of every system (zombies awaiting their reaper are not running)."""
    out = subprocess.run(["ps", "-eo", "pid=,stat=,comm="], capture_output=True, text=True).stdout
    pids = set()
    for line in out.splitlines():
        pid, stat, comm = line.split(None, 2)
        if comm.strip() in SERVERS and not stat.startswith("Z"):
            pids.add(int(pid))
    return pids


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
