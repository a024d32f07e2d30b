"""The memcached system's validation, client key mapping, compose lab and experiments (no node started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.catalog import load, parse
from chaoskit.clients.memcached import key_of
from chaoskit.compose import render
from chaoskit.errors import ExperimentError
from chaoskit.systems import get_system, system_names

ROOT = Path(__file__).resolve().parents[2]


def _exp(**over: Any) -> dict[str, Any]:
    return {"name": "x", "system": "memcached", "purpose": "p", "hypothesis": "h",
            "client": {"pattern": "hash-ignore-exc"}, "faults": [{"kind": "kill", "target": "any"}],
            "expect": [{"metric": "cache_errors", "max": 0}], **over}


def test_memcached_is_registered_as_a_cache_with_its_image() -> None:
    assert "memcached" in system_names()
    system = get_system("memcached")
    assert system.roles == ("any", "all", "others")
    assert system.client_patterns == ("hash-ignore-exc", "hash-raise")
    assert system.image_variable() == ("CHAOSKIT_MEMCACHED_IMAGE", "memcached:1.6")
    assert system.local_image is not None and system.local_image.context == "memcached"
    assert system.binaries() == {"memcached": "apt-get install -y memcached"}


@pytest.mark.parametrize("name", ["memcached-node-kill", "memcached-node-kill-raise"])
def test_the_built_in_experiments_validate(name: str) -> None:
    exp = load(name)
    assert exp.system == "memcached" and exp.name == name
    assert load("memcached-node-kill").compare_with == "memcached-node-kill-raise"


@pytest.mark.parametrize(("over", "needle"), [
    ({"expect": [{"metric": "lost_writes", "max": 0}]}, "expect.0.metric: lost_writes does not apply to a cache"),
    ({"expect": [{"metric": "stale_reads", "max": 0}]}, "stale_reads does not apply"),
    ({"expect": [{"metric": "failover_happened", "equals": True}]}, "failover_happened does not apply"),
    ({"faults": [{"kind": "kill", "target": "primary"}]}, "unknown target 'primary'"),
    ({"client": {"pattern": "consistent-hash"}}, "unknown pattern 'consistent-hash'"),
    ({"client": {"pattern": "hash-raise", "options": {"replicas": 1}}}, "client.options.replicas: unknown option"),
    ({"topology": {"nodes": 1}}, "topology.nodes"),
], ids=["lost", "stale", "failover", "primary", "pattern", "option", "nodes"])
def test_what_a_cache_cannot_do_is_rejected_in_one_line(over: dict[str, Any], needle: str) -> None:
    with pytest.raises(ExperimentError, match=needle):
        parse(_exp(**over), "test")
    parse(_exp(), "test")  # the same experiment without it is fine


def test_write_values_fill_the_key_space_in_order_then_wrap() -> None:
    assert [key_of(v, 3) for v in (1, 2, 3, 4, 7)] == ["k0", "k1", "k2", "k0", "k0"]


def test_checked_in_memcached_lab_matches_the_generator() -> None:
    assert (ROOT / "compose" / "memcached.yml").read_text() == render("memcached"), \
        "regenerate with: chaoskit compose memcached -o compose/memcached.yml"
    services = yaml.safe_load(render("memcached"))["services"]
    assert list(services) == ["memcached-1", "memcached-2", "memcached-3"]
    assert all(s["command"][0] == "memcached" and "11211" in s["command"] for s in services.values())
