"""Faults on a running lab, through the real CLI: `up` in one process, `fault`, `status`, `heal` and `down`
each in another, re-attaching to the lab from its record."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.util import CHAOSKIT, chaoskit_containers, cli_env, netns_names, server_pids

pytestmark = pytest.mark.integration

PROBE = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5)"


class Lab:
    """The CLI against one state directory; `cleanup` at the end whatever happened."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.run_id = ""

    def __call__(self, *args: str, ok: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*CHAOSKIT, *args], env=cli_env(self.state_dir), capture_output=True, text=True,
                             timeout=timeout)
        if ok:
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res

    def up(self, system: str, backend: str, *settings: str) -> str:
        res = self("up", system, "--backend", backend, *(arg for s in settings for arg in ("--set", s)))
        match = re.search(r"is up \(run (\w+)\)", res.stdout)
        assert match, res.stdout
        self.run_id = match.group(1)
        return self.run_id

    def record(self) -> dict[str, Any]:
        lab: dict[str, Any] = json.loads((self.state_dir / "runs" / f"{self.run_id}.json").read_text())["lab"]
        return lab

    def enter(self, name: str) -> list[str]:
        """Command prefix running a host program inside node ``name``'s network namespace."""
        if self.record()["backend"] == "local":
            return ["ip", "netns", "exec", f"ck-{self.run_id}-{name}"]
        import docker

        container = docker.from_env().containers.get(f"ck-{self.run_id}-{name}")
        return ["nsenter", "-t", str(container.attrs["State"]["Pid"]), "-n"]

    def can_connect(self, src: str, dst: str) -> bool:
        """TCP connect from inside node ``src``'s namespace (src="host": from this host) to node ``dst``."""
        node = self.record()["nodes"][dst]
        prefix = [] if src == "host" else self.enter(src)
        host, port = (node["address"], node["port"])
        if src == "host" and node["published"]:
            host, port = node["published"][str(node["port"])]
        return subprocess.run([*prefix, sys.executable, "-c", PROBE, host, str(port)],
                              capture_output=True).returncode == 0


@pytest.fixture
def lab(state_dir: Path) -> Iterator[Lab]:
    """Name it before ``backend`` / ``no_leftovers``: their leftover checks then run before this cleanup."""
    ck = Lab(state_dir)
    try:
        yield ck
    finally:
        ck("cleanup", ok=False, timeout=120)


def faults_section(status: str) -> str:
    return status.split("faults in force:", 1)[1].split("connection:", 1)[0]


def node_row(status: str, name: str) -> list[str]:
    return next(line.split() for line in status.splitlines() if line.startswith(f"{name} "))


def wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_redis_kill_primary_status_heal_down(lab: Lab, backend: str, state_dir: Path) -> None:
    lab.up("redis", backend)
    res = lab("fault", "kill", "primary")
    assert "applied #1 kill primary (redis-1)" in res.stdout, res.stdout
    status = lab("status").stdout
    print(status)
    assert node_row(status, "redis-1")[2:] == ["no", "down"]
    assert {node_row(status, n)[3] for n in ("redis-2", "redis-3")} <= {"primary", "replica"}
    (row,) = [line.split() for line in faults_section(status).splitlines()[3:] if line.strip()]
    assert row[:5] == ["1", "kill", "primary", "-", "redis-1"], status
    assert "sentinels: [(" in status and "service_name: mymaster" in status
    assert "healed #1 kill primary (redis-1)" in lab("heal").stdout
    status = lab("status").stdout
    assert node_row(status, "redis-1")[2] == "yes" and "faults in force: none" in status
    assert "nothing to heal" in lab("heal").stdout
    assert "1 run(s) cleaned up" in lab("down").stdout
    assert not list((state_dir / "runs").glob("*.json"))


def test_a_partition_holds_across_a_kill_and_restart_of_its_node(lab: Lab, backend: str) -> None:
    partition_kill_restart(lab, backend)


@pytest.mark.docker
def test_docker_desktop_path_the_partition_holds_too(lab: Lab, docker_clean: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # published ports and the helper container for iptables, forced on Linux (see README, Backends)
    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "published")
    monkeypatch.setenv("CHAOSKIT_DOCKER_NETFAULTS", "helper")
    partition_kill_restart(lab, "docker")


def partition_kill_restart(lab: Lab, backend: str) -> None:
    lab.up("redis", backend, "down_after_ms=60000")  # no failover while we poke
    assert lab.can_connect("sentinel-1", "redis-2")
    assert "applied #1 partition redis-2 (redis-2)" in lab("fault", "partition", "redis-2", "--opt",
                                                             "peers=others").stdout
    assert not lab.can_connect("sentinel-1", "redis-2") and lab.can_connect("host", "redis-2")
    assert "applied #2 kill redis-2 (redis-2)" in lab("fault", "kill", "redis-2").stdout
    status = lab("status").stdout
    assert "faults in force: 2" in status and node_row(status, "redis-2")[2] == "no", status
    assert "healed #2 kill redis-2 (redis-2)" in lab("heal", "kill").stdout  # starts it again
    assert wait_for(lambda: lab.can_connect("host", "redis-2")), "redis-2 did not come back"
    assert not lab.can_connect("sentinel-1", "redis-2") and not lab.can_connect("redis-1", "redis-2")
    status = lab("status").stdout
    (row,) = [line.split() for line in faults_section(status).splitlines()[3:] if line.strip()]
    assert row[:5] == ["1", "partition", "redis-2", "peers=others", "redis-2"], status
    assert "healed #1 partition redis-2 (redis-2)" in lab("heal", "1").stdout
    assert lab.can_connect("sentinel-1", "redis-2")
    assert "faults in force: none" in lab("status").stdout
    lab("down")


def test_mongo_native_fault_ends_with_its_process_and_down_heals_first(lab: Lab, state_dir: Path,
                                                                       no_leftovers: None) -> None:
    lab.up("mongo", "local")
    assert "applied #1 replication-pause mongo-3 (mongo-3)" in lab("fault", "replication-pause", "mongo-3").stdout
    assert "applied #2 kill mongo-3 (mongo-3)" in lab("fault", "kill", "mongo-3").stdout
    status = lab("status").stdout
    print(status)
    section = faults_section(status)
    assert "kill" in section and "replication-pause" not in section  # its mongod is gone: it acts no more
    assert "fault(s) no longer acting were dropped: #1" in status
    assert "uri: mongodb://" in status and node_row(status, "mongo-3")[2:] == ["no", "down"]
    assert "healed #2 kill mongo-3 (mongo-3)" in lab("heal").stdout
    assert "applied #3 pause mongo-2 (mongo-2)" in lab("fault", "pause", "mongo-2").stdout
    assert node_row(lab("status").stdout, "mongo-2")[2] == "paused"
    down = lab("down").stdout
    assert f"run {lab.run_id}: healed #3 pause mongo-2 (mongo-2)" in down
    assert down.index("healed #3") < down.index("removed")
    assert netns_names(state_dir) == set() and server_pids(state_dir) == set()


def test_down_with_a_fault_in_force_heals_first_and_leaves_nothing(lab: Lab, backend: str, state_dir: Path) -> None:
    lab.up("redis", backend, "down_after_ms=60000")
    lab("fault", "packet-loss", "replicas", "--opt", "probability=0.3")
    lab("fault", "pause", "redis-1")
    res = lab("fault", "switchover", ok=False)  # not a Redis fault: one line, exit 2, nothing applied
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    status = lab("status").stdout
    print(status)
    assert "faults in force: 2" in status and node_row(status, "redis-1")[2] == "paused"
    assert "peers=primary probability=0.3" in faults_section(status)
    down = lab("down").stdout
    assert down.index("healed #2 pause redis-1") < down.index("healed #1 packet-loss replicas")
    assert not list((state_dir / "runs").glob("*.json"))
    if backend == "docker":
        assert chaoskit_containers(state_dir) == set()


def test_python_attach_applies_faults_that_outlive_the_process_and_down_removes_the_lab(
        lab: Lab, state_dir: Path, no_leftovers: None) -> None:
    import chaoskit

    lab.up("redis", "local", "down_after_ms=60000")
    c = chaoskit.Cluster.attach()  # this test's state directory: its only lab
    assert c.run_id == lab.run_id and c.roles()["redis-1"] == "primary"
    c.apply(chaoskit.Pause("redis-2"))
    c.stop()  # leaving an attached cluster stops nothing
    status = lab("status").stdout  # another process sees the fault, in force
    assert node_row(status, "redis-2")[2] == "paused" and "faults in force: 1" in status
    chaoskit.Cluster.attach(lab.run_id).down()  # heals, then removes everything
    assert not list((state_dir / "runs").glob("*.json"))


def _get_ms(addr: tuple[str, int]) -> float:
    import redis

    r = redis.Redis(*addr, socket_timeout=5)
    r.ping()
    t = time.perf_counter()
    r.get("k")
    return (time.perf_counter() - t) * 1000


def test_toxic_faults_on_a_lab_up_with_toxics(lab: Lab, no_leftovers: None, state_dir: Path) -> None:
    res = lab("up", "redis", "--backend", "local", "--toxics")
    lab.run_id = re.search(r"is up \(run (\w+)\)", res.stdout).group(1)  # type: ignore[union-attr]
    path = lab.record()["client_path"]
    assert path is not None and path["host"] in res.stdout, "the connection printed goes through the proxies"
    proxy = {name: (lhost, lport) for _h, _p, lhost, lport, name in path["routes"]}
    before = _get_ms(proxy["redis-1"])
    assert "applied #1 latency primary (redis-1)" in lab("fault", "latency", "primary", "--opt",
                                                          "latency_ms=200").stdout
    slowed = _get_ms(proxy["redis-1"])  # a new process, its own connection: the toxic is the lab's
    status = lab("status").stdout
    assert "latency" in faults_section(status), status
    assert "healed #1 latency primary (redis-1)" in lab("heal").stdout
    healed = _get_ms(proxy["redis-1"])
    print(f"\nlab: GET through the proxy {before:.2f} ms, with a 200 ms latency toxic {slowed:.1f} ms, "
          f"healed {healed:.2f} ms")
    assert before < 50 and slowed >= 200 and healed < 50
    assert "1 run(s) cleaned up" in lab("down").stdout
