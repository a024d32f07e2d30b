"""The docker backend: the same experiments on containers, built locally (no registry needed).

Marked docker: runs when CHAOSKIT_DOCKER_TESTS=1 or all (`make test` sets 1, installs/starts Docker and builds the
images); skipped otherwise so a laptop without Docker can still run the rest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from chaoskit.checkers import Verdict
from chaoskit.experiment import load
from chaoskit.runner import run
from tests.integration.util import CHAOSKIT, chaoskit_containers, chaoskit_networks, cli_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
]


@pytest.mark.parametrize("name", ["redis-primary-kill", "redis-primary-partition"])
def test_same_verdict_on_docker_as_on_local(name: str, tmp_path: Path, docker_clean: None) -> None:
    result = run(load(name), "docker", tmp_path / name, progress=print)
    journal = result.journal
    assert journal["backend"] == "docker"
    assert result.verdict is Verdict.PASS, json.dumps(journal["checks"], indent=1)
    assert journal["metrics"]["acked_writes"] > 500
    assert json.loads((tmp_path / name / "journal.json").read_text())["backend"] == "docker"


def test_cleanup_after_sigkill_removes_only_chaoskit_containers(tmp_path: Path, state_dir: Path) -> None:
    image = os.environ.get("CHAOSKIT_REDIS_IMAGE", "chaoskit/redis:7")
    foreign = subprocess.run(["docker", "run", "-d", "--name", f"foreign-{os.getpid()}", image, "sleep", "300"],
                             capture_output=True, text=True, check=True).stdout.strip()
    try:
        proc = subprocess.Popen([*CHAOSKIT, "run", "redis-primary-partition", "--backend", "docker",
                                 "--out", str(tmp_path / "out")], env=cli_env(state_dir),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "fault: partition" in line:
                break
        else:
            raise AssertionError(proc.stderr.read() if proc.stderr else "run ended before the fault")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(chaoskit_containers(state_dir)) == 6 and len(chaoskit_networks(state_dir)) == 1
        res = subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stderr
        assert chaoskit_containers(state_dir) == set() and chaoskit_networks(state_dir) == set()
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", foreign],
                               capture_output=True, text=True).stdout.strip()
        assert state == "true", "a foreign container must not be touched"
    finally:
        subprocess.run(["docker", "rm", "-f", foreign], capture_output=True)
        subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, timeout=120)


def test_docker_desktop_path_published_ports_and_helper_partitions(
        tmp_path: Path, docker_clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """What Docker Desktop needs (container IPs unreachable, no nsenter), exercised on Linux by forcing it."""
    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "published")
    monkeypatch.setenv("CHAOSKIT_DOCKER_NETFAULTS", "helper")
    result = run(load("redis-primary-partition"), "docker", tmp_path / "out", progress=print)
    assert result.verdict is Verdict.PASS, json.dumps(result.journal["checks"], indent=1)
    assert result.journal["metrics"]["lost_writes"] > 0  # the partition (made by helper containers) was real


def test_docker_desktop_path_for_postgres_reaches_patroni_and_haproxy_through_published_ports(
        tmp_path: Path, docker_clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patroni's REST API (8008) and both HAProxy endpoints are published next to the main port."""
    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "published")
    monkeypatch.setenv("CHAOSKIT_DOCKER_NETFAULTS", "helper")
    result = run(load("postgres-proxy-failover"), "docker", tmp_path / "out", progress=print)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"], "rto": journal["rto"]}, indent=1)
    assert journal["rto"]["new_primary"] not in (None, journal["faults"][0]["target"])


def test_docker_desktop_path_for_mongo_routes_the_members_announced_addresses(
        tmp_path: Path, docker_clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """pymongo discovers the set at the members' in-network addresses; on Docker Desktop those are
    reached through published ports. The partition (by helper containers) must still lose w:1 writes."""
    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "published")
    monkeypatch.setenv("CHAOSKIT_DOCKER_NETFAULTS", "helper")
    result = run(load("mongo-partition-w1"), "docker", tmp_path / "out", progress=print)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"], "rto": journal["rto"]}, indent=1)
    assert journal["metrics"]["lost_writes"] > 0


def _own_tcp_peers() -> set[tuple[str, int]]:
    """Remote (IPv4 address, port) of this process's established TCP sockets."""
    import socket
    import struct

    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    peers = set()
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes and fields[3] == "01":  # ESTABLISHED
            host, port = fields[2].split(":")
            peers.add((socket.inet_ntoa(struct.pack("<I", int(host, 16))), int(port, 16)))
    return peers


@pytest.mark.parametrize("system, experiment", [("redis", "redis-primary-kill"), ("mongo", "mongo-primary-kill")])
def test_published_addressing_connects_only_through_localhost(
        system: str, experiment: str, tmp_path: Path, state_dir: Path, docker_clean: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On Docker Desktop the drivers must reach every node through its published port, even the nodes
    they discover (Sentinel's announced primary, the replica set's member list)."""
    import secrets

    from chaoskit.backends.docker import DockerBackend
    from chaoskit.systems import get_system

    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "published")
    exp = load(experiment)
    backend = DockerBackend(secrets.token_hex(3), str(tmp_path / "work"))
    try:
        topo = get_system(system).topology(exp, backend, tmp_path / "work")
        topo.up(print)
        topo.wait_ready(60)
        assert all(node.client_addr[0] == "127.0.0.1" for node in topo.nodes.values())
        client = topo.client(exp.client, "write")
        client.open()
        assert client.invoke("write", 1).type.value == "ok"
        in_network = {(n.address, n.port) for n in topo.nodes.values()}
        peers = _own_tcp_peers()
        assert not peers & in_network, f"connected to in-network addresses: {peers & in_network}"
        assert {n.client_addr for n in topo.nodes.values()} & peers, peers
        client.close()
    finally:
        backend.teardown()
