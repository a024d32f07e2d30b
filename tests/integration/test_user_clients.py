"""A user's own client, in a module outside this repository, driven through built-in experiments.

Every run is recounted from history.jsonl by the second reading (conftest), so the lost-write figures
checked here are also the ones a user can recount.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.integration.util import CHAOSKIT, cli_env

pytestmark = pytest.mark.integration

# What a team's own code looks like: redis-py through Sentinel, a set per cart, its own retry.
CART_CLIENT = textwrap.dedent('''
    import time

    import redis
    from redis.sentinel import Sentinel


    class CartClient:
        def __init__(self, connection):
            sentinel = Sentinel(connection.sentinels, socket_timeout=0.5)
            self.r = sentinel.master_for(connection.service_name, socket_timeout=0.5, socket_connect_timeout=0.5)

        def write(self, value):
            for attempt in range(40):                   # 40 x 0.1 s: rides out a failover
                try:
                    self.r.sadd("cart:items", value)
                    return
                except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                    if attempt == 39:
                        raise
                    self.r.connection_pool.disconnect()  # ask Sentinel again for the primary
                    time.sleep(0.1)

        def read(self, value):
            return bool(self.r.sismember("cart:items", value))

        def read_all(self):
            return [int(v) for v in self.r.smembers("cart:items")]

        def close(self):
            self.r.close()

        def definite_failure(self, exc):
            return isinstance(exc, redis.ReadOnlyError)  # a replica refused it: certainly not applied


    def make_client(connection):
        return CartClient(connection)


    def make_nothing(connection):
        return object()


    def make_from_uri(connection):
        return CartClient(connection.uri)              # Redis has no uri: a MongoDB habit
''')


@pytest.fixture
def user_code(tmp_path: Path) -> Path:
    """The user's project: its own module, not importable from this repository."""
    project = tmp_path / "shop"
    project.mkdir()
    (project / "cart_client.py").write_text(CART_CLIENT)
    return project


def _chaoskit(args: list[str], state_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHAOSKIT, *args], env=cli_env(state_dir), cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_a_user_client_under_kill_and_partition(tmp_path: Path, user_code: Path, state_dir: Path,
                                                no_leftovers: None) -> None:
    out = tmp_path / "out"
    res = _chaoskit(["run", "redis-primary-kill", "redis-primary-partition", "--backend", "local",
                     "--client", "cart_client:make_client", "--out", str(out)], state_dir, cwd=user_code)
    print(res.stdout[-3000:], res.stderr[-2000:])
    kill = json.loads((out / "redis-primary-kill" / "journal.json").read_text())
    part = json.loads((out / "redis-primary-partition" / "journal.json").read_text())
    assert kill["client"] == part["client"] == "user:cart_client:make_client"
    assert "(user:cart_client:make_client client)" in res.stdout
    assert kill["metrics"]["acked_writes"] > 500 and kill["metrics"]["lost_writes"] == 0, kill["checks"]
    assert kill["metrics"]["failover_happened"] is True and kill["metrics"]["rto_s"] is not None
    assert part["metrics"]["lost_writes"] > 100, part["checks"]  # the isolated primary's acks are thrown away
    assert res.returncode == 0, res.stdout[-2000:]


def test_a_user_client_named_in_the_users_own_experiment_file(tmp_path: Path, user_code: Path, state_dir: Path,
                                                              no_leftovers: None) -> None:
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "cart-survives-failover.yaml").write_text(textwrap.dedent('''
        name: cart-survives-failover
        system: redis
        purpose: Our cart client keeps every acknowledged item through a Sentinel failover.
        hypothesis: The cart's retry rides out the failover; nothing it acknowledged is lost.
        client: {factory: "cart_client:make_client"}
        workload: {writers: 2, readers: 1, rate_hz: 200}
        schedule: {steady_s: 2, fault_s: 4, recover_s: 2}
        faults: [{kind: kill, target: primary}]
        expect:
          - {metric: lost_writes, max: 0}
          - {metric: failover_happened, equals: true}
    '''))
    res = _chaoskit(["run", "cart-survives-failover", "--experiments", str(experiments), "--path", str(user_code),
                     "--backend", "local", "--out", str(tmp_path / "out")], state_dir, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    journal = json.loads((tmp_path / "out" / "journal.json").read_text())
    assert journal["client"] == "user:cart_client:make_client"
    assert journal["metrics"]["reads_checked"] > 0  # the user's read() was driven too


@pytest.mark.parametrize(("factory", "needle", "started"), [
    ("cart_client:no_such", "does not import: AttributeError", False),
    ("nowhere_module:make", "does not import: ModuleNotFoundError", False),
    ("cart_client", "write it as 'package.module:make_client'", False),
    ("cart_client:make_nothing", "returned a object without write, read, read_all, close", True),
    ("cart_client:make_from_uri", "has no attribute 'uri'", True),
])
def test_a_bad_user_client_is_one_line_exit_2_and_nothing_is_left(user_code: Path, state_dir: Path,
                                                                   no_leftovers: None, factory: str, needle: str,
                                                                   started: bool) -> None:
    res = _chaoskit(["run", "redis-primary-kill", "--backend", "local", "--client", factory], state_dir,
                    cwd=user_code)
    assert res.returncode == 2, (res.stdout, res.stderr)
    (line,) = res.stderr.strip().splitlines()
    assert needle in line, line
    log = state_dir / "runs" / "created.log"
    assert log.exists() == started, "an import problem must stop the run before anything starts"
