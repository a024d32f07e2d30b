"""The Java choice (chaoskit.jdk) over fake JDK directories: where JDKs are found, their majors, which one a
server version gets, and the one-line error when none fits."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from chaoskit import jdk
from chaoskit.errors import MissingDependencyError
from chaoskit.systems.cassandra import dist as cassandra_dist
from chaoskit.systems.opensearch import dist as opensearch_dist


def _jdk(root: Path, name: str, version: str | None, *, macos: bool = False) -> Path:
    home = root / name / "Contents" / "Home" if macos else root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    if version is not None:
        (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\n')
    return home


def _no_java_on_path(_: str) -> None:
    return None


def _never(*argv: Any, **kw: Any) -> subprocess.CompletedProcess[str]:
    raise AssertionError(f"java -version run for {argv}: the release file should have said")


@pytest.fixture
def jvm(tmp_path: Path) -> Path:
    root = tmp_path / "jvm"
    _jdk(root, "java-17-openjdk-amd64", "17.0.15")
    _jdk(root, "temurin-25-jdk-amd64", "25.0.3")
    return root


def test_majors_come_from_the_release_file_else_from_java_version(tmp_path: Path) -> None:
    assert jdk.major_of(_jdk(tmp_path, "j8", "1.8.0_392"), run=_never) == 8
    assert jdk.major_of(_jdk(tmp_path, "j21", "21.0.4"), run=_never) == 21
    bare = _jdk(tmp_path, "bare", None)

    def java_version(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        assert argv == [str(bare / "bin" / "java"), "-version"]
        return subprocess.CompletedProcess(argv, 0, "", 'openjdk version "11.0.22" 2024-01-16\n')

    assert jdk.major_of(bare, run=java_version) == 11


def test_each_server_version_gets_a_java_in_its_range(jvm: Path) -> None:
    found = jdk.find({}, "OPENSEARCH_JAVA_HOME", which=_no_java_on_path, roots=[jvm], run=_never)
    assert [(j.home.name, j.major) for j in found] == [("java-17-openjdk-amd64", 17), ("temurin-25-jdk-amd64", 25)]
    assert jdk.pick(found, opensearch_dist.java_rule("2.19.6")).major == 17  # as before: 17 preferred
    assert jdk.pick(found, opensearch_dist.java_rule("3.6.0")).major == 25
    assert jdk.pick(found, cassandra_dist.java_rule("5.0.9")).major == 17
    assert jdk.pick(found, cassandra_dist.java_rule("4.1.5")) is None  # 8 or 11 only


def test_java_home_in_range_is_taken_first_and_one_out_of_range_is_passed_over(jvm: Path, tmp_path: Path) -> None:
    j21 = _jdk(tmp_path / "opt", "jdk-21", "21.0.4")
    chosen = jdk.choose("OpenSearch 2.19.6", opensearch_dist.java_rule("2.19.6"), "OPENSEARCH_JAVA_HOME",
                        {"JAVA_HOME": str(j21)}, which=_no_java_on_path, roots=[jvm], run=_never)
    assert chosen.home == j21 and chosen.found == "$JAVA_HOME"
    chosen = jdk.choose("OpenSearch 3.6.0", opensearch_dist.java_rule("3.6.0"), "OPENSEARCH_JAVA_HOME",
                        {"JAVA_HOME": str(jvm / "java-17-openjdk-amd64")}, which=_no_java_on_path, roots=[jvm],
                        run=_never)
    assert chosen.major == 25


def test_the_java_on_path_is_found_by_its_real_home_once(jvm: Path, tmp_path: Path) -> None:
    link = tmp_path / "bin" / "java"
    link.parent.mkdir()
    link.symlink_to(jvm / "java-17-openjdk-amd64" / "bin" / "java")
    found = jdk.find({}, which=lambda _: str(link), roots=[jvm], run=_never)
    assert [(j.found, j.major) for j in found] == [("PATH", 17), (str(jvm), 25)]


def test_macos_homes_are_found_under_contents_home(tmp_path: Path) -> None:
    root = tmp_path / "JavaVirtualMachines"
    home = _jdk(root, "temurin-21.jdk", "21.0.4", macos=True)
    (found,) = jdk.find({}, which=_no_java_on_path, roots=[root], run=_never)
    assert found.home == home and found.java == str(home / "bin" / "java")


def test_the_override_is_the_only_candidate_and_none_fitting_is_one_line(jvm: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyError) as err:
        jdk.choose("OpenSearch 3.6.0", opensearch_dist.java_rule("3.6.0"), "OPENSEARCH_JAVA_HOME",
                   {"OPENSEARCH_JAVA_HOME": str(jvm / "java-17-openjdk-amd64")}, which=_no_java_on_path,
                   roots=[jvm], run=_never)
    (line,) = str(err.value).splitlines()
    assert line.startswith("OpenSearch 3.6.0 needs Java 21 or newer; found Java 17 (")
    assert "install a JDK 21" in line and "Temurin" in line and "set OPENSEARCH_JAVA_HOME" in line
    with pytest.raises(MissingDependencyError, match="Cassandra 5.0.9 needs Java 11 or 17; found no JDK"):
        jdk.choose("Cassandra 5.0.9", cassandra_dist.java_rule("5.0.9"), env={}, which=_no_java_on_path,
                   roots=[tmp_path / "none"], run=_never)


def test_a_runtime_is_jlinked_or_else_copied_without_sources(tmp_path: Path) -> None:
    home = _jdk(tmp_path, "jdk", "25.0.3")
    (home / "lib").mkdir()
    (home / "lib" / "src.zip").write_text("sources")
    (home / "lib" / "modules").write_text("modules")
    (home / "bin" / "jlink").write_text("#!/bin/sh\n")
    calls: list[list[str]] = []

    def fails(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1, "java.base@25\njdk.incubator.vector@25\n", "no packaged modules")

    chosen = jdk.Jdk(home, 25, "test")
    assert jdk.runtime(chosen, tmp_path / "out", run=fails) == "copy"
    assert "--add-modules" in calls[1] and calls[1][calls[1].index("--add-modules") + 1] == "jdk.incubator.vector"
    assert (tmp_path / "out" / "lib" / "modules").is_file() and not (tmp_path / "out" / "lib" / "src.zip").exists()
