"""The opensearch system's validation and its built-in experiments (no cluster started)."""

from __future__ import annotations

from typing import Any

import pytest

from chaoskit.catalog import load, parse
from chaoskit.checkers import OldPrimary, RunFacts, Valid
from chaoskit.errors import ExperimentError
from chaoskit.history import History
from chaoskit.systems import get_system, system_names
from chaoskit.systems.opensearch.state import View, health, majority

EXPERIMENTS = ("opensearch-primary-holder-kill", "opensearch-cluster-manager-kill", "opensearch-search-before-refresh",
               "opensearch-search-after-refresh-wait-for", "opensearch-realtime-get", "opensearch-single-host-client",
               "opensearch-all-hosts-client", "opensearch-disk-full", "opensearch-partition-primary-holder")


def _exp(**over: Any) -> dict[str, Any]:
    return {"name": "x", "system": "opensearch", "purpose": "p", "hypothesis": "h",
            "client": {"pattern": "all-hosts-retry"}, "faults": [{"kind": "kill", "target": "primary-holder"}],
            "expect": [{"metric": "lost_writes", "max": 0}], **over}


def test_opensearch_is_registered_with_its_roles_and_faults() -> None:
    assert "opensearch" in system_names()
    system = get_system("opensearch")
    assert system.roles == ("cluster-manager", "primary-holder", "replica-holder", "all", "others")
    assert system.client_patterns == ("all-hosts-retry", "single-host")
    assert system.native_faults == ("exclude-node", "close-index", "disk-watermark")
    assert system.image_variable() == ("CHAOSKIT_OPENSEARCH_IMAGE", "opensearchproject/opensearch:2")
    assert system.local_image is not None and system.local_image.tag == "chaoskit/opensearch:2.19.6"
    assert [n.name for n in system.compose_nodes("10.215.0")] == ["opensearch-1", "opensearch-2", "opensearch-3"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_built_in_experiments_validate(name: str) -> None:
    exp = load(name)
    assert exp.system == "opensearch" and exp.name == name


@pytest.mark.parametrize(("over", "needle"), [
    ({"expect": [{"metric": "old_primary_demoted", "equals": True}]}, "old_primary_demoted does not apply"),
    ({"faults": [{"kind": "kill", "target": "primary"}]}, "unknown target 'primary'"),
    ({"client": {"pattern": "sniffing"}}, "unknown pattern 'sniffing'"),
    ({"client": {"pattern": "single-host", "options": {"host": "opensearch-9"}}}, "unknown node 'opensearch-9'"),
    ({"client": {"pattern": "all-hosts-retry", "options": {"wait_for_active_shards": 2}}}, "wait_for_active_shards"),
    ({"client": {"pattern": "all-hosts-retry", "options": {"refresh": "true"}}}, "client.options.refresh"),
    ({"client": {"pattern": "all-hosts-retry", "options": {"consistency": "all"}}}, "unknown option"),
    ({"topology": {"nodes": 2}}, "topology.nodes"),
    ({"topology": {"cluster_info_interval_s": 1}}, "topology.cluster_info_interval_s"),
], ids=["demotion", "primary", "pattern", "host", "wait-for", "refresh", "option", "nodes", "info-interval"])
def test_what_does_not_fit_is_rejected_in_one_line(over: dict[str, Any], needle: str) -> None:
    with pytest.raises(ExperimentError, match=needle):
        parse(_exp(**over), "test")
    parse(_exp(), "test")  # the same experiment without it is fine


def test_old_primary_demotion_is_not_applicable() -> None:
    result = OldPrimary().check(History(), RunFacts(old_primary="opensearch-1", one_primary=False))
    assert result.valid is Valid.TRUE and "not applicable" in result.detail
    assert result.metrics["old_primary_demoted"] is None


def _view(node: str, manager: str | None, copies: dict[int, tuple[str, ...]],
          primaries: dict[int, str | None]) -> View:
    return View(node, manager, ("opensearch-1", "opensearch-2"), primaries, copies, False, False)


def test_health_and_majority_from_views() -> None:
    green = _view("opensearch-1", "opensearch-1", {0: ("opensearch-1", "opensearch-2")}, {0: "opensearch-1"})
    yellow = _view("opensearch-1", "opensearch-1", {0: ("opensearch-2",)}, {0: "opensearch-2"})
    red = _view("opensearch-1", "opensearch-1", {0: ()}, {0: None})
    assert [health(v, 1) for v in (green, yellow, red)] == ["green", "yellow", "red"]
    views = {"opensearch-1": green, "opensearch-2": _view("opensearch-2", "opensearch-1", {}, {}),
             "opensearch-3": _view("opensearch-3", None, {}, {})}
    assert majority(views, 3) == "opensearch-1"
    assert majority({"opensearch-3": views["opensearch-3"]}, 3) is None
