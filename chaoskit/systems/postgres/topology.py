"""PostgreSQL primary + streaming replicas with automatic failover: the RDS Multi-AZ / Aurora stand-in.

Patroni (Debian's 3.0) manages each Postgres node and keeps the leader lock in a 3-member etcd
cluster; when the leader's lock expires (ttl) a replica is promoted. This is the field's standard
for self-managed Postgres HA. Lab-tuned: ttl 10 s, loop_wait 1 s, wal_sender_timeout 5 s (the
default made an old leader's demotion take ~52 s here).
"""

from __future__ import annotations

import functools
import json
import os
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass as fault_model

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.endpoint import DNS_PATTERNS, DnsPostgresClient, name_cache
from chaoskit.clients.postgres import PATTERNS, TABLE, PostgresClient
from chaoskit.clients.retry import RetryPolicy
from chaoskit.dns import patroni_hook, validate_dns_client
from chaoskit.errors import InfrastructureError
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.faults import CONFIG, NativeFault, kind_of, register
from chaoskit.systems.base import (
    ComposeNode,
    Event,
    EventSink,
    Facts,
    ImageOf,
    LocalImage,
    NodeBook,
    Progress,
    System,
    Topology,
    node_at,
    own_topology,
    resolve_role,
    validate_experiment,
    wait_until,
)
from chaoskit.toxics import TOXIC_KINDS, uses_toxics

SYSTEM_IMAGE = ("CHAOSKIT_POSTGRES_IMAGE", "chaoskit/postgres-patroni:15")
ROLES = ("primary", "replica", "replicas", "etcd", "proxy", "others", "all")
WRITER_PORT, READER_PORT, REST_PORT = 5000, 5001, 8008
PG_BIN = os.environ.get("CHAOSKIT_PG_BIN", "/usr/lib/postgresql/15/bin")


class PostgresSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    replicas: int = Field(2, ge=1, le=4)
    ttl: int = Field(10, ge=5)
    loop_wait: int = Field(1, ge=1)
    retry_timeout: int = Field(4, ge=1)
    synchronous: bool = False
    wal_sender_timeout: str = "5s"
    proxy: bool = Field(False, description="HAProxy writer (5000) / reader (5001) endpoints on Patroni health checks")
    unique_key: bool = Field(True, description="the workload's table has a primary key, which makes its "
                                                "INSERT ... ON CONFLICT DO NOTHING idempotent; false: it has none")


def _get(node: Node, path: str, timeout: float = 0.5) -> Any:
    """GET a Patroni REST endpoint of ``node`` (JSON)."""
    host, port = node.endpoint(REST_PORT)
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read() or b"{}")


def _patroni_conf(name: str, addr: str, datadir: Path, etcd: list[str], s: PostgresSettings) -> dict[str, Any]:
    params = {"wal_sender_timeout": s.wal_sender_timeout, "unix_socket_directories": str(datadir.parent),
              "max_connections": 50, "shared_buffers": "32MB", "fsync": "on",
              # a replica whose first attempt beat its slot retries in 0.5 s instead of 5 s
              "wal_retrieve_retry_interval": "500ms"}
    dcs_pg: dict[str, Any] = {"use_pg_rewind": True, "parameters": {"wal_log_hints": "on", **params}}
    dcs: dict[str, Any] = {"ttl": s.ttl, "loop_wait": s.loop_wait, "retry_timeout": s.retry_timeout,
                           "maximum_lag_on_failover": 1 << 30, "postgresql": dcs_pg}
    if s.synchronous:
        dcs.update(synchronous_mode=True, synchronous_mode_strict=False)
    return {
        "scope": "chaoskit", "name": name,
        "restapi": {"listen": f"{addr}:8008", "connect_address": f"{addr}:8008"},
        "etcd3": {"hosts": etcd},
        "bootstrap": {"dcs": dcs, "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
                      "pg_hba": ["host replication replicator 0.0.0.0/0 trust", "host all all 0.0.0.0/0 trust",
                                 "local all all trust"]},
        "postgresql": {
            "listen": f"{addr}:5432", "connect_address": f"{addr}:5432", "data_dir": str(datadir),
            "bin_dir": PG_BIN, "pgpass": str(datadir.parent / "pgpass"),
            "authentication": {"replication": {"username": "replicator", "password": "chaoskit"},
                               "superuser": {"username": "postgres", "password": "chaoskit"}},
            "parameters": params,
        },
    }


def _etcd_argv(name: str, members: dict[str, str], datadir: str) -> tuple[str, ...]:
    a = members[name]
    cluster = ",".join(f"{n}=http://{addr}:2380" for n, addr in members.items())
    return ("etcd", "--name", name, "--data-dir", datadir,
            "--listen-client-urls", f"http://{a}:2379", "--advertise-client-urls", f"http://{a}:2379",
            "--listen-peer-urls", f"http://{a}:2380", "--initial-advertise-peer-urls", f"http://{a}:2380",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "chaoskit", "--heartbeat-interval", "100", "--election-timeout", "1000")


def _can_connect(dsn: str) -> bool:
    with psycopg.connect(dsn):
        return True


def _haproxy_conf(servers: dict[str, str]) -> str:
    """Writer/reader endpoints routed by Patroni's REST health checks (the RDS Proxy / Aurora endpoint analog)."""
    out = ["global", "  maxconn 200", "defaults", "  mode tcp", "  timeout connect 1s", "  timeout client 30m",
           "  timeout server 30m", "  timeout check 1s"]
    for name, port, check in (("writer", WRITER_PORT, "/primary"), ("reader", READER_PORT, "/replica")):
        out += [f"listen {name}", f"  bind *:{port}", f"  option httpchk GET {check}", "  http-check expect status 200",
                "  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions"]
        out += [f"  server {n} {addr}:5432 check port 8008" for n, addr in servers.items()]
    return "\n".join(out) + "\n"


@register
@fault_model(frozen=True, config=CONFIG)
class Switchover(NativeFault):
    """Planned promotion of a replica through Patroni (the upgrade-by-replica path); nothing to heal."""

    kind: Literal["switchover"] = field(default="switchover", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        leader = own_topology(topology, PostgresTopology, self.kind).resolve("primary")[0]
        body = json.dumps({"leader": leader.name}).encode()
        host, port = leader.endpoint(REST_PORT)
        req = urllib.request.Request(f"http://{host}:{port}/switchover", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            if resp.status != 200:
                raise InfrastructureError(f"switchover refused: {resp.read().decode()[:200]}")
        return [leader]


def _conninfo(hosts: list[tuple[str, int]], attrs: str | None) -> str:
    out = (f"host={','.join(h for h, _ in hosts)} port={','.join(str(p) for _, p in hosts)} dbname=postgres "
           "user=postgres password=chaoskit connect_timeout=2")
    return f"{out} target_session_attrs={attrs}" if attrs else out


@dataclass(frozen=True)
class PostgresConnection:
    """How your own psycopg reaches the cluster, as on RDS / Aurora.

    ``conninfo``: every node, ``target_session_attrs=read-write`` (libpq finds the primary itself, and
    again after a failover when you reconnect). ``writer_dsn`` / ``reader_dsn``: the HAProxy writer and
    reader endpoints with ``proxy: true`` (the RDS Proxy / Aurora endpoint analog), else every node with
    ``read-write`` / ``prefer-standby``. ``hosts``: node name -> where this process reaches it.
    """

    conninfo: str
    writer_dsn: str
    reader_dsn: str
    hosts: dict[str, tuple[str, int]]
    proxy: bool = False

    def client(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection to the primary through ``conninfo``; ``kwargs`` go to ``psycopg.connect``
        (e.g. ``autocommit=True``). After a failover, open a new one: libpq picks the new primary."""
        return psycopg.connect(self.conninfo, **kwargs)


class PostgresTopology(NodeBook):
    facts = Facts(detected_kinds=("leader-lost",), promoted_kinds=("new-leader",))

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = PostgresSettings.model_validate(exp.topology), exp
        self.pg_names = [f"pg-{i + 1}" for i in range(self.settings.replicas + 1)]
        self.etcd_names = ["etcd-1", "etcd-2", "etcd-3"]
        self.proxy_names = ["proxy"] if self.settings.proxy else []

    def up(self, progress: Progress) -> None:
        self.addresses = self.backend.prepare(self.etcd_names + self.pg_names + self.proxy_names + list(self.aside))
        etcd_addresses = {n: self.addresses[n] for n in self.etcd_names}
        for name in self.etcd_names:
            self._start(NodeSpec(name, _etcd_argv(name, etcd_addresses, str(self.workdir / name / "data")),
                                 self.workdir / name, 2379, image=os.environ.get(*SYSTEM_IMAGE)))
        etcd = [f"{self.addresses[n]}:2379" for n in self.etcd_names]
        for name in self.pg_names:
            d = self.workdir / name
            d.mkdir(parents=True, exist_ok=True)
            conf = _patroni_conf(name, self.addresses[name], d / "data", etcd, self.settings)
            if self.dns is not None:  # the records follow the roles through Patroni's own callbacks
                hook = d / "dns-hook.sh"
                hook.write_text(patroni_hook(self.dns, name, self.addresses[name]))
                hook.chmod(0o755)
                conf["postgresql"]["callbacks"] = {"on_start": str(hook), "on_role_change": str(hook)}
            (d / "patroni.yml").write_text(yaml.safe_dump(conf, sort_keys=False))
            self._start(NodeSpec(name, ("patroni", str(d / "patroni.yml")), d, 5432, user="postgres",
                                 image=os.environ.get(*SYSTEM_IMAGE), extra_ports=(REST_PORT,)))
        for name in self.proxy_names:
            d = self.workdir / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "haproxy.cfg").write_text(_haproxy_conf({n: self.addresses[n] for n in self.pg_names}))
            self._start(NodeSpec(name, ("haproxy", "-db", "-f", str(d / "haproxy.cfg")), d, WRITER_PORT,
                                 image=os.environ.get(*SYSTEM_IMAGE), extra_ports=(READER_PORT,)))
        progress(f"started {len(self.etcd_names)} etcd + {len(self.pg_names)} Patroni/Postgres nodes"
                 + (" + HAProxy" if self.proxy_names else ""))

    def _cluster(self) -> dict[str, dict[str, Any]]:
        """Patroni's view of the members (name -> member), from the first node that answers."""
        for name in self.pg_names:
            try:
                return {m["name"]: m for m in _get(self.nodes[name], "/cluster", 0.3).get("members", [])}
            except OSError:
                continue
        return {}

    def _healthy(self, caught_up: bool) -> bool:
        members = self._cluster()
        leaders = [m for m in members.values() if m.get("role") in ("leader", "master", "primary")]
        if len(leaders) != 1 or leaders[0].get("state") != "running" or len(members) != len(self.pg_names):
            return False
        replicas = [m for m in members.values() if m not in leaders]
        ok = all(m.get("state") in ("running", "streaming") for m in replicas)
        return ok and (not caught_up or all(m.get("lag", 1) == 0 for m in replicas))

    def wait_ready(self, timeout: float) -> None:
        self._check_running()
        wait_until(lambda: self._healthy(caught_up=False), timeout, "a Patroni leader and streaming replicas",
                   interval=0.25, log_tail=self._tail)
        # Patroni says "running" for a replica that is up but not yet streaming (its slot may not exist
        # yet): a failover then would promote a node without the data.  Ready means every replica streams.
        wait_until(self._all_streaming, timeout, f"{len(self.pg_names) - 1} replicas streaming from the primary",
                   interval=0.25, log_tail=self._tail)
        with psycopg.connect(self._dsn(self.resolve("primary")[0]), autocommit=True) as conn:
            key = " PRIMARY KEY" if self.settings.unique_key else ""
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (v bigint{key})")
        for name in self.proxy_names:  # each endpoint routes once its health checks passed
            for port_in, what in ((WRITER_PORT, "writer"), (READER_PORT, "reader")):
                host, port = self.nodes[name].endpoint(port_in)
                dsn = f"host={host} port={port} dbname=postgres user=postgres connect_timeout=2"
                wait_until(functools.partial(_can_connect, dsn), timeout, f"the HAProxy {what} endpoint",
                           interval=0.25, log_tail=self._tail)

    def _all_streaming(self) -> bool:
        with psycopg.connect(self._dsn(self.resolve("primary")[0]), autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()
        return row is not None and row[0] >= len(self.pg_names) - 1

    def _dsn(self, node: Node) -> str:
        host, port = node.client_addr
        return f"host={host} port={port} dbname=postgres user=postgres password=chaoskit connect_timeout=5"

    def node_for_address(self, host: str, port: int) -> str | None:
        if self.client_path is not None and (name := self.client_path.node_at(host, port)) is not None:
            return name
        return node_at(self.nodes, self.pg_names, host, port)

    def client_nodes(self) -> list[str]:
        return list(self.pg_names)

    def _reach(self, name: str) -> tuple[str, int]:
        """Where the workload client connects to a Postgres node: its proxy when toxic faults put one
        on the client path, else its client address."""
        node = self.nodes[name]
        routed = self.client_path.route((node.address, node.port)) if self.client_path is not None else None
        return routed or node.client_addr

    def roles(self) -> dict[str, str]:
        out = {}
        for name in self.pg_names:
            try:
                role = _get(self.nodes[name], "/patroni", 0.5).get("role")
                out[name] = "primary" if role in ("master", "primary") else "replica"
            except OSError:
                out[name] = "down"
        return out

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        def leader() -> str | None:
            return next((n for n, m in self._cluster().items() if m.get("role") in ("leader", "master")), None)

        return resolve_role(role, self.nodes, self.pg_names, leader,
                            {"etcd": self.etcd_names, "proxy": self.proxy_names}, exclude)

    def publish_dns(self) -> tuple[str, ...]:
        """``writer`` -> the primary, ``reader`` -> every replica (round robin), from the roles now."""
        assert self.dns is not None
        for name, role in self.roles().items():
            if role == "primary":
                self.dns.write("writer", [(self.addresses[name], "writer")])
            self.dns.write(f"reader-{name}", [(self.addresses[name], "reader")] if role == "replica" else [])
        return ("writer", "reader")

    def client(self, spec: ClientSpec, f: str) -> PostgresClient:
        reading = f == "read" and self.exp.workload.read_from == "replica"
        if spec.pattern in DNS_PATTERNS:
            assert self.dns is not None
            names = name_cache(spec.pattern, self.dns.server, self.dns.name("reader" if reading else "writer"),
                               spec.options, spec.timeout_s)
            timeout = spec.options.get("statement_timeout_s")
            return DnsPostgresClient(names, 5432, pattern=spec.pattern, f=f, timeout_s=spec.timeout_s,
                                     policy=RetryPolicy.from_spec(spec), name_of=self.node_for_address,
                                     session_attrs="prefer-standby" if reading else "any",
                                     statement_timeout_s=None if timeout is None else float(timeout),
                                     socket_timeout=bool(spec.options.get("socket_timeout", False)))
        if spec.pattern == "proxy-backoff":
            proxy = self.nodes["proxy"]
            hosts = [proxy.endpoint(READER_PORT if reading else WRITER_PORT)]
        else:
            hosts = [self._reach(n) for n in self.pg_names]
        attrs = "prefer-standby" if reading else "read-write"
        statement_timeout = spec.options.get("statement_timeout_s")
        return PostgresClient(spec.pattern, hosts, f=f, timeout_s=spec.timeout_s, policy=RetryPolicy.from_spec(spec),
                              name_of=self.node_for_address, session_attrs=attrs,
                              statement_timeout_s=None if statement_timeout is None else float(statement_timeout),
                              socket_timeout=bool(spec.options.get("socket_timeout", False)))

    def connection(self) -> PostgresConnection:
        hosts = [self._reach(n) for n in self.pg_names]
        writer, reader = _conninfo(hosts, "read-write"), _conninfo(hosts, "prefer-standby")
        if self.proxy_names:
            proxy = self.nodes[self.proxy_names[0]]
            writer = _conninfo([proxy.endpoint(WRITER_PORT)], None)
            reader = _conninfo([proxy.endpoint(READER_PORT)], None)
        return PostgresConnection(_conninfo(hosts, "read-write"), writer, reader,
                                  {n: self._reach(n) for n in self.pg_names}, bool(self.proxy_names))

    def watch(self, sink: EventSink, clock: Callable[[], float]) -> Callable[[], None]:
        stop = threading.Event()
        threading.Thread(target=self._watch, args=(sink, clock, stop), daemon=True, name="watch-patroni").start()
        return stop.set

    def _watch(self, sink: EventSink, clock: Callable[[], float], stop: threading.Event) -> None:
        """Poll Patroni's member list; report when the leader lock is lost and when a new leader holds it."""
        current: str | None = None  # who holds the lock now (None: nobody)
        last: str | None = None  # the last node that held it
        while not stop.wait(0.1):
            members = self._cluster()
            if not members:
                continue
            now = next((n for n, m in members.items() if m.get("role") in ("leader", "master")), None)
            if now == current:
                continue
            if current is not None:
                sink(Event(clock(), "patroni", "leader-lost", f"leader lock of {current} gone", current))
            if now is not None and last is not None and now != last:
                sink(Event(clock(), "patroni", "new-leader", f"{now} holds the leader lock", now))
            current, last = now, now or last

    def wait_settled(self, timeout: float) -> bool:
        return self._settles(lambda: self._healthy(caught_up=True), timeout, "the cluster to settle")

    def final_read(self) -> list[Any]:
        with psycopg.connect(self._dsn(self.resolve("primary")[0]), autocommit=True) as conn:
            return sorted(int(r[0]) for r in conn.execute(f"SELECT v FROM {TABLE}").fetchall())


class PostgresSystem(ImageOf):
    name, image = "postgres", SYSTEM_IMAGE
    run_weight = 1.0
    local_image = LocalImage("chaoskit/postgres-patroni:15", "postgres")  # Debian: PostgreSQL 15, Patroni, etcd
    client_patterns, roles, settings_model = (*PATTERNS, *DNS_PATTERNS), ROLES, PostgresSettings
    native_faults = (kind_of(Switchover), *TOXIC_KINDS)  # toxics: the client path (multi-host clients)

    def validate(self, exp: Experiment) -> None:
        validate_experiment(exp, PostgresSettings, self.client_patterns, self.native_faults, ROLES,
                            lambda s: {f"pg-{i + 1}" for i in range(s.replicas + 1)} | {"etcd-1", "etcd-2", "etcd-3"},
                            client_options=("statement_timeout_s", "socket_timeout", "cache_s"), dns=True, cache=True)
        if exp.cache is not None and exp.client.factory:
            raise ValueError("cache: the cache-aside workload is built in; it does not wrap your own client")
        validate_dns_client(exp)
        if exp.client.pattern == "proxy-backoff" and not exp.topology.get("proxy"):
            raise ValueError("client.pattern: proxy-backoff needs topology.proxy: true")
        if exp.client.pattern == "proxy-backoff" and uses_toxics(list(exp.faults)):
            raise ValueError("client.pattern: toxic faults act on the client's own links to the nodes; "
                             "proxy-backoff reaches them through HAProxy (use multihost-backoff)")

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> PostgresTopology:
        return PostgresTopology(exp, backend, workdir)

    def binaries(self) -> dict[str, str]:
        return {"patroni": "apt-get install -y patroni", "etcd": "apt-get install -y etcd-server",
                "haproxy": "apt-get install -y haproxy",
                f"{PG_BIN}/postgres": "apt-get install -y postgresql-15"}

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """etcd on its official image; Patroni + Postgres built on the official postgres image (there is no
        official Patroni image); HAProxy writer/reader endpoints on the official haproxy image."""
        s = PostgresSettings(proxy=True)
        pg = [f"pg-{i + 1}" for i in range(s.replicas + 1)]
        etcd = ["etcd-1", "etcd-2", "etcd-3"]
        addr = {name: f"{net}.{10 + i}" for i, name in enumerate([*pg, *etcd, "proxy"])}
        etcd_addr = {n: addr[n] for n in etcd}
        nodes = []
        for name in pg:
            conf = _patroni_conf(name, addr[name], Path(f"/var/lib/postgresql/{name}/data"),
                                 [f"{etcd_addr[n]}:2379" for n in etcd], s)
            path = f"/var/lib/postgresql/{name}/patroni.yml"
            nodes.append(ComposeNode(name, addr[name], ("patroni", path),
                                     files=((path, yaml.safe_dump(conf, sort_keys=False)),), user="postgres",
                                     build=("postgres", "CHAOSKIT_POSTGRES_BASE", "postgres:15")))
        nodes += [ComposeNode(n, addr[n], _etcd_argv(n, etcd_addr, "/tmp/etcd-data"),  # noqa: S108
                              image=("CHAOSKIT_ETCD_IMAGE", "quay.io/coreos/etcd:v3.5.17")) for n in etcd]
        nodes.append(ComposeNode("proxy", addr["proxy"], ("haproxy", "-db", "-f", "/tmp/haproxy.cfg"),  # noqa: S108
                                 files=(("/tmp/haproxy.cfg", _haproxy_conf({n: addr[n] for n in pg})),),  # noqa: S108
                                 image=("CHAOSKIT_HAPROXY_IMAGE", "haproxy:2.8")))
        return nodes


SYSTEM: System = PostgresSystem()  # typed: mypy checks it against the System protocol
