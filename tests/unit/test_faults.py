"""The one fault model: YAML mappings become the public fault objects, which round-trip, are validated
against their system, and can be applied again and again without state leaking between uses."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

import chaoskit
from chaoskit.backends.base import Node, NodeSpec
from chaoskit.catalog import EXPERIMENTS_DIR, load, parse
from chaoskit.errors import ExperimentError, UsageError
from chaoskit.experiment import Experiment
from chaoskit.faults import Fault, fault_kinds, parse_fault

ORIGIN = "experiments/test-origin.yaml"


def doc(faults: list[dict[str, Any]], name: str = "redis-primary-kill") -> dict[str, Any]:
    data = copy.deepcopy(yaml.safe_load((EXPERIMENTS_DIR / f"{name}.yaml").read_text()))
    data["faults"] = faults
    return data


@pytest.mark.parametrize(("raw", "expected"), [
    ({"kind": "kill"}, chaoskit.Kill("primary")),
    ({"kind": "kill", "target": "redis-2", "restart_on_heal": False}, chaoskit.Kill("redis-2", False)),
    ({"kind": "pause"}, chaoskit.Pause()),
    ({"kind": "restart", "target": "replica"}, chaoskit.Restart("replica")),
    ({"kind": "partition", "peers": ["others"]}, chaoskit.Partition("primary", ["others"])),
    ({"kind": "partition", "groups": [["redis-1"], ["redis-2"]]},
     chaoskit.Partition(groups=[["redis-1"], ["redis-2"]])),
    ({"kind": "packet-loss", "target": "replicas", "peers": ["primary"], "probability": 0.6},
     chaoskit.PacketLoss(probability=0.6)),
    ({"kind": "client-pause", "target": "primary", "options": {"mode": "write"}}, chaoskit.ClientPause()),
    ({"kind": "client-pause", "options": {"mode": "ALL"}}, chaoskit.ClientPause(mode="all")),
    ({"kind": "sentinel-failover"}, chaoskit.SentinelFailover()),
    ({"kind": "switchover"}, chaoskit.Switchover()),
    ({"kind": "stepdown", "options": {"step_down_s": 5}}, chaoskit.StepDown(step_down_s=5)),
    ({"kind": "replication-pause", "target": "replica"}, chaoskit.ReplicationPause()),
    ({"kind": "disablegossip", "target": "cassandra-2"}, chaoskit.DisableGossip("cassandra-2")),
    ({"kind": "disablebinary"}, chaoskit.DisableBinary("any")),
    ({"kind": "drain", "target": "two"}, chaoskit.Drain("two")),
], ids=lambda v: v.get("kind") if isinstance(v, dict) else "")
def test_yaml_mapping_becomes_the_public_object_and_round_trips(raw: dict[str, Any], expected: Fault) -> None:
    fault = parse_fault(raw)
    assert fault == expected and type(fault) is type(expected)
    assert parse_fault(fault.spec()) == fault
    assert fault.spec()["kind"] == raw["kind"]


def test_every_kind_the_experiments_use_is_registered() -> None:
    assert set(fault_kinds()) >= {"kill", "pause", "restart", "partition", "packet-loss", "sentinel-failover",
                                  "client-pause", "switchover", "stepdown", "replication-pause",
                                  "disablegossip", "disablebinary", "drain"}


@pytest.mark.parametrize("path", sorted(EXPERIMENTS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_experiments_hold_fault_objects_and_dump_back_to_the_same_yaml(path: Path) -> None:
    exp = load(str(path))
    raw = yaml.safe_load(path.read_text())
    assert all(isinstance(f, Fault) for f in exp.faults)
    for fault, given in zip(exp.faults, raw.get("faults") or [], strict=True):
        spec = fault.spec()
        assert {k: v for k, v in spec.items() if k in given} == given  # what the file says, nothing changed
    assert Experiment.model_validate(exp.model_dump()) == exp


def test_native_options_are_typed() -> None:
    with pytest.raises(ValidationError, match="step_down_s"):
        parse_fault({"kind": "stepdown", "options": {"step_down_s": 0}})
    with pytest.raises(ValidationError, match="mode"):
        chaoskit.ClientPause(mode="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("faults", "field", "words"), [
    ([{"kind": "stepdown"}], "faults.0.kind", "unknown fault 'stepdown' (known: kill, pause, restart, partition, "
                                              "packet-loss, sentinel-failover, client-pause, latency, timeout, "
                                              "reset-peer, bandwidth, slow-close, slicer, limit-data)"),
    ([{"kind": "client-pause", "options": {"colour": "red"}}], "faults.0.colour", "Extra inputs"),
    ([{"kind": "client-pause", "options": {"mode": "sometimes"}}], "faults.0.mode", "Input should be"),
    ([{"kind": "partition", "groups": [["redis-1"]]}], "faults.0.groups", "at least 2"),
    ([{"kind": "partition", "peers": ["etcd"]}], "faults.0", "unknown target 'etcd'"),
    ([{"kind": "kill"}, {"kind": "pause", "target": 3}], "faults.1.target", "valid string"),
], ids=["other-systems-native", "unknown-option", "bad-option", "one-group", "unknown-peer", "wrong-type"])
def test_bad_fault_is_one_line(faults: list[dict[str, Any]], field: str, words: str) -> None:
    with pytest.raises(ExperimentError) as info:
        parse(doc(faults), ORIGIN)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{ORIGIN}: {field}:"), msg
    assert words in msg


def test_each_system_accepts_its_own_natives() -> None:
    assert parse(doc([{"kind": "switchover"}], "postgres-primary-kill"), ORIGIN).faults == [chaoskit.Switchover()]
    exp = parse(doc([{"kind": "stepdown"}, {"kind": "replication-pause"}], "mongo-primary-kill"), ORIGIN)
    assert exp.faults == [chaoskit.StepDown(), chaoskit.ReplicationPause("replica")]


# ---- applying: an in-memory topology and backend (no servers) -----------------------------------

class FakeBackend:
    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running: set[str] = set()

    def kill(self, node: Node) -> None:
        self.calls.append(("kill", node.name))
        self.running.discard(node.name)

    def pause(self, node: Node) -> None:
        self.calls.append(("pause", node.name))

    def resume(self, node: Node) -> None:
        self.calls.append(("resume", node.name))

    def is_running(self, node: Node) -> bool:
        return node.name in self.running

    def block(self, node: Node, peers: list[Node], *, one_way: bool = False, probability: float | None = None) -> None:
        self.calls.append(("block", f"{node.name}<-{','.join(p.name for p in peers)}"))

    def unblock(self, node: Node) -> None:
        self.calls.append(("unblock", node.name))


class FakeTopology:
    """Three data nodes; the primary is whatever ``primary`` says when a fault resolves its target."""

    def __init__(self, backend: FakeBackend) -> None:
        self.nodes = {n: Node(NodeSpec(n, (), Path("/nonexistent"), 1), f"10.0.0.{i}") for i, n in
                      enumerate(["db-1", "db-2", "db-3"])}
        self.primary, self.backend = "db-1", backend
        backend.running |= set(self.nodes)

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        names = {"primary": [self.primary], "others": list(self.nodes)}.get(role, [role])
        return [self.nodes[n] for n in names if n not in (exclude or set())]

    def restart(self, node: Node) -> Node:
        self.backend.calls.append(("restart", node.name))
        self.backend.running.add(node.name)
        return node


def test_one_fault_object_applied_twice_keeps_no_state_between_uses() -> None:
    backend = FakeBackend()
    topo = FakeTopology(backend)
    kill = chaoskit.Kill("primary")
    first = kill.apply(topo, backend)  # type: ignore[arg-type]
    topo.primary = "db-2"  # a failover happened
    second = kill.apply(topo, backend)  # type: ignore[arg-type]
    assert first.node_names == ["db-1"] and second.node_names == ["db-2"]
    assert kill == chaoskit.Kill("primary"), "the fault object itself is unchanged"
    first.heal()
    first.heal()  # idempotent
    assert backend.calls == [("kill", "db-1"), ("kill", "db-2"), ("restart", "db-1")]
    assert first.healed and not second.healed
    second.heal()
    assert backend.calls[-1] == ("restart", "db-2")


def test_partition_heals_exactly_the_nodes_it_cut() -> None:
    backend = FakeBackend()
    topo = FakeTopology(backend)
    applied = chaoskit.Partition("primary", ["others"]).apply(topo, backend)  # type: ignore[arg-type]
    assert backend.calls == [("block", "db-1<-db-2,db-3")]
    applied.heal()
    assert backend.calls[-1] == ("unblock", "db-1")


def test_fault_objects_are_frozen() -> None:
    fault = chaoskit.Pause("redis-1")
    with pytest.raises(AttributeError):
        fault.target = "redis-2"  # type: ignore[misc]


def test_cluster_settings_are_validated_before_anything_starts() -> None:
    with pytest.raises(UsageError, match=r"^cluster\('redis'\): unknown setting 'replica' \(known: replicas, "):
        chaoskit.cluster("redis", replica=2)
    with pytest.raises(UsageError, match=r"^cluster\('mongo'\): members: Input should be greater than or equal to 3"):
        chaoskit.cluster("mongo", members=1)
    with pytest.raises(UsageError, match=r"^unknown system 'dynamodb'"):
        chaoskit.cluster("dynamodb")
    with pytest.raises(UsageError, match="not running"):
        chaoskit.cluster("redis").roles()
