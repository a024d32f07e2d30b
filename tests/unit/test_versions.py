"""A server version in the topology (OpenSearch, Cassandra): validation, caches per version, the images a
version asks for and their stand-ins, ``chaoskit run --set``, and the server in the journal and report."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit import cli, images
from chaoskit.catalog import load, with_settings
from chaoskit.errors import ExperimentError
from chaoskit.report import server_line
from chaoskit.systems.cassandra import dist as cassandra_dist
from chaoskit.systems.cassandra.image import image_for as cassandra_image
from chaoskit.systems.opensearch import dist
from chaoskit.systems.opensearch import node as nodes
from chaoskit.systems.opensearch.settings import OpenSearchSettings

STALE = ("opensearch-stale-primary-2-19-6", "opensearch-stale-primary-3-6-0", "opensearch-stale-primary-3-8-0")


@pytest.mark.parametrize("bad", ["3.6", 3.6, "1.3.0", "4.0.0", "3.6.0-rc1", "latest"])
def test_a_bad_version_is_refused_naming_what_is_known(bad: object) -> None:
    with pytest.raises(ValueError, match="is not a version chaoskit runs \\(2.x.y or 3.x.y, e.g. 3.6.0\\)"):
        OpenSearchSettings.model_validate({"version": bad})
    assert OpenSearchSettings().version == "2.19.6"


def test_caches_are_per_version_and_the_home_variable_keeps_the_default_versions_meaning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAOSKIT_OPENSEARCH_HOME", str(tmp_path / "mine"))
    monkeypatch.delenv("CHAOSKIT_CASSANDRA_HOME", raising=False)
    assert dist.home() == tmp_path / "mine" and dist.home("2.19.6") == tmp_path / "mine"
    assert dist.home("3.6.0") == tmp_path / "cache" / "chaoskit" / "opensearch-3.6.0"
    assert cassandra_dist.home("5.0.9") == tmp_path / "cache" / "chaoskit" / "cassandra-5.0.9"
    assert cassandra_dist.lib_dir("4.1.5") == tmp_path / "cache" / "chaoskit" / "cassandra-4.1.5" / "lib"
    assert dist.artifact("3.8.0") == "org.opensearch.distribution.integ-test-zip:opensearch:3.8.0:zip"


def test_each_version_asks_for_its_image_and_its_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSKIT_OPENSEARCH_IMAGE", raising=False)
    monkeypatch.delenv("CHAOSKIT_CASSANDRA_IMAGE", raising=False)
    image, local = nodes.image_for("2.19.6")
    assert image == "opensearchproject/opensearch:2" and local is not None and local.tag == "chaoskit/opensearch:2.19.6"
    image, local = nodes.image_for("3.6.0")
    assert image == "opensearchproject/opensearch:3.6.0" and local is not None
    assert local.tag == "chaoskit/opensearch:3.6.0" and local.context == "opensearch"
    image, local = cassandra_image("5.0.9")
    assert image == "cassandra:5.0" and local is not None and local.tag == "chaoskit/cassandra:5.0"
    assert cassandra_image("5.0.8")[0] == "cassandra:5.0.8"


def test_the_image_variable_is_the_users_image_unless_it_names_another_versions_stand_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_OPENSEARCH_IMAGE", "chaoskit/opensearch:2.19.6")  # what `images --env` exports
    assert nodes.image_for("2.19.6") == ("chaoskit/opensearch:2.19.6", None)
    image, local = nodes.image_for("3.8.0")
    assert image == "opensearchproject/opensearch:3.8.0" and local is not None
    assert local.tag == "chaoskit/opensearch:3.8.0"
    monkeypatch.setenv("CHAOSKIT_OPENSEARCH_IMAGE", "registry.example/my-opensearch:3")
    assert nodes.image_for("3.8.0") == ("registry.example/my-opensearch:3", None)


def test_a_run_of_a_pinned_version_maps_its_image_to_its_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_OPENSEARCH_IMAGE", "chaoskit/opensearch:2.19.6")
    subs = images.stand_ins(load("opensearch-stale-primary-3-8-0"))
    assert subs["opensearchproject/opensearch:3.8.0"] == "chaoskit/opensearch:3.8.0"
    assert "opensearchproject/opensearch:2" not in subs  # the variable names the default version's image


def test_images_for_a_system_include_the_versions_its_experiments_pin() -> None:
    tags = [i.tag for i in images.needed_by("opensearch")]
    assert {"chaoskit/opensearch:2.19.6", "chaoskit/opensearch:3.6.0", "chaoskit/opensearch:3.8.0"} <= set(tags)
    assert "chaoskit/opensearch:3.7.1" in [i.tag for i in images.needed_by("opensearch", "3.7.1")]
    with pytest.raises(Exception, match="--version: .*not a version chaoskit runs"):
        images.needed_by("opensearch", "9.0")


def test_the_stale_primary_files_differ_only_in_version_and_chain_their_comparisons() -> None:
    exps = [load(name) for name in STALE]
    assert [e.topology["version"] for e in exps] == ["2.19.6", "3.6.0", "3.8.0"]
    assert [e.compare_with for e in exps] == [None, STALE[0], STALE[1]]
    same = [{**e.model_dump(exclude={"name", "purpose", "hypothesis", "source", "compare_with"}),
             "topology": {k: v for k, v in e.topology.items() if k != "version"}} for e in exps]
    assert same[0] == same[1] == same[2]
    assert exps[0].client.timeout_s == 6.0 and exps[0].workload.writers == 12
    assert all("Predicted from its jar" in e.hypothesis and "measured" in e.hypothesis.lower() for e in exps)


def test_run_set_overrides_the_topology_and_is_validated() -> None:
    exp = with_settings(load("opensearch-partition-primary-holder"), cli._settings(["version=3.6.0"]))
    assert exp.topology["version"] == "3.6.0" and exp.topology["nodes"] == 3
    with pytest.raises(ExperimentError, match="is not a version chaoskit runs"):
        with_settings(exp, cli._settings(["version=3.6"]))
    with pytest.raises(ExperimentError, match="--set verison: opensearch has no such topology setting"):
        with_settings(exp, {"verison": "3.6.0"})


def test_run_set_with_a_bad_value_is_exit_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "opensearch-partition-primary-holder", "--set", "version=2.19"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "topology.version" in line and "'2.19'" in line


def test_the_report_header_shows_the_server_and_tolerates_its_absence() -> None:
    assert server_line({"server": {"version": "3.6.0", "java": 25}}) == "3.6.0 on Java 25"
    assert server_line({"server": {"version": "5.0.9", "java": None}}) == "5.0.9"
    assert server_line({}) == "" and server_line({"server": None}) == ""
