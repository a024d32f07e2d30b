"""The cassandra system's validation and its built-in experiments (no ring started)."""

from __future__ import annotations

from typing import Any

import pytest

from chaoskit.catalog import load, parse
from chaoskit.errors import ExperimentError
from chaoskit.systems import get_system, system_names

EXPERIMENTS = ("cassandra-node-kill", "cassandra-two-nodes-down-quorum", "cassandra-two-nodes-down-one",
               "cassandra-one-stale-reads", "cassandra-quorum-no-stale", "cassandra-downgrading-retry")


def _exp(**over: Any) -> dict[str, Any]:
    return {"name": "x", "system": "cassandra", "purpose": "p", "hypothesis": "h", "client": {"pattern": "quorum"},
            "faults": [{"kind": "kill", "target": "any"}], "expect": [{"metric": "lost_writes", "max": 0}], **over}


def test_cassandra_is_registered_with_its_leaderless_roles() -> None:
    assert "cassandra" in system_names()
    system = get_system("cassandra")
    assert system.roles == ("any", "two", "all", "others")
    assert system.client_patterns == ("quorum", "one", "quorum-write-one-read", "downgrading")
    assert system.native_faults == ("disablegossip", "disablebinary", "drain")
    assert system.image_variable() == ("CHAOSKIT_CASSANDRA_IMAGE", "cassandra:5.0")
    assert system.local_image is not None and system.local_image.tag == "chaoskit/cassandra:5.0"
    assert [n.name for n in system.compose_nodes("10.215.0")] == ["cassandra-1", "cassandra-2", "cassandra-3"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_built_in_experiments_validate(name: str) -> None:
    exp = load(name)
    assert exp.system == "cassandra" and exp.name == name


@pytest.mark.parametrize(("over", "needle"), [
    ({"expect": [{"metric": "failover_happened", "equals": True}]}, "expect.0.metric: failover_happened does not"),
    ({"expect": [{"metric": "old_primary_demoted", "equals": True}]}, "old_primary_demoted does not apply"),
    ({"faults": [{"kind": "kill", "target": "primary"}]}, "unknown target 'primary'"),
    ({"client": {"pattern": "leader-follower"}}, "unknown pattern 'leader-follower'"),
    ({"topology": {"nodes": 2}}, "topology.nodes"),
    ({"topology": {"speculative_retry": "99p'; DROP KEYSPACE x"}}, "topology.speculative_retry"),
], ids=["failover", "demotion", "primary", "pattern", "nodes", "speculative-retry"])
def test_what_a_leaderless_ring_cannot_do_is_rejected_in_one_line(over: dict[str, Any], needle: str) -> None:
    with pytest.raises(ExperimentError, match=needle):
        parse(_exp(**over), "test")
    parse(_exp(), "test")  # the same experiment without it is fine
    for ok in ("99p", "50ms", "NONE", "99.9PERCENTILE"):
        parse(_exp(topology={"speculative_retry": ok}), "test")
