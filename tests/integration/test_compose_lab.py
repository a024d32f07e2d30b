"""The standalone Compose lab comes up with plain docker compose and Sentinel sees everyone."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
]
ROOT = Path(__file__).resolve().parents[2]


def _compose() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "need docker compose (v2) or docker-compose (v1)"
    return ["docker-compose"]


@contextlib.contextmanager
def _lab(system: str, net: str, images: dict[str, str] | None = None,
         *up_args: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    """``compose/<system>.yml`` up as a project of its own on ``net`` (``images``: variable -> the local image
    used unless the variable is set); yields the compose command and its environment; always ``down -v``."""
    env = {**os.environ, "CHAOSKIT_LAB_NET": net,
           **{var: os.environ.get(var, default) for var, default in (images or {}).items()}}
    base = [*_compose(), "-f", str(ROOT / "compose" / f"{system}.yml"), "-p", f"cklab{system}{os.getpid()}"]
    up = subprocess.run([*base, "up", "-d", *up_args], env=env, capture_output=True, text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        yield base, env
    finally:
        subprocess.run([*base, "down", "-v"], env=env, capture_output=True, timeout=120)


def test_redis_lab_comes_up_and_sentinels_see_all() -> None:
    with _lab("redis", "10.217.0") as (base, env):
        deadline, seen = time.monotonic() + 40, ""
        while time.monotonic() < deadline:
            seen = subprocess.run([*base, "exec", "-T", "sentinel-3", "redis-cli", "-p", "26379", "sentinel",
                                   "master", "mymaster"], env=env, capture_output=True, text=True).stdout
            fields = dict(zip(seen.split()[::2], seen.split()[1::2], strict=False))
            if fields.get("num-slaves") == "2" and fields.get("num-other-sentinels") == "2":
                break
            time.sleep(1)
        else:
            raise AssertionError(f"sentinel-3 never saw 2 replicas and 2 sentinels:\n{seen}")
        assert fields["ip"] == "10.217.0.10"


def _connect(psycopg: Any, dsn: str, timeout: float = 20.0) -> Any:
    """A connection through an HAProxy endpoint, retried until its health checks let one through."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_postgres_lab_elects_a_leader_and_the_writer_endpoint_takes_writes() -> None:
    """Patroni (built on the postgres image) + etcd + HAProxy with plain compose; CI points the etcd and
    haproxy services at the locally built image, which carries both (no registry here)."""
    import json
    import urllib.request

    import psycopg

    image = os.environ.get("CHAOSKIT_POSTGRES_IMAGE", "chaoskit/postgres-patroni:15")
    images = {"CHAOSKIT_POSTGRES_IMAGE": image, "CHAOSKIT_ETCD_IMAGE": image, "CHAOSKIT_HAPROXY_IMAGE": image}
    with _lab("postgres", "10.217.1", images, "--no-build") as (base, env):
        deadline, members = time.monotonic() + 90, []
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://10.217.1.11:8008/cluster", timeout=1) as resp:  # noqa: S310
                    members = json.loads(resp.read())["members"]
            except OSError:
                members = []
            states = sorted((m["role"], m["state"]) for m in members)
            if len(states) == 3 and sum(r in ("leader", "master") for r, _ in states) == 1 \
                    and all(s in ("running", "streaming") for _, s in states):
                break
            time.sleep(1)
        else:
            logs = subprocess.run([*base, "logs", "--tail", "15"], env=env, capture_output=True, text=True).stdout
            raise AssertionError(f"no leader with two streaming replicas: {members}\n{logs}")
        dsn = "host=10.217.1.16 port=5000 user=postgres dbname=postgres connect_timeout=3"
        with _connect(psycopg, dsn) as conn:  # the writer endpoint
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            conn.execute("CREATE TABLE lab (v int)")
            conn.execute("INSERT INTO lab VALUES (7)")
        # the reader endpoint: HAProxy closes connections until a standby passes its /replica check
        with _connect(psycopg, dsn.replace("5000", "5001")) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def test_mongo_lab_initiates_the_set_and_takes_majority_writes() -> None:
    """Three mongod and the one-shot mongosh initiator with plain compose."""
    from pymongo import MongoClient

    with _lab("mongo", "10.217.2", {"CHAOSKIT_MONGO_IMAGE": "chaoskit/mongo:6"}) as (base, env):
        client: MongoClient[dict[str, object]] = MongoClient(
            [f"10.217.2.{i}:27017" for i in (10, 11, 12)], replicaSet="rs0", serverSelectionTimeoutMS=60000,
            w="majority", wTimeoutMS=10000)
        with client:
            client.lab.items.insert_one({"_id": 7})  # waits (server selection) for the set to elect a primary
            deadline, hello = time.monotonic() + 30, {}
            while time.monotonic() < deadline:
                hello = client.admin.command("hello")
                if len(hello.get("hosts", [])) == 3 and len(client.secondaries) == 2:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"the set never showed a primary and two secondaries: {hello}")
            assert client.lab.items.find_one({"_id": 7}) == {"_id": 7}
        status = subprocess.run(["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={base[-1]}",
                                 "--filter", "label=com.docker.compose.service=init", "--format", "{{.Status}}"],
                                capture_output=True, text=True).stdout
        assert status.startswith("Exited (0)"), status


def test_memcached_lab_spreads_keys_over_three_independent_nodes() -> None:
    """Three memcached with plain compose; the HashClient spreads keys over all three, each node holds only its own."""
    from pymemcache.client.base import Client
    from pymemcache.client.hash import HashClient

    with _lab("memcached", "10.217.3", {"CHAOSKIT_MEMCACHED_IMAGE": "chaoskit/memcached:1.6"}) as (base, env):
        servers = [(f"10.217.3.{i}", 11211) for i in (10, 11, 12)]
        deadline = time.monotonic() + 30
        while True:
            try:
                assert all(Client(s, connect_timeout=1, timeout=1).version() for s in servers)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        client = HashClient(servers, default_noreply=False)
        keys = [f"k{i}" for i in range(60)]
        assert all(client.set(k, b"v") for k in keys)
        held = [len(Client(s, timeout=1).get_many(keys)) for s in servers]
        assert sum(held) == 60 and min(held) > 5, held  # every key on exactly one node: no replication


def test_cassandra_lab_forms_a_ring_that_takes_quorum_writes() -> None:
    """Three nodes started together with plain compose; CI points it at the locally built image."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import Cluster
    from cassandra.query import SimpleStatement

    with _lab("cassandra", "10.217.4", {"CHAOSKIT_CASSANDRA_IMAGE": "chaoskit/cassandra:5.0"}) as (base, env):
        deadline, status = time.monotonic() + 120, ""
        while time.monotonic() < deadline:
            status = subprocess.run([*base, "exec", "-T", "cassandra-3", "nodetool", "-p", "7199", "status"], env=env,
                                    capture_output=True, text=True).stdout
            if sum(line.startswith("UN ") for line in status.splitlines()) == 3:
                break
            time.sleep(2)
        else:
            raise AssertionError(f"cassandra-3 never saw three nodes up:\n{status}")
        cluster = Cluster([f"10.217.4.{i}" for i in (10, 11, 12)], protocol_version=5)
        try:
            session = cluster.connect()
            session.execute("CREATE KEYSPACE lab WITH replication = "
                            "{'class': 'SimpleStrategy', 'replication_factor': 3}")
            session.execute("CREATE TABLE lab.items (id int PRIMARY KEY)")
            quorum = ConsistencyLevel.QUORUM
            session.execute(SimpleStatement("INSERT INTO lab.items (id) VALUES (7)", consistency_level=quorum))
            row = session.execute(SimpleStatement("SELECT id FROM lab.items WHERE id = 7", consistency_level=quorum))
            assert [r.id for r in row] == [7]
        finally:
            cluster.shutdown()


def test_opensearch_lab_forms_a_green_cluster_of_three() -> None:
    """Three nodes configured by their environment (the official image's way), started together with plain
    compose; CI points it at the locally built image."""
    with _lab("opensearch", "10.217.5", {"CHAOSKIT_OPENSEARCH_IMAGE": "chaoskit/opensearch:2.19.6"}) as (base, env):
        deadline, health = time.monotonic() + 180, dict[str, Any]()
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://10.217.5.12:9200/_cluster/health", timeout=3) as res:
                    health = json.loads(res.read())
                if health["number_of_nodes"] == 3 and health["status"] == "green":
                    break
            except OSError:
                pass
            time.sleep(2)
        else:
            raise AssertionError(f"opensearch-3 never saw a green cluster of three: {health}")
        index = json.dumps({"settings": {"number_of_shards": 3, "number_of_replicas": 1}}).encode()
        create = urllib.request.Request("http://10.217.5.10:9200/lab?wait_for_active_shards=all", data=index,
                                        method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(create, timeout=60) as res:  # no auto-created indices, as in chaoskit's runs
            assert json.loads(res.read())["shards_acknowledged"] is True
        doc = json.dumps({"v": 7}).encode()
        put = urllib.request.Request("http://10.217.5.10:9200/lab/_doc/7?refresh=true", data=doc, method="PUT",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(put, timeout=30) as res:
            assert json.loads(res.read())["result"] == "created"
        with urllib.request.urlopen("http://10.217.5.11:9200/lab/_doc/7", timeout=10) as res:
            assert json.loads(res.read())["_source"] == {"v": 7}
