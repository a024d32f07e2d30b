"""Postgres's settings and names (no driver): the ``topology:`` knobs, the fault targets, the client
patterns, and the configuration of Patroni, etcd and HAProxy (the topology's and the Compose lab's)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SYSTEM_IMAGE = ("CHAOSKIT_POSTGRES_IMAGE", "chaoskit/postgres-patroni:15")
ROLES = ("primary", "replica", "replicas", "etcd", "proxy", "others", "all")
# the workload client's patterns (chaoskit.clients.postgres; the DNS ones are chaoskit.dns.DNS_PATTERNS)
PATTERNS = ("multihost-backoff", "single-host-no-retry", "proxy-backoff")
TABLE = "chaoskit_writes"
ETCD_NAMES = ("etcd-1", "etcd-2", "etcd-3")
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


def pg_names(s: PostgresSettings) -> list[str]:
    """The Postgres nodes (the first is the initial leader)."""
    return [f"pg-{i + 1}" for i in range(s.replicas + 1)]


def patroni_conf(name: str, addr: str, datadir: Path, etcd: list[str], s: PostgresSettings) -> dict[str, Any]:
    """One node's ``patroni.yml`` (as a mapping): the lab's DCS timings, trust authentication, its data dir."""
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


def etcd_argv(name: str, members: dict[str, str], datadir: str) -> tuple[str, ...]:
    """One etcd member of the 3-member cluster the Patroni nodes keep their leader lock in."""
    a = members[name]
    cluster = ",".join(f"{n}=http://{addr}:2380" for n, addr in members.items())
    return ("etcd", "--name", name, "--data-dir", datadir,
            "--listen-client-urls", f"http://{a}:2379", "--advertise-client-urls", f"http://{a}:2379",
            "--listen-peer-urls", f"http://{a}:2380", "--initial-advertise-peer-urls", f"http://{a}:2380",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "chaoskit", "--heartbeat-interval", "100", "--election-timeout", "1000")


def haproxy_conf(servers: dict[str, str]) -> str:
    """Writer/reader endpoints routed by Patroni's REST health checks (the RDS Proxy / Aurora endpoint analog)."""
    out = ["global", "  maxconn 200", "defaults", "  mode tcp", "  timeout connect 1s", "  timeout client 30m",
           "  timeout server 30m", "  timeout check 1s"]
    for name, port, check in (("writer", WRITER_PORT, "/primary"), ("reader", READER_PORT, "/replica")):
        out += [f"listen {name}", f"  bind *:{port}", f"  option httpchk GET {check}", "  http-check expect status 200",
                "  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions"]
        out += [f"  server {n} {addr}:5432 check port 8008" for n, addr in servers.items()]
    return "\n".join(out) + "\n"
