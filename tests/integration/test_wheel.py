"""The wheel is the whole tool: built, installed into a fresh venv, run from a directory outside the checkout.

No editable install and no system site-packages: a file or a dependency missing from the wheel fails
here. The venv has the light install a Redis user makes, ``chaoskit[redis]``: the core and redis-py (with
dnspython), no other driver -- every experiment is still listed, and asking for another system is one line
naming its extra. Dependencies come through pip's cache. Prints how long each step took.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import docker_tests
from tests.integration.test_user_clients import CART_CLIENT
from tests.integration.util import cli_env, netns_names, server_pids

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("wheel")]  # one worker builds the venv once
ROOT = Path(__file__).resolve().parents[2]
SOURCE_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__",
                                       ".*_cache")


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{args}: exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory outside the checkout."""
    assert not tmp_path.resolve().is_relative_to(ROOT), "tmp_path must be outside the checkout"
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


@dataclass
class Install:
    """The wheel, and a fresh venv with ``chaoskit[redis]`` installed from it."""

    wheel: Path
    venv: Path
    timings: dict[str, float]

    @property
    def chaoskit(self) -> Path:
        return self.venv / "bin" / "chaoskit"


@pytest.fixture(scope="module")
def redis_install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """Built once for this module's tests (they share one xdist group)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    mark = time.monotonic()
    # build from a copy, so no stale build/ directory of the checkout can slip a file into the wheel
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=SOURCE_IGNORE)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", source], tmp, env, 300)
    (wheel,) = (tmp / "dist").glob("chaoskit-*.whl")
    built = time.monotonic() - mark
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp, env, 120)
    _run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[redis]"], tmp, env, 600)
    return Install(wheel, venv, {"build wheel": built, "venv + pip install chaoskit[redis]": time.monotonic() - mark
                                 - built})


@pytest.fixture
def wheel_env(state_dir: Path) -> Iterator[dict[str, str]]:
    env = cli_env(state_dir)
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "CHAOSKIT_EXPERIMENTS", "PYTHONHOME"):
        env.pop(var, None)
    yield env


def _assert_left_nothing(state_dir: Path) -> None:
    """Scoped to this test's runs (other runs on the same machine come and go meanwhile)."""
    assert netns_names(state_dir) == set(), "network namespaces left behind"
    assert server_pids(state_dir) == set(), "server processes left behind"
    assert not list((state_dir / "runs").glob("*.json")), "ledger entries left behind"


USER_TEST = """
import time

import redis
from redis.sentinel import Sentinel

import chaoskit


def test_my_redis_code_follows_a_failover(chaoskit_cluster):
    c = chaoskit_cluster("redis")
    r = Sentinel(c.connection.sentinels, socket_timeout=0.5).master_for(c.connection.service_name,
                                                                        socket_timeout=0.5)
    r.set("before", 1)
    with c.fault(chaoskit.Kill("primary")):
        c.wait_failover()
        for _ in range(50):
            try:
                r.set("during", 2)
                break
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                r.connection_pool.disconnect()
                time.sleep(0.1)
    c.wait_settled()
    assert r.get("during") == b"2"
"""


def test_wheel_installed_in_a_fresh_venv_lists_composes_and_runs_user_code(
        redis_install: Install, elsewhere: Path, state_dir: Path, wheel_env: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    timings = dict(redis_install.timings)
    started = mark = time.monotonic()

    def lap(step: str) -> None:
        nonlocal mark
        timings[step] = time.monotonic() - mark
        mark = time.monotonic()

    venv, chaoskit = redis_install.venv, redis_install.chaoskit
    where = _run([venv / "bin" / "python", "-c", "import chaoskit; print(chaoskit.__file__)"], elsewhere, wheel_env, 60)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    try:
        listing = _run([chaoskit, "list"], elsewhere, wheel_env, 60)  # every system's, with only redis-py there
        listed = listing.stdout
        assert listing.stderr == ""  # none skipped
        builtin = sorted(p.stem for p in (ROOT / "chaoskit" / "experiments").glob("*.yaml"))
        assert len(builtin) >= 21
        assert [name for name in builtin if name not in listed] == []

        mine = elsewhere / "mine"
        mine.mkdir()
        doc = yaml.safe_load((ROOT / "chaoskit" / "experiments" / "redis-primary-kill.yaml").read_text())
        (mine / "my-kill.yaml").write_text(yaml.safe_dump({**doc, "name": "my-kill"}))
        assert "my-kill" in _run([chaoskit, "list", "--experiments", "mine"], elsewhere, wheel_env, 60).stdout

        composed = _run([chaoskit, "compose", "redis"], elsewhere, wheel_env, 60).stdout
        assert composed == (ROOT / "compose" / "redis.yml").read_text()
        pg = yaml.safe_load(_run([chaoskit, "compose", "postgres"], elsewhere, wheel_env, 60).stdout)
        context = Path(pg["services"]["pg-1"]["build"]["context"])
        assert context.is_relative_to(venv) and (context / "Dockerfile").is_file()
        if docker_tests.enabled():  # cached: nothing is rebuilt when the images exist
            assert "images ready" in _run([chaoskit, "images"], elsewhere, wheel_env, 1800).stdout
        lap("list + compose (+ images)")

        # the user's own client, in the user's own project, under two built-in experiments
        shop = elsewhere / "shop"
        shop.mkdir()
        (shop / "cart_client.py").write_text(CART_CLIENT)
        out = elsewhere / "out"
        _run([chaoskit, "run", "redis-primary-kill", "redis-primary-partition", "--client", "cart_client:make_client",
              "--path", "shop", "--backend", "local", "--out", out], elsewhere, wheel_env, 600)
        kill, part = (json.loads((out / name / "journal.json").read_text())
                      for name in ("redis-primary-kill", "redis-primary-partition"))
        assert kill["client"] == part["client"] == "user:cart_client:make_client"
        assert kill["verdict"] == "pass" and kill["metrics"]["lost_writes"] == 0, kill["checks"]
        assert part["verdict"] == "pass" and part["metrics"]["lost_writes"] > 100, part["checks"]
        _assert_left_nothing(state_dir)  # (and the second reading recounts both runs from their histories)
        lap("run kill + partition with a user client")

        # a pytest file of the user's, on its own redis-py code, with the plugin the wheel registers
        _run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", "pytest"], elsewhere, wheel_env,
             300)
        (shop / "test_my_cache.py").write_text(USER_TEST)
        _run([venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider", "--chaoskit-backend", "local",
              "shop/test_my_cache.py"], elsewhere, wheel_env, 300)
        _assert_left_nothing(state_dir)
        lap("pytest file with chaoskit_cluster")
    finally:
        subprocess.run([chaoskit, "cleanup"], cwd=elsewhere, env=wheel_env, capture_output=True, timeout=120)
    timings["total"] = time.monotonic() - started + sum(redis_install.timings.values())
    with capsys.disabled():
        print("\nwheel test: " + ", ".join(f"{step} {secs:.1f} s" for step, secs in timings.items()))


DRIVERS = ("redis", "dns", "psycopg", "pymongo", "cassandra", "opensearchpy", "pymemcache", "mongod_wheel")


@pytest.mark.docker
def test_the_redis_install_runs_redis_on_docker_and_names_the_extra_of_another_system(
        redis_install: Install, elsewhere: Path, state_dir: Path, wheel_env: dict[str, str], docker_clean: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    python, chaoskit = redis_install.venv / "bin" / "python", redis_install.chaoskit
    found = _run([python, "-c", "import importlib.util as u, importlib.metadata as m; print(*[d for d in "
                  f"{DRIVERS[:-1]!r} if u.find_spec(d)], *[d.metadata['Name'] for d in m.distributions() "
                  "if d.metadata['Name'].startswith('fiftyone')])"], elsewhere, wheel_env, 60).stdout.split()
    assert found == ["redis", "dns"]  # chaoskit[redis]: redis-py and dnspython, no other driver, no mongod wheel

    # the images this machine built (no registry here), named as `chaoskit images --env` names them
    images = _run([chaoskit, "images", "--env"], elsewhere, wheel_env, 60).stdout.split()
    env = {**wheel_env, **dict(line.split("=", 1) for line in images)}
    assert env["CHAOSKIT_REDIS_IMAGE"]
    t = time.monotonic()
    out = elsewhere / "out"
    _run([chaoskit, "run", "redis-primary-kill", "--backend", "docker", "--out", out], elsewhere, env, 600)
    journal = json.loads((out / "journal.json").read_text())
    assert (journal["verdict"], journal["backend"]) == ("pass", "docker"), journal["checks"]
    assert journal["metrics"]["lost_writes"] == 0
    ran = time.monotonic() - t

    mongo = subprocess.run([chaoskit, "run", "mongo-primary-kill"], cwd=elsewhere, env=env, capture_output=True,
                           text=True, timeout=60)
    assert (mongo.returncode, mongo.stdout) == (2, "")
    assert mongo.stderr == "chaoskit: mongo needs its driver (pymongo): pip install 'chaoskit[mongo]'\n"
    assert not (elsewhere / "runs").exists()  # nothing started
    with capsys.disabled():
        print(f"\nchaoskit[redis] on docker: redis-primary-kill PASS in {ran:.1f} s (RTO "
              f"{journal['metrics']['rto_s']} s, {journal['metrics']['acked_writes']} acknowledged, 0 lost); "
              "mongo-primary-kill: exit 2, one line")
