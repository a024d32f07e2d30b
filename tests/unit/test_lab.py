"""The lab record (kept in the ledger, written atomically), choosing a lab, the `fault` command line, and a
lab's fault bookkeeping -- apply, in force or not, heal -- on an in-memory backend (no servers)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import field, replace
from pathlib import Path
from typing import Literal

import pytest
from pydantic.dataclasses import dataclass

import chaoskit
from chaoskit import cli
from chaoskit.backends import ledger as ledger_mod
from chaoskit.backends.base import Node, NodeSpec
from chaoskit.backends.ledger import Ledger, all_ledgers
from chaoskit.errors import UsageError
from chaoskit.faults import CONFIG, Fault
from chaoskit.lab import (
    FaultRecord,
    HitNode,
    Lab,
    LabRecord,
    NodeRecord,
    fault_from_args,
    load_record,
    now,
    save_record,
    select,
)

NAMES = ["redis-1", "redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3"]


def make_node(name: str, i: int, pid: int | None = None) -> Node:
    spec = NodeSpec(name, ("redis-server", f"/tmp/ck/{name}/{name}.conf"), Path(f"/tmp/ck/{name}"), 6379,
                    env=(("A", "1"),), image="chaoskit/redis:7", extra_ports=(8008,))
    return Node(spec, f"10.213.1.{10 + i}", pid if pid is not None else 1000 + i, Path(f"/tmp/ck/{name}/{name}.log"),
                {"container": f"ck-x-{name}"}, {6379: ("127.0.0.1", 40000 + i)})


def make_record(run_id: str = "abc123", system: str = "redis") -> LabRecord:
    nodes = {n: make_node(n, i) for i, n in enumerate(NAMES)}
    return LabRecord(system=system, backend="local", run_id=run_id, workdir=f"/tmp/chaoskit-{run_id}",
                     settings={"replicas": 2}, created_at=now(), addresses={n: x.address for n, x in nodes.items()},
                     nodes={n: NodeRecord.of(x) for n, x in nodes.items()}, backend_state={"addresses": {}})


def make_lab_ledger(run_id: str = "abc123", system: str = "redis") -> Ledger:
    ledger = Ledger.create(run_id, "local", "10.213.1.0/24")
    ledger.lab = make_record(run_id, system).model_dump(mode="json")
    ledger.detach(system)
    return ledger


# ---- the record --------------------------------------------------------------------------------

def test_a_node_round_trips_through_its_record() -> None:
    node = make_node("redis-1", 0)
    again = NodeRecord.model_validate_json(NodeRecord.of(node).model_dump_json()).node()
    assert again == node and again.spec == node.spec
    container = Node(replace(node.spec, argv=("sh", "-c", "exec x"), image="i", replace_entrypoint=True), "10.0.0.1")
    again = NodeRecord.model_validate_json(NodeRecord.of(container).model_dump_json()).node()
    assert again.spec == container.spec and again.spec.replace_entrypoint, "a restart keeps the entrypoint"


def test_the_lab_record_round_trips_through_the_ledger_file() -> None:
    ledger = Ledger.create("abc123", "local", "10.213.1.0/24")
    record = make_record()
    record.faults.append(FaultRecord(id=1, spec=chaoskit.Partition("redis-1", ["others"]).spec(), state="in-force",
                                     nodes=[HitNode(name="redis-1", pid=1000)], applied_at=now()))
    record.next_id = 2
    save_record(ledger, record)
    (loaded,) = all_ledgers()
    assert load_record(loaded) == record
    assert loaded.entries == ledger.entries and loaded.subnet == "10.213.1.0/24"


def test_a_failed_write_leaves_the_previous_record_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = make_lab_ledger()
    before = ledger.path.read_text()
    record = load_record(ledger)
    record.next_id = 7

    def torn(data: object, fh: object, **kw: object) -> None:
        fh.write('{"run_id": "abc1')  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(ledger_mod.json, "dump", torn)
    with pytest.raises(OSError, match="disk full"):
        save_record(ledger, record)
    assert ledger.path.read_text() == before  # written to a temporary file, renamed only once complete
    assert load_record(Ledger.load(ledger.path)).next_id == 1


def test_a_ledger_from_before_labs_still_loads_and_is_not_a_lab(tmp_state: Path) -> None:
    ledger = Ledger.create("old111", "local", "10.213.2.0/24")
    data = json.loads(ledger.path.read_text())
    del data["lab"]
    ledger.path.write_text(json.dumps(data))
    loaded = Ledger.load(ledger.path)
    assert loaded.lab is None
    with pytest.raises(UsageError, match="not a lab"):
        load_record(loaded)


# ---- choosing a lab ----------------------------------------------------------------------------

def test_no_lab_one_lab_several_labs() -> None:
    with pytest.raises(UsageError, match="no lab is up: start one with `chaoskit up SYSTEM`"):
        select(None)
    make_lab_ledger("aaa111")
    Ledger.create("run999", "local", "10.213.9.0/24")  # a run in progress is no lab
    assert select(None).run_id == "aaa111"
    make_lab_ledger("bbb222", "postgres")
    with pytest.raises(UsageError, match=r"2 labs are up \(aaa111 \(redis on local\), bbb222 \(postgres on local\)\)"):
        select(None)
    assert select("bbb222").run_id == "bbb222"
    with pytest.raises(UsageError, match="no lab with run id 'zzz'"):
        select("zzz")


# ---- the command line --------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    (["kill", "primary"], chaoskit.Kill("primary")),
    (["kill", "redis-2", "--opt", "restart_on_heal=false"], chaoskit.Kill("redis-2", False)),
    (["partition", "primary", "--opt", "peers=others"], chaoskit.Partition("primary", ["others"])),
    (["partition", "primary", "--opt", "peers=sentinels,replicas", "--opt", "one_way=true"],
     chaoskit.Partition("primary", ["sentinels", "replicas"], one_way=True)),
    (["partition", "--opt", "groups=[[primary],[others]]"], chaoskit.Partition(groups=[["primary"], ["others"]])),
    (["packet-loss", "replicas", "--opt", "probability=0.3"], chaoskit.PacketLoss(probability=0.3)),
    (["packet-loss"], chaoskit.PacketLoss()),
    (["client-pause", "primary", "--opt", "mode=all"], chaoskit.ClientPause(mode="all")),
    (["sentinel-failover"], chaoskit.SentinelFailover()),
    (["stepdown", "--opt", "step_down_s=5"], chaoskit.StepDown(step_down_s=5)),
])
def test_fault_arguments_build_the_same_objects_as_yaml(args: list[str], expected: chaoskit.Fault) -> None:
    parsed = cli._parser().parse_args(["fault", *args])
    assert fault_from_args(parsed.kind, parsed.target, parsed.opt) == expected


@pytest.mark.parametrize(("args", "words"), [
    (["fault", "explode", "primary"], "chaoskit: redis: unknown fault 'explode' (known: kill, pause, restart, "
                                      "partition, packet-loss, sentinel-failover, client-pause, latency, "
                                      "timeout, reset-peer, bandwidth, slow-close, slicer, limit-data)"),
    (["fault", "packet-loss", "replicas", "--opt", "probability=2"], "probability: Input should be less than"),
    (["fault", "kill", "primary", "--opt", "colour=red"], "colour: unknown option (known: restart_on_heal)"),
    (["fault", "kill", "primary", "--opt", "oops"], "--opt 'oops': expected KEY=VALUE"),
    (["fault", "kill", "primary", "--opt", "target=x"], "--opt target: give the target as an argument"),
    (["fault", "kill", "redis-9"], "redis: kill: unknown target 'redis-9' (roles: primary"),
    (["fault", "switchover", "primary"], "redis: unknown fault 'switchover' (known: kill"),
    (["fault", "kill", "primary", "--run", "nope"], "no lab with run id 'nope' is up"),
    (["heal", "--run", "nope"], "no lab with run id 'nope' is up"),
    (["status", "--run", "nope"], "no lab with run id 'nope' is up"),
    (["down", "--run", "nope"], "no lab with run id 'nope' is up"),
    (["fault"], "the following arguments are required: kind"),
])
def test_bad_lab_commands_are_one_line_exit_2_and_apply_nothing(args: list[str], words: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    ledger = make_lab_ledger()
    before = ledger.path.read_text()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert ledger.path.read_text() == before  # nothing recorded, nothing applied


@pytest.mark.parametrize("cmd", [["fault", "kill", "primary"], ["heal"], ["status"]])
def test_lab_commands_without_a_lab_or_with_two_are_exit_2(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(cmd) == 2
    assert capsys.readouterr().err.strip() == "chaoskit: no lab is up: start one with `chaoskit up SYSTEM`"
    make_lab_ledger("aaa111")
    make_lab_ledger("bbb222")
    assert cli.main(cmd) == 2
    assert "choose one with --run RUN_ID" in capsys.readouterr().err


# ---- a lab's faults, on an in-memory backend ---------------------------------------------------

class MemBackend:
    name = "local"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.down: set[str] = set()
        self.paused: set[str] = set()
        self.blocked: dict[str, list[str]] = {}
        self.next_pid = 5000

    def kill(self, node: Node) -> None:
        self.down.add(node.name)
        self.paused.discard(node.name)

    def stop(self, node: Node) -> None:
        self.kill(node)

    def start(self, spec: NodeSpec) -> Node:
        self.down.discard(spec.name)
        self.next_pid += 1
        return Node(spec, "10.0.0.1", self.next_pid)

    def pause(self, node: Node) -> None:
        self.paused.add(node.name)

    def resume(self, node: Node) -> None:
        self.paused.discard(node.name)

    def is_running(self, node: Node) -> bool:
        return node.name not in self.down

    def is_paused(self, node: Node) -> bool:
        return node.name in self.paused

    def block(self, node: Node, peers: list[Node], *, one_way: bool = False, probability: float | None = None) -> None:
        self.blocked.setdefault(node.name, []).extend(p.name for p in peers)

    def unblock(self, node: Node) -> None:
        self.blocked.pop(node.name, None)

    def is_blocked(self, node: Node) -> bool:
        return bool(self.blocked.get(node.name))

    def state(self) -> dict[str, object]:
        return {"blocked": self.blocked}


class MemTopology:
    def __init__(self, backend: MemBackend, nodes: dict[str, Node]) -> None:
        self.backend, self.nodes = backend, nodes
        self.specs = {n: node.spec for n, node in nodes.items()}
        self.addresses = {n: node.address for n, node in nodes.items()}

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        names = {"primary": ["redis-1"], "others": list(self.nodes)}.get(role, [role])
        return [self.nodes[n] for n in names if n not in (exclude or set())]

    def restart(self, node: Node) -> Node:
        self.nodes[node.name] = self.backend.start(self.specs[node.name])
        return self.nodes[node.name]


@dataclass(frozen=True, config=CONFIG)
class Hush(Fault):
    """A fault whose state lives in the server process, as CLIENT PAUSE's does (the default in_force)."""

    kind: Literal["hush"] = field(default="hush", kw_only=True)

    def inject(self, topology: object, backend: object) -> list[Node]:
        return topology.resolve(self.target)  # type: ignore[attr-defined, no-any-return]

    def revert(self, topology: object, backend: object, nodes: list[Node]) -> None:
        return None


def mem_lab() -> tuple[Lab, MemBackend, MemTopology]:
    ledger = make_lab_ledger()
    record = load_record(ledger)
    backend = MemBackend(ledger)
    topo = MemTopology(backend, {n: r.node() for n, r in record.nodes.items()})
    return Lab(ledger, record, backend, topo), backend, topo  # type: ignore[arg-type]


def reloaded(lab: Lab) -> LabRecord:
    return load_record(Ledger.load(lab.ledger.path))


def test_faults_are_recorded_with_the_nodes_they_hit_and_heal_removes_them() -> None:
    lab, backend, topo = mem_lab()
    part = lab.apply(chaoskit.Partition("redis-1", ["redis-2"]))
    kill = lab.apply(chaoskit.Kill("primary"))
    record = reloaded(lab)
    assert [(f.id, f.spec["kind"], f.state, [n.name for n in f.nodes]) for f in record.faults] == [
        (1, "partition", "in-force", ["redis-1"]), (2, "kill", "in-force", ["redis-1"])]
    assert record.backend_state == {"blocked": {"redis-1": ["redis-2"]}}
    assert lab.prune() == []  # both act: the node is down and its rules are remembered
    assert [f.id for f in lab.select("kill")] == [2] and [f.id for f in lab.select(None)] == [2, 1]
    kill.heal()
    lab.healed(kill)
    assert topo.nodes["redis-1"].pid == 5001 and reloaded(lab).nodes["redis-1"].pid == 5001  # restarted, recorded
    assert backend.is_blocked(topo.nodes["redis-1"])  # the partition outlives the kill and the restart
    assert [f.id for f in reloaded(lab).faults] == [1] and lab.prune() == []
    part.heal()
    lab.healed(part)
    assert reloaded(lab).faults == [] and reloaded(lab).next_id == 3


def test_a_fault_that_stopped_acting_is_dropped() -> None:
    lab, backend, topo = mem_lab()
    lab.apply(chaoskit.Pause("redis-2"))
    lab.apply(chaoskit.Kill("redis-3"))
    lab.apply(chaoskit.Partition("redis-1", ["redis-2"]))
    lab.apply(Hush("redis-1"))
    backend.kill(topo.nodes["redis-2"])  # a paused node that is killed is no longer paused
    topo.restart(topo.nodes["redis-3"])  # a killed node someone started again
    backend.unblock(topo.nodes["redis-1"])  # rules flushed by someone else
    assert [f.spec["kind"] for f in lab.prune()] == ["pause", "kill", "partition"]
    assert [f.spec["kind"] for f in reloaded(lab).faults] == ["hush"]
    topo.restart(topo.nodes["redis-1"])  # a restarted server forgot it
    assert [f.spec["kind"] for f in lab.prune()] == ["hush"]
    assert reloaded(lab).faults == []


def test_a_one_shot_fault_leaves_no_record_and_a_failed_one_stays_applying() -> None:
    lab, backend, topo = mem_lab()
    lab.apply(chaoskit.Restart("redis-2"))
    assert reloaded(lab).faults == [] and reloaded(lab).next_id == 2

    def refuse(node: Node) -> None:
        raise chaoskit.InfrastructureError("refused")

    backend.pause = refuse  # type: ignore[method-assign]
    with pytest.raises(chaoskit.InfrastructureError):
        lab.apply(chaoskit.Pause("redis-3"))
    (rec,) = reloaded(lab).faults
    assert rec.state == "applying" and [n.name for n in rec.nodes] == ["redis-3"]
    assert lab.prune() == [rec]  # it does not act: nothing to show, nothing to heal


def test_a_reattached_lab_gets_a_heal_handle_for_every_fault_in_force() -> None:
    lab, backend, topo = mem_lab()
    lab.apply(chaoskit.Kill("redis-2"))
    lab.apply(chaoskit.Partition("redis-1", ["others"]))
    record = reloaded(lab)
    again = Lab(lab.ledger, record, backend, topo)  # type: ignore[arg-type]
    assert [(i, a.fault.kind, a.node_names) for i, a in again.applied.items()] == [
        (1, "kill", ["redis-2"]), (2, "partition", ["redis-1"])]
    assert again.applied[1].nodes[0].pid == 1001  # the process that was hit
    with pytest.raises(UsageError, match=r"no fault '7' in force \(in force: #1 kill redis-2 \(redis-2\), #2 "):
        again.select("7")


@pytest.mark.parametrize(("fault", "options"), [
    (chaoskit.Kill("primary"), "-"),
    (chaoskit.Kill("primary", restart_on_heal=False), "restart_on_heal=False"),
    (chaoskit.Partition("redis-2", ["others"]), "peers=others"),
    (chaoskit.PacketLoss(probability=0.3), "peers=primary probability=0.3"),
    (chaoskit.ClientPause(mode="all"), "mode=all"),
])
def test_status_shows_the_options_not_at_their_default_and_the_peers(fault: chaoskit.Fault, options: str) -> None:
    from chaoskit.lab_cli import _row

    rec = FaultRecord(id=3, spec=fault.spec(), state="in-force", nodes=[HitNode(name="redis-2", pid=1)],
                      applied_at=now())
    row = _row(rec)
    assert row[:5] == ["3", fault.kind, fault.target, options, "redis-2"] and row[5].endswith("s ago)")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None,
                    reason="the local backend checks for root, ip and iptables (nothing is created here)")
def test_attach_rebuilds_backend_and_topology_from_the_record_without_starting_anything() -> None:
    make_lab_ledger("abc123")
    c = chaoskit.Cluster.attach()
    assert c.run_id == "abc123" and c.backend == "local" and c.workdir == "/tmp/chaoskit-abc123"
    topo = c.topology
    assert type(topo).__name__ == "RedisTopology" and topo.nodes["redis-2"] == make_node("redis-2", 1)
    assert topo.specs["sentinel-3"] == make_node("sentinel-3", 5).spec
    assert c.connection.service_name == "mymaster"
    assert c.connection.sentinels == [("127.0.0.1", 40003), ("127.0.0.1", 40004), ("127.0.0.1", 40005)]
    assert c.lab is not None and c.lab.applied == {}
    c.stop()  # leaving a re-attached lab stops nothing: the ledger and its record stay
    assert select(None).run_id == "abc123"


def test_lab_commands_take_turns_and_a_removed_lab_is_one_line() -> None:
    import threading

    from chaoskit.lab import locked

    ledger = make_lab_ledger()
    entered = threading.Event()

    def second() -> None:
        with locked(ledger):
            entered.set()

    with locked(ledger) as fresh:
        assert fresh.lab == ledger.lab and fresh is not ledger  # read again under the lock
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.3)  # waits for the first command to finish
    thread.join(5)
    assert entered.is_set()
    ledger.forget()
    assert not ledger.path.with_suffix(".lock").exists()
    with pytest.raises(UsageError, match="lab abc123 was removed meanwhile"), locked(ledger):
        pass
    assert not ledger.path.with_suffix(".lock").exists()
