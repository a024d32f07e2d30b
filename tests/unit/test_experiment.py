"""Tests for chaoskit.experiment: valid documents load; every invalid one is a one-line ExperimentError."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.catalog import EXPERIMENTS_DIR, list_experiments, load, parse
from chaoskit.errors import ExperimentError, UsageError
from chaoskit.faults import Kill, NativeFault, Partition

ORIGIN = "experiments/test-origin.yaml"
MODEL = EXPERIMENTS_DIR / "redis-primary-kill.yaml"


def model() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(MODEL.read_text()))


def test_model_document_parses_into_typed_experiment() -> None:
    exp = parse(model(), ORIGIN)
    assert exp.name == "redis-primary-kill"
    assert exp.source == ORIGIN
    assert exp.client.pattern == "sentinel-backoff"
    assert exp.workload.writers == 2 and exp.workload.rate_hz == 250
    assert exp.faults == [Kill(kind="kill", target="primary")]
    assert [e.metric for e in exp.expect] == ["failover_happened", "rto_s", "lost_writes"]
    assert exp.expect[0].equals is True
    assert exp.expect[1].describe() == "rto_s <= 3"


def test_defaults_fill_omitted_sections() -> None:
    doc = model()
    del doc["workload"], doc["schedule"], doc["faults"]
    exp = parse(doc, ORIGIN)
    assert exp.faults == []
    assert exp.schedule.steady_s == 2.0
    assert exp.workload.read_from == "primary"


def test_fault_kinds_select_their_spec_and_native_kinds_go_to_native() -> None:
    doc = model()
    doc["faults"] = [{"kind": "partition", "target": "primary", "peers": ["redis-2"]},
                     {"kind": "sentinel-failover"}]
    exp = parse(doc, ORIGIN)
    assert isinstance(exp.faults[0], Partition) and exp.faults[0].peers == ["redis-2"]
    assert isinstance(exp.faults[1], NativeFault) and exp.faults[1].kind == "sentinel-failover"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_loads(path: Path) -> None:
    exp = load(str(path))
    assert exp.name == path.stem
    assert exp.expect


def test_list_experiments_finds_every_file() -> None:
    assert {e.name for e in list_experiments()} == {p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.pop(key)


@pytest.mark.parametrize(("mutate", "field", "words"), [
    (_set("faults.0", {"kind": "explode"}), "faults.0.kind", "unknown fault 'explode'"),
    (_set("schedule.steady_s", "soon"), "schedule.steady_s", "valid number"),
    (_drop("expect"), "expect", "Field required"),
    (_set("colour", "red"), "colour", "Extra inputs are not permitted"),
    (_set("system", "dynamo"), "system", "unknown system 'dynamo' (known: "),
    (_set("client.pattern", "yolo"), "client.pattern", "unknown pattern 'yolo'"),
    (_set("faults.0", {"kind": "kill", "target": "leader"}), "faults.0", "unknown target 'leader'"),
    (_set("faults.0", {"kind": "kill", "frobnicate": 1}), "faults.0.frobnicate", "Extra inputs"),
    (_set("faults.0", {"target": "primary"}), "faults.0", "needs a 'kind'"),
    (_set("expect", []), "expect", "at least 1 item"),
    (_set("expect.0", {"metric": "bogus"}), "expect.0.metric", "Input should be"),
    (_set("topology", {"replicas": 9}), "topology.replicas", "less than or equal to 5"),
    (_set("name", "Bad Name"), "name", "pattern"),
    (_set("faults.0", {"kind": "packet-loss", "probability": 2}), "faults.0.probability", "less than or equal"),
], ids=["unknown-fault-kind", "wrong-type", "missing-expect", "unknown-top-level-key", "unknown-system",
        "unknown-client-pattern", "unknown-target-role", "unknown-fault-field", "fault-without-kind",
        "empty-expect", "unknown-metric", "bad-topology", "bad-name", "probability-out-of-range"])
def test_invalid_document_is_one_line_naming_origin_and_field(
        mutate: Callable[[dict[str, Any]], None], field: str, words: str) -> None:
    doc = model()
    mutate(doc)
    with pytest.raises(ExperimentError) as info:
        parse(doc, ORIGIN)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{ORIGIN}: {field}:"), msg
    assert words in msg


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ExperimentError, match=r"^x\.yaml: expected a mapping at the top level, got list$"):
        parse([1, 2], "x.yaml")


def test_experiment_error_is_a_usage_error_with_exit_code_2() -> None:
    with pytest.raises(UsageError) as info:
        parse({}, "x.yaml")
    assert info.value.exit_code == 2


def test_load_unknown_name_lists_known_experiments() -> None:
    with pytest.raises(ExperimentError) as info:
        load("no-such-experiment")
    msg = str(info.value)
    assert msg.startswith("unknown experiment 'no-such-experiment' (known: ")
    assert "redis-primary-kill" in msg and "redis-replica-read-lag" in msg


def test_load_missing_yaml_path(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load(str(tmp_path / "missing.yaml"))


def test_load_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsystem: redis\nclient: {pattern: [unclosed\n")
    with pytest.raises(ExperimentError) as info:
        load(str(path))
    msg = str(info.value)
    assert msg.startswith(f"{path}: line ") and "not valid YAML" in msg
    assert "\n" not in msg


def test_load_by_path_validates_and_records_source(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    doc = model()
    doc["name"] = "mine"
    path.write_text(yaml.safe_dump(doc))
    exp = load(str(path))
    assert exp.name == "mine" and exp.source == str(path)
