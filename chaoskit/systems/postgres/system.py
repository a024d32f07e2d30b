"""The Postgres system (no driver): validation, images, binaries, the Compose lab; the topology on demand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from chaoskit.backends.base import Backend
from chaoskit.dns import DNS_PATTERNS, validate_dns_client
from chaoskit.drivers import Driver
from chaoskit.experiment import Experiment
from chaoskit.faults import kind_of
from chaoskit.systems.base import ComposeNode, ImageOf, LocalImage, System, validate_experiment
from chaoskit.systems.postgres.faults import Switchover
from chaoskit.systems.postgres.settings import (
    ETCD_NAMES,
    PATTERNS,
    PG_BIN,
    ROLES,
    SYSTEM_IMAGE,
    PostgresSettings,
    etcd_argv,
    haproxy_conf,
    patroni_conf,
    pg_names,
)
from chaoskit.toxics import TOXIC_KINDS, uses_toxics

if TYPE_CHECKING:
    from chaoskit.systems.postgres.topology import PostgresTopology


class PostgresSystem(ImageOf):
    name, image = "postgres", SYSTEM_IMAGE
    drivers = (Driver("psycopg", "psycopg"),)  # the DNS endpoints' dnspython: chaoskit.dns.DRIVER
    run_weight = 1.0
    local_image = LocalImage("chaoskit/postgres-patroni:15", "postgres")  # Debian: PostgreSQL 15, Patroni, etcd
    client_patterns, roles, settings_model = (*PATTERNS, *DNS_PATTERNS), ROLES, PostgresSettings
    native_faults = (kind_of(Switchover), *TOXIC_KINDS)  # toxics: the client path (multi-host clients)

    def validate(self, exp: Experiment) -> None:
        """Raise ValueError (one line, naming the field) if the experiment does not fit Postgres."""
        validate_experiment(exp, PostgresSettings, self.client_patterns, self.native_faults, ROLES,
                            lambda s: {*pg_names(s), *ETCD_NAMES},
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
        """The topology (not started); imports psycopg."""
        from chaoskit.systems.postgres.topology import PostgresTopology

        return PostgresTopology(exp, backend, workdir)

    def binaries(self) -> dict[str, str]:
        """Patroni, etcd, HAProxy and PostgreSQL 15, from apt."""
        return {"patroni": "apt-get install -y patroni", "etcd": "apt-get install -y etcd-server",
                "haproxy": "apt-get install -y haproxy",
                f"{PG_BIN}/postgres": "apt-get install -y postgresql-15"}

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """etcd on its official image; Patroni + Postgres built on the official postgres image (there is no
        official Patroni image); HAProxy writer/reader endpoints on the official haproxy image."""
        s = PostgresSettings(proxy=True)
        pg, etcd = pg_names(s), list(ETCD_NAMES)
        addr = {name: f"{net}.{10 + i}" for i, name in enumerate([*pg, *etcd, "proxy"])}
        etcd_addr = {n: addr[n] for n in etcd}
        nodes = []
        for name in pg:
            conf = patroni_conf(name, addr[name], Path(f"/var/lib/postgresql/{name}/data"),
                                 [f"{etcd_addr[n]}:2379" for n in etcd], s)
            path = f"/var/lib/postgresql/{name}/patroni.yml"
            nodes.append(ComposeNode(name, addr[name], ("patroni", path),
                                     files=((path, yaml.safe_dump(conf, sort_keys=False)),), user="postgres",
                                     build=("postgres", "CHAOSKIT_POSTGRES_BASE", "postgres:15")))
        nodes += [ComposeNode(n, addr[n], etcd_argv(n, etcd_addr, "/tmp/etcd-data"),  # noqa: S108
                              image=("CHAOSKIT_ETCD_IMAGE", "quay.io/coreos/etcd:v3.5.17")) for n in etcd]
        nodes.append(ComposeNode("proxy", addr["proxy"], ("haproxy", "-db", "-f", "/tmp/haproxy.cfg"),  # noqa: S108
                                 files=(("/tmp/haproxy.cfg", haproxy_conf({n: addr[n] for n in pg})),),  # noqa: S108
                                 image=("CHAOSKIT_HAPROXY_IMAGE", "haproxy:2.8")))
        return nodes


SYSTEM: System = PostgresSystem()  # typed: mypy checks it against the System protocol
