"""The Postgres topology: Patroni + etcd (+ HAProxy), watched through Patroni's REST API; the workload's
clients (imports psycopg)."""

from __future__ import annotations

import functools
import json
import os
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import yaml

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.endpoint import name_cache
from chaoskit.clients.postgres import DnsPostgresClient, PostgresClient
from chaoskit.clients.retry import RetryPolicy
from chaoskit.dns import DNS_PATTERNS, patroni_hook
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.systems.base import Event, EventSink, Facts, NodeBook, Progress, node_at, resolve_role, wait_until
from chaoskit.systems.postgres.connection import PostgresConnection
from chaoskit.systems.postgres.settings import (
    ETCD_NAMES,
    READER_PORT,
    REST_PORT,
    SYSTEM_IMAGE,
    TABLE,
    WRITER_PORT,
    PostgresSettings,
    etcd_argv,
    haproxy_conf,
    patroni_conf,
    pg_names,
)


def _get(node: Node, path: str, timeout: float = 0.5) -> Any:
    """GET a Patroni REST endpoint of ``node`` (JSON)."""
    host, port = node.endpoint(REST_PORT)
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read() or b"{}")


def _can_connect(dsn: str) -> bool:
    with psycopg.connect(dsn):
        return True


def _conninfo(hosts: list[tuple[str, int]], attrs: str | None) -> str:
    out = (f"host={','.join(h for h, _ in hosts)} port={','.join(str(p) for _, p in hosts)} dbname=postgres "
           "user=postgres password=chaoskit connect_timeout=2")
    return f"{out} target_session_attrs={attrs}" if attrs else out


class PostgresTopology(NodeBook):
    facts = Facts(detected_kinds=("leader-lost",), promoted_kinds=("new-leader",))

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = PostgresSettings.model_validate(exp.topology), exp
        self.pg_names = pg_names(self.settings)
        self.etcd_names = list(ETCD_NAMES)
        self.proxy_names = ["proxy"] if self.settings.proxy else []

    def up(self, progress: Progress) -> None:
        self.addresses = self.backend.prepare(self.etcd_names + self.pg_names + self.proxy_names + list(self.aside))
        etcd_addresses = {n: self.addresses[n] for n in self.etcd_names}
        for name in self.etcd_names:
            self._start(NodeSpec(name, etcd_argv(name, etcd_addresses, str(self.workdir / name / "data")),
                                 self.workdir / name, 2379, image=os.environ.get(*SYSTEM_IMAGE)))
        etcd = [f"{self.addresses[n]}:2379" for n in self.etcd_names]
        for name in self.pg_names:
            d = self.workdir / name
            d.mkdir(parents=True, exist_ok=True)
            conf = patroni_conf(name, self.addresses[name], d / "data", etcd, self.settings)
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
            (d / "haproxy.cfg").write_text(haproxy_conf({n: self.addresses[n] for n in self.pg_names}))
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
