"""The docker path as a user without root takes it: no host tool, auto's choice, a work directory emptied.

The suite runs as root (``make test``); where a user's run differs by a choice, the choice is forced: partitions
from a helper container (``CHAOSKIT_DOCKER_NETFAULTS=helper``, what a runner that is not root gets), and no
``CHAOSKIT_*_IMAGE`` variable (a user exports none: docker runs the images ``chaoskit images`` built where the
official ones cannot be pulled). The host tools a user does not have are stubs first on PATH that record a
call and fail. The parts that must run as another user (handing the work directory back, the set-up script)
do, as ``nobody`` in the docker group.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chaoskit import toxiproxy
from chaoskit.backends.docker import LABEL, docker_client
from chaoskit.backends.docker_images import pick
from chaoskit.backends.docker_workdir import hand_back
from chaoskit.backends.ledger import Ledger
from tests.integration.util import CHAOSKIT, cli_env, created_runs

pytestmark = [pytest.mark.integration, pytest.mark.docker]

HOST_TOOLS = ("ip", "iptables", "nsenter", "runuser", "sudo")
ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _stubbed_env(tmp_path: Path, state_dir: Path) -> tuple[dict[str, str], Path]:
    """The CLI's environment with every host tool a stub that logs its call and fails; and the log."""
    stubs, calls = tmp_path / "stubs", tmp_path / "host-tool-calls.log"
    stubs.mkdir()
    for tool in HOST_TOOLS:
        (stubs / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\nexit 1\n')
        (stubs / tool).chmod(0o755)
    env = {k: v for k, v in cli_env(state_dir).items() if not (k.startswith("CHAOSKIT_") and k.endswith("_IMAGE"))}
    env.update(PATH=f"{stubs}:{os.environ['PATH']}", CHAOSKIT_DOCKER_NETFAULTS="helper")
    return env, calls


def test_docker_runs_of_a_partition_toxiproxy_and_dns_call_no_host_tool(tmp_path: Path, state_dir: Path,
                                                                         docker_clean: None) -> None:
    """`--backend auto` runs a partition, a toxic and a DNS experiment on docker with ip, iptables, nsenter, runuser
    and sudo failing stubs: none is called, by the runs or by `chaoskit cleanup`, and every verdict holds."""
    env, calls = _stubbed_env(tmp_path, state_dir)
    names = ["redis-primary-partition", "redis-primary-latency", "redis-primary-endpoint-dns"]
    out = tmp_path / "out"
    res = subprocess.run([*CHAOSKIT, "run", *names, "--backend", "auto", "-j", "3", "--out", str(out)], env=env,
                         capture_output=True, text=True, timeout=600)
    subprocess.run([*CHAOSKIT, "cleanup"], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert not calls.exists(), f"host tools were called:\n{calls.read_text()}"
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    for name in names:
        journal = json.loads((out / name / "journal.json").read_text())
        assert journal["backend"] == "docker" and journal["verdict"] == "pass", (name, journal["checks"])
    assert "toxiproxy on the client path" in res.stdout and "dns: primary." in res.stdout
    left = [run for run in created_runs(state_dir) if Path(tempfile.gettempdir(), f"chaoskit-{run}").exists()]
    assert left == [], "work directories left in the temp directory"
    client = docker_client()
    redis = pick(client, "redis:7.2", "chaoskit/redis:7")
    if redis == "chaoskit/redis:7":  # no registry here: the local image stood in, and the run said so
        assert "images built here: chaoskit/redis:7 for redis:7.2" in res.stdout


def _as_nobody(fn: Callable[..., bool], *args: object) -> int:
    """Run ``fn(*args)`` in a child process as nobody (in the docker group); its exit status (0: it returned
    True). Forked, so the child imports nothing more."""
    docker_gid = grp.getgrnam("docker").gr_gid
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 2
        try:
            os.setgroups([docker_gid])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            status = 0 if fn(*args) else 1
        finally:
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _foreign(root: Path) -> list[str]:
    return [str(Path(d) / n) for d, dirs, files in os.walk(root) for n in (*dirs, *files)
            if os.lstat(Path(d) / n).st_uid != NOBODY]


def test_a_user_s_work_directory_is_handed_back_past_an_image_without_chown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's run with Toxiproxy (its container the newest, of an image FROM scratch: no chown) gets its work
    directory back -- the data directory a container's root made, mode 0700 -- from a container of a node's image."""
    client = docker_client()
    redis = pick(client, "redis:7.2", "chaoskit/redis:7")
    toxi = pick(client, toxiproxy.image(), toxiproxy.LOCAL_TAG)
    assert redis and toxi, "the redis and toxiproxy images: run `chaoskit images`"
    top = Path(tempfile.mkdtemp(prefix="chaoskit-test-handback."))
    workdir, state = top / "work", top / "state"
    run_id = f"hb{os.getpid() % 10000:04d}"
    try:
        for d in (top, workdir, state, state / "runs"):  # the user's own: the ledger is written in the child too
            d.mkdir(exist_ok=True)
            os.chown(d, NOBODY, NOBODY)
        monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(state))
        ledger = Ledger.create(run_id, "docker", None)
        ledger.record("dir", str(workdir))
        labels = {LABEL: run_id}
        client.containers.run(redis, ["-c", f"mkdir -p {workdir}/redis-1/data && echo x > {workdir}/redis-1/data/f "
                                            f"&& chmod 700 {workdir}/redis-1/data"], entrypoint=["sh"], user="0",
                              name=f"ck-{run_id}-redis-1", labels=labels, network_mode="none",
                              volumes={str(workdir): {"bind": str(workdir), "mode": "rw"}})
        time.sleep(1.1)  # Created is kept to the second: the proxy is the newest, as in a run
        client.containers.create(toxi, ["-version"], name=f"ck-{run_id}-toxiproxy", labels=labels)
        assert _foreign(workdir), "the test must meet the problem: files of the container's root"
        assert _as_nobody(hand_back, None, ledger, LABEL) == 0, "hand_back must say it ran"
        assert _foreign(workdir) == [], "every file is the user's again"
    finally:
        for c in client.containers.list(all=True, filters={"label": f"{LABEL}={run_id}"}):
            c.remove(force=True)
        shutil.rmtree(top, ignore_errors=True)


def _setup_script(*args: str, groups: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """scripts/setup-system.sh as nobody (in ``groups``, e.g. the docker group)."""
    who = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}"]
    who += [f"--groups={groups}"] if groups else ["--clear-groups"]
    return subprocess.run([*who, "bash", str(ROOT / "scripts" / "setup-system.sh"), *args], capture_output=True,
                          text=True, timeout=60, env={"PATH": os.environ["PATH"], "HOME": "/", **(env or {})})


def test_the_set_up_takes_the_path_this_user_can_use() -> None:
    """`make chaos-<system>`'s set-up: a user whose Docker answers takes the docker path (no OS packages); a user
    without Docker or root is told both ways forward in one line (exit 3), and so is a user asking for local."""
    docker_gid = str(grp.getgrnam("docker").gr_gid)
    assert _setup_script("--path", "auto", groups=docker_gid).stdout.strip() == "docker"
    assert subprocess.run(["bash", str(ROOT / "scripts" / "setup-system.sh"), "--path", "auto"], capture_output=True,
                          text=True, check=True).stdout.strip() == "local"  # root: as before
    assert _setup_script("--backend", "auto", "redis", groups=docker_gid).returncode == 0
    nothing = _setup_script("--backend", "auto", "redis", env={"MAKE_TARGET": "chaos-redis"})
    assert nothing.returncode == 3 and nothing.stdout == "" and len(nothing.stderr.splitlines()) == 1, nothing
    assert "may not use the Docker daemon" in nothing.stderr and "sudo make chaos-redis BACKEND=local" in nothing.stderr
    local = _setup_script("--backend", "local", "redis", groups=docker_gid, env={"MAKE_TARGET": "chaos-redis"})
    assert local.returncode == 3 and len(local.stderr.splitlines()) == 1 and "needs root" in local.stderr, local
