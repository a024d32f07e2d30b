"""Each fault against a real Redis topology: apply, observe the real effect, heal, observe it gone."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chaoskit.backends import make_backend
from chaoskit.catalog import parse
from chaoskit.faults import Kill, PacketLoss, Partition, Pause, Restart
from chaoskit.systems.redis.faults import ClientPause, SentinelFailover
from chaoskit.systems.redis.topology import RedisTopology

pytestmark = pytest.mark.integration

PROBE = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5)"
UDP_LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 9999)); s.settimeout(1.5)
n = 0
try:
    while True:
        s.recv(64); n += 1; s.settimeout(0.5)
except socket.timeout:
    pass
print(n)
"""
UDP_SEND = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" \
           "[s.sendto(b'x',(sys.argv[1],9999)) for _ in range(int(sys.argv[2]))]"


BACKENDS = [
    "local",
    pytest.param("docker", marks=pytest.mark.docker),
]


@pytest.fixture(scope="module", params=BACKENDS)
def topo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTopology]:
    """One Redis topology per backend: every fault test runs on both (parity)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHAOSKIT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        exp = parse({"name": "faults", "system": "redis", "purpose": "-", "hypothesis": "-",
                     "topology": {"down_after_ms": 60000},  # no automatic failover while we poke
                     "client": {"pattern": "sentinel-backoff"}, "expect": [{"metric": "lost_writes"}]}, "test")
        run_id = secrets.token_hex(3)
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
        backend = make_backend(request.param, run_id, str(workdir))
        try:
            topology = RedisTopology(exp, backend, workdir)
            topology.up(print)
            topology.wait_ready(60)
            yield topology
        finally:
            backend.teardown()


def enter(topo: RedisTopology, name: str) -> list[str]:
    """Command prefix that runs a host program inside node ``name``'s network namespace."""
    if topo.backend.name == "local":
        return ["ip", "netns", "exec", topo.backend.netns(name)]  # type: ignore[attr-defined]
    import docker

    container = docker.from_env().containers.get(topo.backend.container_name(name))  # type: ignore[attr-defined]
    return ["nsenter", "-t", str(container.attrs["State"]["Pid"]), "-n"]


def can_connect(topo: RedisTopology, src: str, dst: str) -> bool:
    """TCP connect from inside node ``src``'s namespace (or the host, src="host") to node ``dst``."""
    node = topo.nodes[dst]
    prefix = [] if src == "host" else enter(topo, src)
    host, port = (node.address, node.port) if src != "host" else node.client_addr
    return subprocess.run([*prefix, sys.executable, "-c", PROBE, host, str(port)], capture_output=True).returncode == 0


def udp_received(topo: RedisTopology, src: str, dst: str, count: int = 50) -> int:
    addr = topo.nodes[dst].address
    listener = subprocess.Popen([*enter(topo, dst), sys.executable, "-c", UDP_LISTEN, addr],
                                stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    subprocess.run([*enter(topo, src), sys.executable, "-c", UDP_SEND, addr, str(count)], check=True)
    out, _ = listener.communicate(timeout=10)
    return int(out.strip())


def _proc_state(pid: int | None) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def ping(node_addr: tuple[str, int], timeout: float = 0.5) -> bool:
    try:
        return bool(redis.Redis(*node_addr, socket_timeout=timeout, socket_connect_timeout=timeout).ping())
    except redis.RedisError:
        return False


def test_partition_cuts_peers_but_not_clients(topo: RedisTopology) -> None:
    primary = topo.resolve("primary")[0].name
    applied = Partition("primary", ["others"]).apply(topo, topo.backend)
    assert applied.node_names == [primary]
    try:
        assert not can_connect(topo, "sentinel-1", primary)
        assert can_connect(topo, "host", primary), "clients on the host must still reach the primary"
        assert can_connect(topo, "sentinel-1", "sentinel-2")
    finally:
        applied.heal()
    assert can_connect(topo, "sentinel-1", primary)


def _wait_ping(node_addr: tuple[str, int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ping(node_addr) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ping(node_addr), f"{node_addr} did not answer after {timeout:g}s"


@pytest.mark.parametrize("partition_first", [True, False], ids=["partition-then-kill", "kill-then-partition"])
def test_a_partition_stays_in_force_across_a_kill_and_restart(topo: RedisTopology, partition_first: bool) -> None:
    """Faults combine: a node cut off and then killed and restarted (or cut off while down) is still cut off
    (on docker a restarted container gets a new network namespace, without the rules)."""
    cut, kill = Partition("redis-3", ["sentinel-1"]), Kill("redis-3")
    applied = {f.kind: f.apply(topo, topo.backend) for f in ([cut, kill] if partition_first else [kill, cut])}
    try:
        applied["kill"].heal()  # restarts redis-3
        _wait_ping(topo.nodes["redis-3"].client_addr)
        assert not can_connect(topo, "sentinel-1", "redis-3"), "the partition did not survive the restart"
        assert can_connect(topo, "sentinel-2", "redis-3")
    finally:
        applied["partition"].heal()
    assert can_connect(topo, "sentinel-1", "redis-3")


def test_one_way_partition_drops_only_what_target_receives(topo: RedisTopology) -> None:
    applied = Partition("redis-3", ["sentinel-1"], one_way=True).apply(topo, topo.backend)
    try:
        assert udp_received(topo, "sentinel-1", "redis-3") == 0
        assert udp_received(topo, "redis-3", "sentinel-1") == 50
    finally:
        applied.heal()
    assert udp_received(topo, "sentinel-1", "redis-3") == 50


def test_split_into_groups(topo: RedisTopology) -> None:
    fault = Partition(groups=[["redis-1", "sentinel-1"], ["redis-2", "redis-3", "sentinel-2", "sentinel-3"]])
    applied = fault.apply(topo, topo.backend)
    assert len(applied.nodes) == 6
    try:
        assert can_connect(topo, "sentinel-1", "redis-1")
        assert can_connect(topo, "sentinel-2", "redis-3")
        assert not can_connect(topo, "sentinel-1", "redis-2")
        assert not can_connect(topo, "redis-3", "redis-1")
    finally:
        applied.heal()
    assert can_connect(topo, "redis-3", "redis-1")


def test_packet_loss_drops_about_the_given_fraction(topo: RedisTopology) -> None:
    applied = PacketLoss("sentinel-2", ["sentinel-3"], probability=0.5).apply(topo, topo.backend)
    try:
        got = udp_received(topo, "sentinel-3", "sentinel-2", count=400)
    finally:
        applied.heal()
    assert 100 < got < 300, got  # binomial(400, 0.5): outside this is ~1e-23 unlikely


def test_kill_then_heal_restarts_the_node(topo: RedisTopology) -> None:
    applied = Kill("replica").apply(topo, topo.backend)
    (node,) = applied.nodes
    assert not topo.backend.is_running(node) and not ping(node.client_addr)
    applied.heal()
    restarted = topo.nodes[node.name]
    assert restarted.pid != node.pid
    deadline = time.monotonic() + 5
    while not ping(restarted.client_addr) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ping(restarted.client_addr)


def test_pause_freezes_and_resume_thaws(topo: RedisTopology) -> None:
    applied = Pause("replica").apply(topo, topo.backend)
    (node,) = applied.nodes
    try:
        if topo.backend.name == "local":  # SIGSTOP is delivered asynchronously: give it a moment
            deadline = time.monotonic() + 2
            while _proc_state(node.pid) != "T" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _proc_state(node.pid) == "T"
        else:
            import docker

            name = topo.backend.container_name(node.name)  # type: ignore[attr-defined]
            assert docker.from_env().containers.get(name).status == "paused"
        assert not ping(node.client_addr, timeout=0.3)
    finally:
        applied.heal()
    assert ping(node.client_addr, timeout=2)


def test_restart_replaces_the_process(topo: RedisTopology) -> None:
    (node,) = topo.resolve("replica")
    (hit,) = Restart("replica").apply(topo, topo.backend).nodes
    assert hit.name == node.name and topo.nodes[node.name].pid != node.pid
    new = topo.nodes[node.name]
    deadline = time.monotonic() + 5
    while not ping(new.client_addr) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ping(new.client_addr)


def test_client_pause_stalls_writes_until_healed(topo: RedisTopology) -> None:
    applied = ClientPause("primary").apply(topo, topo.backend)
    (node,) = applied.nodes
    client = redis.Redis(*node.client_addr, socket_timeout=0.3)
    try:
        with pytest.raises(redis.TimeoutError):
            client.set("chaoskit:probe", 1)
        assert client.ping(), "WRITE mode pauses writes only"
    finally:
        applied.heal()
    assert redis.Redis(*node.client_addr, socket_timeout=1).set("chaoskit:probe", 2)


def test_sentinel_failover_moves_the_primary(topo: RedisTopology) -> None:
    before = topo.resolve("primary")[0].name
    SentinelFailover().apply(topo, topo.backend)
    deadline = time.monotonic() + 15
    while topo.resolve("primary")[0].name == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topo.resolve("primary")[0].name != before
