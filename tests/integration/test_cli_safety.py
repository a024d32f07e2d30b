"""Crash safety and bad input, through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from chaoskit.experiment import EXPERIMENTS_DIR
from tests.integration.util import CHAOSKIT, cli_env, netns_names, run_ids, server_pids, start_run, wait_for_line

pytestmark = pytest.mark.integration


def test_cleanup_after_sigkill_removes_only_chaoskit_resources(tmp_path: Path, state_dir: Path) -> None:
    foreign_ns = f"foreign-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", foreign_ns], check=True)
    foreign = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(tmp_path / "foreign.sock"),
                                "--save", ""], stdout=subprocess.DEVNULL)
    try:
        proc = start_run(state_dir, tmp_path / "out")
        wait_for_line(proc, "fault: partition")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        (run_id,) = run_ids(state_dir)
        assert len(netns_names(state_dir)) == 7, "hub + 6 node namespaces should still exist after SIGKILL"
        assert len(server_pids(state_dir)) == 6, "6 servers should still be running"
        rules = subprocess.run(["ip", "netns", "exec", f"ck-{run_id}-redis-1", "iptables", "-S", "CHAOSKIT"],
                               capture_output=True, text=True).stdout
        assert "-j DROP" in rules, "the partition should still be in place"

        res = subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        assert f"run {run_id}" in res.stdout
        assert netns_names(state_dir) == set() and foreign_ns in netns_names()
        assert server_pids(state_dir) == set() and foreign.pid in server_pids()
        assert run_ids(state_dir) == []
        assert not Path(f"/tmp/chaoskit-{run_id}").exists()
        again = subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, text=True)
        assert again.returncode == 0 and "nothing to clean up" in again.stdout
        assert foreign.poll() is None, "a foreign redis-server must not be touched"
    finally:
        foreign.kill()
        foreign.wait()
        subprocess.run(["ip", "netns", "delete", foreign_ns])
        # a failed assertion above must not leave the killed run's servers behind
        subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, timeout=60)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_one_cleanup_after_sigkill_while_the_runner_is_a_zombie(tmp_path: Path, state_dir: Path,
                                                                 no_leftovers: None) -> None:
    # The runner is killed mid-fault and its parent (this test) does not reap it: it stays a zombie,
    # with its pid and start time still in /proc. A single cleanup must treat it as dead.
    proc = start_run(state_dir, tmp_path / "out")
    try:
        wait_for_line(proc, "fault: partition")
        proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _state(proc.pid) != "Z":
            assert time.monotonic() < deadline, "the killed runner never became a zombie"
            time.sleep(0.02)
        (run_id,) = run_ids(state_dir)
        res = subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        assert _state(proc.pid) == "Z", "the runner must still be an unreaped zombie during cleanup"
        assert f"run {run_id}: removed" in res.stdout, res.stdout
        assert res.stdout.splitlines()[-1] == "1 run(s) cleaned up", res.stdout
        assert run_ids(state_dir) == []
    finally:
        proc.kill()
        proc.communicate(timeout=10)  # reap it
        if run_ids(state_dir):  # an assertion failed before cleanup: leave nothing running all the same
            subprocess.run([*CHAOSKIT, "cleanup"], env=cli_env(state_dir), capture_output=True, timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_fault_heals_and_tears_down(tmp_path: Path, state_dir: Path, no_leftovers: None,
                                               sig: signal.Signals) -> None:
    proc = start_run(state_dir, tmp_path / "out")
    wait_for_line(proc, "fault: partition")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err
    assert "healed: partition" in out
    assert run_ids(state_dir) == []


BAD_FILES = {
    "wrong-type": ("schedule: {steady_s: soon}", "schedule.steady_s"),
    "unknown-fault": ("faults: [{kind: explode}]", "unknown fault 'explode'"),
    "missing-field": (None, "expect"),
    "unknown-target": ("faults: [{kind: kill, target: redis-9}]", "unknown target 'redis-9'"),
}
GOOD = EXPERIMENTS_DIR / "redis-primary-kill.yaml"


def _bad_file(tmp_path: Path, name: str) -> Path:
    import yaml

    data = yaml.safe_load(GOOD.read_text())
    patch, _ = BAD_FILES[name]
    if patch is None:
        del data["expect"]
    else:
        data.update(yaml.safe_load(patch))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("case", [*BAD_FILES, "unknown-experiment", "unknown-backend", "not-yaml"])
def test_bad_input_is_one_line_exit_2_nothing_started(tmp_path: Path, state_dir: Path, case: str) -> None:
    if case == "unknown-experiment":
        args, needle = ["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"
    elif case == "unknown-backend":
        args, needle = ["run", "redis-primary-kill", "--backend", "kubernetes"], "unknown backend 'kubernetes'"
    elif case == "not-yaml":
        path = tmp_path / "broken.yaml"
        path.write_text("name: [unclosed\n")
        args, needle = ["run", str(path)], "not valid YAML"
    else:
        args, needle = ["run", str(_bad_file(tmp_path, case))], BAD_FILES[case][1]
    res = subprocess.run([*CHAOSKIT, *args], env=cli_env(state_dir), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert run_ids(state_dir) == [] and not (state_dir / "runs" / "created.log").exists(), "nothing may start"
    assert res.stdout == ""


def test_list_shows_every_experiment(state_dir: Path) -> None:
    res = subprocess.run([*CHAOSKIT, "list"], env=cli_env(state_dir), capture_output=True, text=True)
    assert res.returncode == 0
    for name in ("redis-primary-kill", "redis-primary-pause", "redis-primary-partition",
                 "redis-primary-partition-guarded", "redis-replica-read-lag", "redis-primary-kill-pinned-client",
                 "redis-planned-failover", "redis-client-pause", "redis-planned-failover-notified"):
        assert name in res.stdout


def test_up_and_down_leave_nothing_behind(tmp_path: Path, state_dir: Path) -> None:
    # `up` then `down`: a lab topology survives the CLI exiting, and `down` removes it all.
    try:
        res = subprocess.run([*CHAOSKIT, "up", "redis", "--backend", "local"], env=cli_env(state_dir),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "redis-1" in res.stdout and "sentinel-3" in res.stdout
        assert len(server_pids(state_dir)) == 6 and len(netns_names(state_dir)) == 7
        ledger = json.loads(next((state_dir / "runs").glob("*.json")).read_text())
        assert ledger["topology"] == "redis" and ledger["owner_pid"] is None
    finally:
        down = subprocess.run([*CHAOSKIT, "down"], env=cli_env(state_dir), capture_output=True, text=True,
                              timeout=60)
    assert down.returncode == 0, down.stderr
    assert netns_names(state_dir) == set() and server_pids(state_dir) == set()


def test_missing_server_binary_is_exit_3_with_install_hint(tmp_path: Path, state_dir: Path) -> None:
    env = {**cli_env(state_dir), "PATH": "/nonexistent"}
    res = subprocess.run([*CHAOSKIT, "run", "redis-primary-kill", "--backend", "local"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, (res.stdout, res.stderr)
    (line,) = res.stderr.strip().splitlines()
    assert "redis-server" in line and "apt-get install" in line
    assert run_ids(state_dir) == []


def test_unreachable_docker_daemon_is_exit_3(tmp_path: Path, state_dir: Path) -> None:
    env = {**cli_env(state_dir), "DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    res = subprocess.run([*CHAOSKIT, "run", "redis-primary-kill", "--backend", "docker"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, (res.stdout, res.stderr)
    (line,) = res.stderr.strip().splitlines()
    assert "Docker daemon not reachable" in line and "--backend local" in line
    assert run_ids(state_dir) == []
