"""The Cassandra topology: the ring's nodes (the first as seed), its schema, a watcher of each coordinator's
view, the final read at ALL; the workload's clients (imports the DataStax driver)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import Cluster, Session
from cassandra.policies import FallthroughRetryPolicy
from cassandra.query import SimpleStatement

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.cassandra import RETRY_ON, CassandraClientPattern, make_cluster
from chaoskit.clients.retry import RetryPolicy
from chaoskit.errors import InfrastructureError
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.jdk import Jdk
from chaoskit.systems.base import Event, EventSink, Facts, NodeBook, Progress, node_at, wait_until
from chaoskit.systems.cassandra import dist, probe
from chaoskit.systems.cassandra.connection import CassandraConnection
from chaoskit.systems.cassandra.image import image_for
from chaoskit.systems.cassandra.settings import (
    IMAGE_LIB,
    JMX_PORT,
    KEYSPACE,
    PORT,
    TABLE,
    CassandraSettings,
)


def _answers(address: str) -> bool:
    with socket.create_connection((address, PORT), timeout=0.3):
        return True


@contextmanager
def _session(hosts: list[str], timeout_s: float = 5.0) -> Iterator[tuple[Cluster, Session]]:
    cluster = make_cluster(hosts, timeout_s=timeout_s, consistency=ConsistencyLevel.ALL,
                           retry=FallthroughRetryPolicy())  # errors as the coordinator gave them
    try:
        yield cluster, cluster.connect()
    finally:
        cluster.shutdown()


def _by_host(cluster: Cluster, session: Session, address: str, cql: str, timeout: float) -> list[Any]:
    """Run ``cql`` at ALL with ``address`` as the coordinator."""
    return list(_send(cluster, session, address, cql, timeout).result())


def _send(cluster: Cluster, session: Session, address: str, cql: str, timeout: float) -> Any:
    """Send ``cql`` at ALL to ``address`` as the coordinator; the driver's future."""
    host = next((h for h in cluster.metadata.all_hosts() if h.address == address), None)
    if host is None:
        raise InfrastructureError(f"the driver does not know {address}")
    stmt = SimpleStatement(cql, consistency_level=ConsistencyLevel.ALL, fetch_size=5000)
    return session.execute_async(stmt, host=host, timeout=timeout)


class CassandraTopology(NodeBook):
    facts = Facts(detected_kinds=("replica-down",), promoted_kinds=(), leaderless=True)

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = CassandraSettings.model_validate(exp.topology), exp
        self.names = [f"cassandra-{i + 1}" for i in range(self.settings.nodes)]
        self._probe: probe.CopyProbe | None = None
        self._jdk: Jdk | None = None  # the local backend's Java (chosen by version as the ring starts)

    def _spec(self, i: int, name: str, lib: Path, java: str) -> NodeSpec:
        s, d = self.settings, self.workdir / name
        docker = self.backend.name == "docker"
        lib = IMAGE_LIB if docker else lib  # the image's jars (the work directory is mounted at the same path)
        text = dist.config_yaml(name=name, address=self.addresses[name], seeds=[self.addresses[n] for n in self.names],
                                token=dist.tokens(len(self.names))[i], directory=d, phi=s.phi_convict_threshold,
                                read_timeout_ms=s.read_timeout_ms, write_timeout_ms=s.write_timeout_ms,
                                hinted_handoff=s.hinted_handoff, dynamic_snitch=s.dynamic_snitch)
        conf = dist.write_conf(d, text)
        argv = dist.jvm_argv(lib=lib, conf=conf, directory=d, jmx_port=JMX_PORT + i, java=java)
        return NodeSpec(name, argv, d, PORT, env=dist.ENV, extra_ports=(7000,),
                        image=image_for(s.version)[0] if docker else None)

    def up(self, progress: Progress) -> None:
        version, docker = self.settings.version, self.backend.name == "docker"
        self._jdk = None if docker else dist.java_for(version)  # one line, exit 3, when no JDK fits this version
        lib = IMAGE_LIB if docker else dist.ensure_jars(progress, version=version)
        self.addresses = self.backend.prepare(self.names)
        specs = [self._spec(i, n, lib, self._jdk.java if self._jdk else "java") for i, n in enumerate(self.names)]
        t = time.monotonic()
        self._start(specs[0])
        self._wait_cql(self.names[0], 60)
        progress(f"seed {self.names[0]} answers CQL after {time.monotonic() - t:.1f}s")
        for spec in specs[1:]:
            self._start(spec)
            if not self.settings.parallel_start:
                self._wait_cql(spec.name, 60)
        first = self.nodes[self.names[0]].extra.get("image") or image_for(version)[0]  # the stand-in, if run
        where = f"containers of {first}" if docker else f"nodes (Java {self._jdk.major if self._jdk else '?'})"
        progress(f"started {len(self.names)} Cassandra {version} {where} "
                 f"({'others together' if self.settings.parallel_start else 'one after another'})")

    def server(self) -> dict[str, Any] | None:
        """``release_version`` of ``system.local`` and the JVM's ``java.version`` (``system_views``), as the
        first node reports them."""
        try:
            with _session(self._hosts()[:1], 5.0) as (_, session):
                version = session.execute("SELECT release_version FROM system.local").one().release_version
                row = session.execute("SELECT value FROM system_views.system_properties "
                                      "WHERE name = 'java.version'").one()
        except Exception:  # noqa: BLE001 -- no answer: the journal then says nothing of the server
            return None
        java = str(row.value) if row is not None else ""
        major = java.split(".")[0]
        return {"version": str(version), "java": int(major) if major.isdigit() else None, "java_version": java}

    def nodetool(self, node: Node, *args: str, timeout: float = 120.0) -> str:
        """``nodetool ARGS`` beside ``node``; its output. InfrastructureError if it exits non-zero."""
        i = self.names.index(node.name)
        argv = (["nodetool", "-p", str(JMX_PORT + i), *args] if self.backend.name == "docker" else
                dist.nodetool_argv(lib=dist.lib_dir(self.settings.version), directory=self.workdir / node.name,
                                   jmx_port=JMX_PORT + i, args=args, java=self._jdk.java if self._jdk else "java"))
        status, out = self.backend.exec(node, argv, timeout)
        if status != 0:
            raise InfrastructureError(f"`nodetool {' '.join(args)}` on {node.name} exited {status}", out[-1500:])
        return out

    def _wait_cql(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.backend.is_running(self.nodes[name]):
                raise InfrastructureError(f"{name} exited during start-up", self._tail([name]))
            try:
                if _answers(self.addresses[name]):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise InfrastructureError(f"timed out after {timeout:g}s waiting for {name} to answer CQL",
                                  self._tail([name]))

    def wait_ready(self, timeout: float) -> None:
        """Every node answers CQL and lists every other as a peer; the schema is created through one
        coordinator and agreed on by all; then every node, as coordinator, runs a read at ALL."""
        for name in self.names:
            self._wait_cql(name, timeout)
        wait_until(lambda: self._every_node(self._sees_whole_ring), timeout, "every node to see the whole ring",
                   interval=0.5, log_tail=self._tail)
        wait_until(self._create_schema, timeout, "the keyspace and table to be created", interval=0.5,
                   log_tail=self._tail)
        wait_until(self._schema_agreed, timeout, "every node to agree on the schema", interval=0.3,
                   log_tail=self._tail)
        if not self.wait_settled(timeout):
            raise InfrastructureError("timed out waiting for every node to see every replica alive", self._tail())

    def _create_schema(self) -> bool:
        """Idempotent (IF NOT EXISTS): a retry after the table went to a coordinator that had not yet
        learnt of the new keyspace just runs both again."""
        rf = min(self.settings.replication_factor, len(self.names))
        with _session(self._hosts(), 10.0) as (_, session):
            session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
                            f"{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
            session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{TABLE} (p int, id int, PRIMARY KEY (p, id)) "
                            f"WITH CLUSTERING ORDER BY (id DESC) AND speculative_retry = "
                            f"'{self.settings.speculative_retry}'")
        return True

    def _every_node(self, check: Callable[[Cluster, Session, str], bool]) -> bool:
        with _session(self._hosts(), 2.0) as (cluster, session):
            return all(check(cluster, session, address) for address in self._hosts())

    def _sees_whole_ring(self, cluster: Cluster, session: Session, address: str) -> bool:
        peers = _by_host(cluster, session, address, "SELECT peer, tokens FROM system.peers_v2", 2.0)
        return len([p for p in peers if p.tokens]) == len(self.names) - 1

    def _schema_agreed(self) -> bool:
        with _session(self._hosts(), 2.0) as (cluster, session):
            versions = {_by_host(cluster, session, a, "SELECT schema_version FROM system.local", 2.0)[0].schema_version
                        for a in self._hosts()}
        return len(versions) == 1

    def _hosts(self) -> list[str]:
        return [self.addresses[n] for n in self.names]

    # -- roles -----------------------------------------------------------------------------------
    def node_for_address(self, host: str, port: int) -> str | None:
        return node_at(self.nodes, self.names, host, port)

    def roles(self) -> dict[str, str]:
        out = {}
        for name in self.names:
            try:
                out[name] = "up" if _answers(self.addresses[name]) else "down"
            except OSError:
                out[name] = "down"
        return out

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        """A node name; ``any`` (the first running node), ``two`` (the first two), ``all`` / ``others``
        (every node but ``exclude``) -- in node order, as of now."""
        skip = exclude or set()
        if role in self.nodes:
            names = [role]
        elif role in ("any", "two"):
            running = [n for n in self.names if n not in skip and self.backend.is_running(self.nodes[n])]
            names = running[:1 if role == "any" else 2]
            if len(names) < (1 if role == "any" else 2):
                raise InfrastructureError(f"not enough running nodes for {role!r}")
        elif role in ("all", "others"):
            names = [n for n in self.names if n not in skip]
        else:
            raise InfrastructureError(f"unknown role {role!r}")
        return [self.nodes[n] for n in names]

    def client(self, spec: ClientSpec, f: str) -> CassandraClientPattern:
        return CassandraClientPattern(spec.pattern, self._hosts(), timeout_s=spec.timeout_s,
                                      policy=RetryPolicy.from_spec(spec), name_of=self.node_for_address)

    def connection(self) -> CassandraConnection:
        return CassandraConnection(tuple(self._hosts()), nodes=dict(self.addresses))

    # -- events ----------------------------------------------------------------------------------
    def watch(self, sink: EventSink, clock: Callable[[], float]) -> Callable[[], None]:
        stop = threading.Event()
        threading.Thread(target=self._watch, args=(sink, clock, stop), daemon=True, name="watch-cassandra").start()
        if self.settings.probe_node:
            self._probe = copy_probe = probe.CopyProbe(self, sink, clock)

            def stop_both() -> None:
                stop.set()
                copy_probe.stop.set()

            return stop_both
        return stop.set

    def _watch(self, sink: EventSink, clock: Callable[[], float], stop: threading.Event) -> None:
        """Ask every node, as coordinator, for a read at ALL every 0.25 s. While it counts every replica
        alive it runs it (or times out: a dead replica not yet convicted); once its failure detector has
        convicted one it refuses at once with Unavailable -- ``replica-down``; ``replicas-up`` when
        it runs the read again."""
        cql = f"SELECT id FROM {KEYSPACE}.{TABLE} WHERE p = 0 LIMIT 1"
        down: set[str] = set()
        try:
            with _session(self._hosts(), 0.5) as (cluster, session):
                while not stop.wait(0.25):
                    sent = {}
                    for name in self.names:  # all at once: one poll takes at most the 0.5 s timeout
                        try:
                            sent[name] = _send(cluster, session, self.addresses[name], cql, 0.5)
                        except Exception:  # noqa: BLE001 -- the driver has it down: no answer from it
                            continue
                    for name, future in sent.items():
                        try:
                            future.result()
                        except Unavailable as exc:
                            if name not in down:
                                down.add(name)
                                sink(Event(clock(), "cassandra", "replica-down", f"{name} counts "
                                           f"{exc.alive_replicas} of {exc.required_replicas} replicas alive", name))
                            continue
                        except Exception:  # noqa: BLE001 -- down itself, or waiting on a replica it counts alive
                            continue
                        if name in down:
                            down.discard(name)
                            sink(Event(clock(), "cassandra", "replicas-up", f"{name} counts every replica alive",
                                       name))
        except RETRY_ON:
            return  # no node answered at all: nothing to watch

    def wait_settled(self, timeout: float) -> bool:
        """Every node, as coordinator, runs a read at ALL: each counts every replica alive again."""
        cql = f"SELECT id FROM {KEYSPACE}.{TABLE} WHERE p = 0 LIMIT 1"

        def every_node_sees_all() -> bool:
            with _session(self._hosts(), 2.0) as (cluster, session):
                for address in self._hosts():
                    _by_host(cluster, session, address, cql, 2.0)
            return True

        return self._settles(every_node_sees_all, timeout, "every node to see every replica", interval=0.5)

    def final_read(self) -> list[Any]:
        """Every value, read at ALL (every replica answers; differences are repaired as it reads):
        through each node as coordinator in turn, else through whichever the driver picks."""
        if self._probe is not None:
            self._probe.stop.set()  # the read at ALL repairs what it reads: the probe would see that, not hints
        cql = f"SELECT id FROM {KEYSPACE}.{TABLE} WHERE p = 0"
        errors = []
        with _session(self._hosts(), 30.0) as (cluster, session):
            for address in [*self._hosts(), None]:
                try:
                    rows = (_by_host(cluster, session, address, cql, 30.0) if address else
                            session.execute(SimpleStatement(cql, consistency_level=ConsistencyLevel.ALL,
                                                            fetch_size=5000), timeout=30.0))
                    values = sorted(int(row.id) for row in rows)
                    if self._probe is not None:
                        self._probe.conclude(values)
                    return values
                except (*RETRY_ON, InfrastructureError) as exc:
                    errors.append(f"{address or 'any'}: {type(exc).__name__}: {exc}")
        raise InfrastructureError("no coordinator answered the final read at ALL: " + "; ".join(errors)[:400])
