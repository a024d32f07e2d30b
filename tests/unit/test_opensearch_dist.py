"""The OpenSearch zip fetch (once, under a lock, atomic), the file-descriptor check's patch, the node config
(local: opensearch.yml; docker: the container's command)."""

from __future__ import annotations

import shlex
import subprocess
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chaoskit.errors import InfrastructureError, MissingDependencyError
from chaoskit.systems.opensearch import dist
from chaoskit.systems.opensearch import node as nodes

JAR = f"opensearch-{dist.VERSION}/lib/opensearch-{dist.VERSION}.jar"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSKIT_OPENSEARCH_HOME", str(tmp_path / "cache" / f"opensearch-{dist.VERSION}"))
    monkeypatch.setattr(dist.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    return tmp_path / "cache" / f"opensearch-{dist.VERSION}"


def _jar(path: Path, constant: bytes = b"\x03\x00\x00\xff\xff") -> bytes:
    """A jar with the check's class (some bytes around one CONSTANT_Integer) and another entry."""
    cls = b"\xca\xfe\xba\xbe" + b"\x01" * 20 + constant + b"\x02" * 20
    buf = path.parent / "inner.jar"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(dist._FD_CHECK, cls)
        zf.writestr("org/opensearch/Other.class", b"other")
    data = buf.read_bytes()
    buf.unlink()
    return data


def _maven(code: int = 0, jar: bool = True, calls: list[int] | None = None) -> Any:
    """Stands in for ``mvn dependency:copy``: writes the zip into -DoutputDirectory, exits ``code``."""
    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        if calls is not None:
            calls.append(1)
        out = Path(next(a for a in argv if a.startswith("-DoutputDirectory=")).split("=", 1)[1])
        with zipfile.ZipFile(out / f"opensearch-{dist.VERSION}.zip", "w") as zf:
            zf.writestr(f"opensearch-{dist.VERSION}/bin/opensearch", "#!/bin/sh\n")
            if jar:
                zf.writestr(JAR, _jar(out / "x"))
        return subprocess.CompletedProcess(argv, code, "", "[ERROR] Could not resolve" if code else "")
    return run


def test_fetch_unpacks_patches_and_renames_into_place_once(home: Path) -> None:
    said: list[str] = []
    assert dist.ensure_dist(said.append, run=_maven()) == home
    assert dist.fetched() and "Maven Central" in said[0]
    with zipfile.ZipFile(home / "lib" / f"opensearch-{dist.VERSION}.jar") as zf:
        cls = zf.read(dist._FD_CHECK)
        assert b"\x03\x00\x00\xff\xff" not in cls and b"\x03" + dist.FD_CHECK_LIMIT.to_bytes(4, "big") in cls
        assert zf.read("org/opensearch/Other.class") == b"other"
    assert sorted(p.name for p in home.parent.iterdir()) == [f"opensearch-{dist.VERSION}",
                                                            f"opensearch-{dist.VERSION}.lock"], "no temp dir left"
    assert dist.ensure_dist(said.append, run=_maven(code=1)) == home and len(said) == 2, "fetched only once"


def test_concurrent_fetches_fetch_once(home: Path) -> None:
    calls: list[int] = []
    threads = [threading.Thread(target=dist.ensure_dist, args=(lambda _: None, _maven(calls=calls)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dist.fetched() and len(calls) == 1


@pytest.mark.parametrize("maven", [_maven(code=1), _maven(jar=False)], ids=["maven-fails", "no-server-jar"])
def test_a_failed_fetch_leaves_nothing_behind(home: Path, maven: Any) -> None:
    with pytest.raises(InfrastructureError):
        dist.ensure_dist(lambda _: None, run=maven)
    assert not dist.fetched() and [p.name for p in home.parent.iterdir()] == [f"opensearch-{dist.VERSION}.lock"]


def test_an_unexpected_class_is_not_patched_blindly(tmp_path: Path) -> None:
    jar = tmp_path / "x.jar"
    jar.write_bytes(_jar(jar, constant=b"\x03\x00\x00\x10\x00"))
    with pytest.raises(InfrastructureError, match="cannot lower its threshold"):
        dist.patch_fd_check(jar)


def test_missing_tools_are_one_line_exit_3(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist.shutil, "which", lambda tool: None if tool == "mvn" else f"/usr/bin/{tool}")
    with pytest.raises(MissingDependencyError, match=r"^`mvn` not found: apt-get install") as err:
        dist.ensure_dist(lambda _: None)
    assert err.value.exit_code == 3 and "\n" not in str(err.value)


def test_the_node_config(tmp_path: Path) -> None:
    values = nodes.settings(name="opensearch-2", address="10.0.0.11", names=["opensearch-1", "opensearch-2"],
                            seeds=["10.0.0.10", "10.0.0.11"], data=str(tmp_path / "data"), extra={"a.b": "1s"})
    yml = nodes.node_yml("opensearch-2", values)
    assert "network.host: 10.0.0.11" in yml and "discovery.seed_hosts: [10.0.0.10:9300, 10.0.0.11:9300]" in yml
    assert "cluster.initial_cluster_manager_nodes: [opensearch-1, opensearch-2]" in yml
    assert "node.store.allow_mmap: false" in yml and "a.b: 1s" in yml
    conf = tmp_path / "dist" / "config"
    conf.mkdir(parents=True)
    (conf / "jvm.options").write_text("-Xms1g\n-Xmx1g\n-XX:+UseG1GC\n9-:-Xlog:gc*:file=logs/gc.log\n")
    written = dist.write_conf(tmp_path / "dist", tmp_path / "node", yml)
    assert (written / "jvm.options").read_text() == "-XX:+UseG1GC\n" and (written / "opensearch.yml").read_text() == yml


def test_the_container_command_sets_the_same_settings_through_the_environment(tmp_path: Path) -> None:
    """The official image's way (its entrypoint turns dotted variables into -E options), one shell line
    without a ``$`` of its own (Compose would interpolate it); the docker backend runs it in place of the
    image's relative entrypoint."""
    values = nodes.settings(name="opensearch-1", address="10.0.0.10", names=["opensearch-1", "opensearch-2"],
                            seeds=["10.0.0.10", "10.0.0.11"], data="/d", extra={})
    argv = nodes.container_argv(values, 256)
    assert argv[:2] == ("sh", "-c") and len(argv) == 3 and "$" not in argv[2]
    words = shlex.split(argv[2])
    assert words[:5] == ["cd", "/usr/share/opensearch", "&&", "exec", "env"]
    assert words[-2:] == ["./opensearch-docker-entrypoint.sh", "opensearch"]
    assert {"DISABLE_SECURITY_PLUGIN=true", "OPENSEARCH_JAVA_OPTS=-Xms256m -Xmx256m", "path.data=/d",
            "discovery.seed_hosts=10.0.0.10:9300,10.0.0.11:9300", "node.store.allow_mmap=false"} <= set(words)
    spec = nodes.docker_spec("opensearch-1", tmp_path / "opensearch-1", values, 256, "chaoskit/opensearch:3.8.0")
    assert spec.image == "chaoskit/opensearch:3.8.0"
    assert spec.replace_entrypoint and spec.argv == argv and spec.user is None and spec.extra_ports == (9300,)
