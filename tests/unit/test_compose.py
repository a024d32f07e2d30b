"""compose/<system>.yml is generated from the system module; the checked-in file must match."""

from __future__ import annotations

from pathlib import Path

import yaml

from chaoskit.compose import render
from chaoskit.resources import images_dir

ROOT = Path(__file__).resolve().parents[2]
LAB_IMAGES = "../chaoskit/images"  # how the checked-in labs (compose/*.yml) name the build contexts


def test_checked_in_redis_lab_matches_the_generator() -> None:
    assert (ROOT / "compose" / "redis.yml").read_text() == render("redis"), \
        "regenerate with: chaoskit compose redis > compose/redis.yml"


def test_redis_lab_has_primary_two_replicas_three_sentinels_on_fixed_addresses() -> None:
    doc = yaml.safe_load(render("redis"))
    services = doc["services"]
    assert list(services) == ["redis-1", "redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3"]
    assert all(s["image"] == "${CHAOSKIT_REDIS_IMAGE:-redis:7.2}" for s in services.values())
    assert "replicaof" not in " ".join(services["redis-1"]["command"])
    assert "replicaof ${CHAOSKIT_LAB_NET:-10.215.0}.10 6379" in services["redis-3"]["command"][2]
    assert "sentinel monitor mymaster ${CHAOSKIT_LAB_NET:-10.215.0}.10 6379 2" in services["sentinel-2"]["command"][2]
    assert all(s["labels"]["io.chaoskit.lab"] == "redis" for s in services.values())


def test_checked_in_postgres_lab_matches_the_generator() -> None:
    assert (ROOT / "compose" / "postgres.yml").read_text() == render("postgres", LAB_IMAGES), \
        "regenerate with: chaoskit compose postgres -o compose/postgres.yml"


def test_checked_in_cassandra_lab_matches_the_generator_and_every_node_is_a_seed() -> None:
    assert (ROOT / "compose" / "cassandra.yml").read_text() == render("cassandra", LAB_IMAGES), \
        "regenerate with: chaoskit compose cassandra -o compose/cassandra.yml"
    services = yaml.safe_load(render("cassandra"))["services"]
    assert list(services) == ["cassandra-1", "cassandra-2", "cassandra-3"]
    assert all(s["image"] == "${CHAOSKIT_CASSANDRA_IMAGE:-cassandra:5.0}" for s in services.values())
    seeds = "seeds: \"" + ",".join(f"${{CHAOSKIT_LAB_NET:-10.215.0}}.{i}" for i in (10, 11, 12))
    assert all(seeds in s["command"][2] and "/opt/cassandra/lib/*" in s["command"][2] for s in services.values())


def test_checked_in_opensearch_lab_matches_the_generator_and_disables_the_security_plugin() -> None:
    assert (ROOT / "compose" / "opensearch.yml").read_text() == render("opensearch", LAB_IMAGES), \
        "regenerate with: chaoskit compose opensearch -o compose/opensearch.yml"
    services = yaml.safe_load(render("opensearch"))["services"]
    assert list(services) == ["opensearch-1", "opensearch-2", "opensearch-3"]
    assert all(s["image"] == "${CHAOSKIT_OPENSEARCH_IMAGE:-opensearchproject/opensearch:2}" for s in services.values())
    seeds = "discovery.seed_hosts=" + ",".join(f"${{CHAOSKIT_LAB_NET:-10.215.0}}.{i}:9300" for i in (10, 11, 12))
    assert all(seeds in s["command"][2] and "DISABLE_SECURITY_PLUGIN=true" in s["command"][2]
               for s in services.values())


def test_checked_in_labs_point_at_build_contexts_that_exist() -> None:
    contexts = [service["build"]["context"] for name in ("redis", "postgres", "mongo")
                for service in yaml.safe_load((ROOT / "compose" / f"{name}.yml").read_text())["services"].values()
                if "build" in service]
    assert contexts, "the postgres lab builds Patroni on the official image"
    for context in contexts:
        assert (ROOT / "compose" / context / "Dockerfile").is_file(), context
    assert (ROOT / "compose" / LAB_IMAGES).resolve() == images_dir().resolve()


def test_compose_on_stdout_names_the_installed_build_context_absolutely() -> None:
    services = yaml.safe_load(render("postgres"))["services"]
    assert services["pg-1"]["build"]["context"] == str(images_dir().resolve() / "postgres")


def test_postgres_lab_official_images_and_patroni_built_on_postgres() -> None:
    services = yaml.safe_load(render("postgres"))["services"]
    assert list(services) == ["pg-1", "pg-2", "pg-3", "etcd-1", "etcd-2", "etcd-3", "proxy"]
    assert services["pg-1"]["build"] == {"context": f"{images_dir().resolve()}/postgres",
                                         "args": {"BASE": "${CHAOSKIT_POSTGRES_BASE:-postgres:15}"}}
    assert services["pg-2"]["user"] == "postgres"
    assert services["etcd-1"]["image"].startswith("${CHAOSKIT_ETCD_IMAGE:-quay.io/coreos/etcd:v3.5")
    assert services["proxy"]["image"] == "${CHAOSKIT_HAPROXY_IMAGE:-haproxy:2.8}"
    etcd_hosts = "  - ${CHAOSKIT_LAB_NET:-10.215.0}.13:2379"
    assert all(etcd_hosts in services[f"pg-{i}"]["command"][2] for i in (1, 2, 3))
    assert "server pg-3 ${CHAOSKIT_LAB_NET:-10.215.0}.12:5432 check port 8008" in services["proxy"]["command"][2]



def test_checked_in_mongo_lab_matches_the_generator() -> None:
    assert (ROOT / "compose" / "mongo.yml").read_text() == render("mongo"), \
        "regenerate with: chaoskit compose mongo > compose/mongo.yml"


def test_mongo_lab_three_members_and_an_initiator_with_the_lab_settings() -> None:
    services = yaml.safe_load(render("mongo"))["services"]
    assert list(services) == ["mongo-1", "mongo-2", "mongo-3", "init"]
    assert all(s["image"] == "${CHAOSKIT_MONGO_IMAGE:-mongo:6.0}" for s in services.values())
    assert services["mongo-2"]["command"][:3] == ["mongod", "--replSet", "rs0"]
    init = services["init"]["command"][2]
    assert init.startswith("until mongosh --quiet --host ${CHAOSKIT_LAB_NET:-10.215.0}.10 ")
    assert '"electionTimeoutMillis": 2000' in init and '"host": "${CHAOSKIT_LAB_NET:-10.215.0}.12:27017"' in init
