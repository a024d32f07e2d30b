"""compose/<system>.yml is generated from the system module; the checked-in file must match."""

from __future__ import annotations

from pathlib import Path

import yaml

from chaoskit.compose import render

ROOT = Path(__file__).resolve().parents[2]


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
