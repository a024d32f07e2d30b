"""The laptop path, run as a Docker Desktop user would run it, on this Linux daemon (issue 20).

A non-root user in the ``docker`` group runs the installed wheel from a venv it may only execute; the host is
cut off from every container address for that user (tests/integration/desktop_sim.py says how, and why it
stands for Desktop's VM); chaoskit publishes every node's ports on 127.0.0.1 and partitions through helper
containers. Four built-in experiments side by side and the user's own redis-py Sentinel client on a
``chaoskit.cluster("redis")`` must pass with 0 packets rejected -- and a direct connection from the user to a
container address must be rejected, so the zero means something. The user's runs must leave no container,
network, ledger entry or file in /tmp.

A second test runs the CI example (examples/ci: ``pytest examples/cart --chaoskit-backend docker``) as that user
without the cut-off, as on a CI runner whose host reaches the containers.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration import desktop_sim as sim
from tests.integration.test_wheel import ROOT, SOURCE_IGNORE
from tests.integration.util import chaoskit_containers, chaoskit_networks, created_runs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("desktop"),  # one simulated user: its rule and the CI example must not overlap
    pytest.mark.docker,
]

EXPERIMENTS = ("redis-primary-kill", "mongo-partition-w1", "postgres-primary-kill", "redis-primary-partition")
EXTRAS = "redis,postgres,mongo"  # the systems' drivers, as a user installs them: chaoskit[redis,postgres,mongo]
TOOLS = ("pytest",)  # the app's own, installed beside the wheel

API_SCRIPT = '''
"""The user's own redis-py on a chaoskit cluster: Sentinel from c.connection, a write, a kill, the write after."""
import json
import socket
import sys
import time

import redis
from redis.sentinel import Sentinel

import chaoskit


class DesktopSentinel(Sentinel):
    """Sentinel announces in-network addresses; c.connection.translate gives where this host reaches them."""

    def __init__(self, connection, **kwargs):
        super().__init__(connection.sentinels, **kwargs)
        self.connection = connection

    def discover_master(self, service_name):
        return self.connection.translate(super().discover_master(service_name))


with chaoskit.cluster("redis", backend="docker") as c:
    r = DesktopSentinel(c.connection, socket_timeout=0.5).master_for(c.connection.service_name,
                                                                     socket_timeout=0.5)
    r.set("before", 1)
    with c.fault(chaoskit.Kill("primary")):
        killed_at = time.monotonic()
        promoted = c.wait_failover()
        for attempt in range(1, 101):
            try:
                r.set("after", 2)
                break
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                r.connection_pool.disconnect()
                time.sleep(0.1)
        written_s = time.monotonic() - killed_at
    c.wait_settled()
    host, port = next(iter(c.connection.announced))  # an address Sentinel announces: a container's own
    print(json.dumps({"before": r.get("before").decode(), "after": r.get("after").decode(), "promoted": promoted,
                      "write_after_kill_s": round(written_s, 2), "attempts": attempt, "control": [host, port]}),
          flush=True)
    sys.stdin.readline()  # the test reads the rule's counters first
    try:
        socket.create_connection((host, port), timeout=3).close()
        print(json.dumps({"direct": "connected"}), flush=True)
    except OSError as exc:
        print(json.dumps({"direct": type(exc).__name__}), flush=True)
'''


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[pwd.struct_passwd, Path]]:
    """The simulated user and a venv of the freshly built wheel (plus the app's drivers) it may execute."""
    build = tmp_path_factory.mktemp("desktop-wheel")
    shutil.copytree(ROOT, build / "source", ignore=SOURCE_IGNORE)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", build / "dist", build / "source"],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (build / "dist").glob("chaoskit-*.whl")
    pw = sim.ensure_user()
    with sim.user_venv(wheel, EXTRAS, TOOLS) as venv:
        yield pw, venv


def _assert_left_nothing(state: Path, uid: int, tmp_before: set[str]) -> None:
    """Only this test's runs count (those in the user's own state directory)."""
    assert chaoskit_containers(state) == set() and chaoskit_networks(state) == set(), "containers/networks left"
    assert not list((state / "runs").glob("*.json")), "ledger entries left behind"
    assert sim.tmp_files_of(uid) - tmp_before == set(), "the user's runs left files in /tmp"


def _journal(out: Path, name: str) -> dict[str, Any]:
    rerun = out / "rerun" / "journal.json"  # see _finish_suite
    path = rerun if name == "redis-primary-kill" and rerun.exists() else out / name / "journal.json"
    return dict(json.loads(path.read_text()))


def _figures(out: Path) -> dict[str, dict[str, Any]]:
    journals = {name: _journal(out, name) for name in EXPERIMENTS}
    return {name: {"verdict": j["verdict"], "rto_s": j["metrics"]["rto_s"], "lost": j["metrics"]["lost_writes"],
                   "acked": j["metrics"]["acked_writes"], "backend": j["backend"]} for name, j in journals.items()}


def _finish_suite(suite: subprocess.Popen[str], out: Path, rerun: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Wait for the suite. redis-primary-kill's RTO bound (3 s) has ~0.1 s to spare on this 2-core machine and
    Sentinel's own detection and election take nearly all of it: when that is the suite's only violated check,
    the experiment runs once more, alone (``rerun``), and must pass. Returns what happened, to print."""
    text, _ = suite.communicate(timeout=480)
    if suite.returncode == 0:
        return "side by side"
    violated = [(name, c["name"]) for name in EXPERIMENTS for c in _journal(out, name)["checks"]
                if c["valid"] is not True]
    assert violated == [("redis-primary-kill", "rto-s")], text[-4000:]
    first = _journal(out, "redis-primary-kill")["metrics"]["rto_s"]
    res = subprocess.run(rerun, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return (f"redis-primary-kill RTO {first} s side by side (load average {os.getloadavg()[0]:.1f}), "
            f"{_journal(out, 'redis-primary-kill')['metrics']['rto_s']} s alone")


def _control(api: subprocess.Popen[str], control: tuple[str, int]) -> str:
    """Root reaches the container address (it is live); then the user tries it directly: what it got."""
    with socket.create_connection(control, timeout=3) as s:  # root is not cut off: the address answers
        s.sendall(b"PING\r\n")
        assert s.recv(64).startswith(b"+PONG")
    assert api.stdin is not None
    api.stdin.write("go\n")
    api.stdin.flush()
    return str(json.loads(sim.read_line(api, 30) or "{}").get("direct"))


def test_desktop_simulated_non_root_user_cut_off_from_container_addresses(
        laptop: tuple[pwd.struct_passwd, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pw, venv = laptop
    started = time.time()
    tmp_before = sim.tmp_files_of(pw.pw_uid)
    suite = api = None
    with sim.user_workdir(pw, venv) as work:
        state, out = work / "state", work / "out"
        (work / "api.py").write_text(API_SCRIPT)
        env = sim.user_env(pw, state, CHAOSKIT_DOCKER_ADDRESSING="published")  # forced: see README
        try:
            with sim.host_cut_off(pw.pw_uid) as rule, sim.container_starts() as started_names:
                suite = subprocess.Popen(sim.as_user(pw, [venv / "bin" / "chaoskit", "run", *EXPERIMENTS, "-j", "4",
                                                          "--backend", "docker", "--out", out]),
                                         cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                api = subprocess.Popen(sim.as_user(pw, [venv / "bin" / "python", "api.py"]), cwd=work, env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                first = sim.read_line(api, 240)
                rerun = sim.as_user(pw, [venv / "bin" / "chaoskit", "run", "redis-primary-kill", "--backend", "docker",
                                         "--out", out / "rerun"])
                how = _finish_suite(suite, out, rerun, work, env)
                assert first, "the API script said nothing"
                result = json.loads(first)
                during = rule.counts()
                direct = _control(api, tuple(result["control"]))
                assert api.wait(60) == 0
                after = rule.counts()
        finally:  # on a failure: each tears its runs down (the user's cleanup then takes what is left)
            sim.stop(api, signal.SIGINT)
            sim.stop(suite, signal.SIGTERM)
        runs = created_runs(state)
        helpers = sim.helpers_of(started_names, runs)
        figures = _figures(out)
        shutil.copytree(out, tmp_path / "desktop-runs")  # the second reading recounts every run's history
        _assert_left_nothing(state, pw.pw_uid, tmp_before)
    with capsys.disabled():
        print(f"\ndesktop simulation ({time.time() - started:.0f} s, rule over {', '.join(rule.subnets)}): "
              f"{json.dumps(figures)}; api: {json.dumps(result)}; counters during: {during}, after the control: "
              f"{after} (direct: {direct}); helper containers: {helpers}; {how}")
    assert all(f["verdict"] == "pass" and f["backend"] == "docker" for f in figures.values()), figures
    assert figures["redis-primary-kill"]["lost"] == figures["postgres-primary-kill"]["lost"] == 0
    assert figures["redis-primary-partition"]["lost"] > 0 and figures["mongo-partition-w1"]["lost"] > 0  # real
    assert (result["before"], result["after"]) == ("1", "2") and result["promoted"] != "redis-1"
    assert during["rejected"] == 0 and during["loopback"] > 1000  # everything went through published ports
    assert direct == "ConnectionRefusedError" and after["rejected"] == 1  # the rule does reject the user
    assert helpers >= 4  # partitions were made by helper containers (2 partitions: apply + check + heal)


def test_a_killed_non_root_run_is_cleaned_up_by_its_user(laptop: tuple[pwd.struct_passwd, Path]) -> None:
    """The user's runner SIGKILLed mid-run leaves containers and a MongoDB data directory of the container's
    user; the user's own ``chaoskit cleanup`` removes all of it (handing the directory back first)."""
    pw, venv = laptop
    tmp_before = sim.tmp_files_of(pw.pw_uid)
    with sim.user_workdir(pw, venv) as work:
        state = work / "state"
        env = sim.user_env(pw, state, CHAOSKIT_DOCKER_ADDRESSING="published")
        run = subprocess.Popen(sim.as_user(pw, [venv / "bin" / "chaoskit", "run", "mongo-primary-kill", "--backend",
                                                "docker", "--out", work / "out"]),
                               cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = [sim.read_line(run, 120)]
            while lines[-1] and "steady state" not in lines[-1]:
                lines.append(sim.read_line(run, 120))
            assert lines[-1], "".join(lines)
            run.kill()  # as a crashed laptop would: no teardown
            run.wait(30)
            (run_id,) = created_runs(state)
            assert chaoskit_containers(state) and sim.tmp_files_of(pw.pw_uid) - tmp_before, "nothing to clean?"
            assert sim.foreign_files(Path(f"/tmp/chaoskit-{run_id}"), pw.pw_uid), "no file of another user"
        finally:
            sim.stop(run, signal.SIGKILL, grace=30)
            res = subprocess.run(sim.as_user(pw, [venv / "bin" / "chaoskit", "cleanup"]), cwd=work, env=env,
                                 capture_output=True, text=True, timeout=180)
        assert res.returncode == 0 and f"run {run_id}: removed" in res.stdout, res.stdout + res.stderr
        _assert_left_nothing(state, pw.pw_uid, tmp_before)


def _workflow_command() -> list[str]:
    """The pytest command of examples/ci's "chaos tests" step, as argv."""
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "chaos-tests.yml").read_text())
    (step,) = [st for st in workflow["jobs"]["chaos"]["steps"] if st.get("name") == "chaos tests"]
    return shlex.split(step["run"])


def test_ci_example_runs_as_a_non_root_docker_user(laptop: tuple[pwd.struct_passwd, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """examples/ci's test step, run as a CI runner's user would run it: not root, in the docker group, the
    host reaching the containers (a Linux runner), chaoskit's modes as it detects them."""
    pw, venv = laptop
    argv = _workflow_command()
    assert argv[:2] == ["pytest", "examples/cart"] and "--chaoskit-backend" in argv, argv
    started = time.time()
    tmp_before = sim.tmp_files_of(pw.pw_uid)
    with sim.user_workdir(pw, venv) as work:  # a checkout: the example at the same path
        shutil.copytree(ROOT / "examples" / "cart", work / "examples" / "cart",
                        ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", work], check=True)
        state = work / "state"
        env = sim.user_env(pw, state, PYTEST_ADDOPTS=f"--basetemp={work / 'pytest'}")
        res = subprocess.run(sim.as_user(pw, [venv / "bin" / "pytest", *argv[1:]]), cwd=work, env=env,
                             capture_output=True, text=True, timeout=400)
        assert res.returncode == 0 and "2 passed" in res.stdout, res.stdout[-4000:] + res.stderr[-2000:]
        assert (work / "chaos-junit.xml").is_file()
        _assert_left_nothing(state, pw.pw_uid, tmp_before)
    with capsys.disabled():
        summary = res.stdout.strip().splitlines()[-1].strip("= ")
        print(f"\nCI example as {pw.pw_name}: {summary} ({time.time() - started:.0f} s)")
