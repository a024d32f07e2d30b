"""Docker Desktop, simulated on this Linux daemon (tests/integration/test_desktop_sim.py): a non-root user in
the ``docker`` group, a venv of the wheel it may only execute, and a rule that cuts that user off from every
container address, as the host of Docker Desktop's VM is.

The rule is a chain of the root namespace's OUTPUT. For the simulated user's packets only (``--uid-owner``) it
REJECTs anything to the docker subnets chaoskit uses (CHAOSKIT_DOCKER_SUBNET_BASE, 10.214.0.0/16) and to the
default bridge, unless the kernel DNAT-ed it from a published port (a daemon with ``--userland-proxy=false``).
With the userland proxy (this daemon's default) a connection to a published port on 127.0.0.1 ends at
docker-proxy, a root process, which opens its own connection to the container -- as Desktop's port forwarder
does -- so none of the user's packets ever goes to a container address. Counting rules say how many packets
went to loopback (the published ports), how many were DNAT-ed and how many were rejected.
"""

from __future__ import annotations

import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "chaoskit-desktop"
CHAIN = "CK-DESKTOP-SIM"
CLAIMS = "/tmp/chaoskit-claims"  # machine-wide (mode 1777) and its .lock: kept by design, whoever made them
PYTHON = "/usr/bin/python3"  # the system's: the user cannot read root's venv under /root (mode 0700)


def ensure_user() -> pwd.struct_passwd:
    """The simulated laptop user: created when missing (a home, in the ``docker`` group), never removed."""
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--groups", "docker", USER], check=True)
        pw = pwd.getpwnam(USER)
    subprocess.run(["usermod", "--append", "--groups", "docker", USER], check=True)
    return pw


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=check)


def _remove_chain() -> None:
    while iptables("-D", "OUTPUT", "-j", CHAIN, check=False).returncode == 0:
        pass
    iptables("-F", CHAIN, check=False)
    iptables("-X", CHAIN, check=False)


def docker_subnets() -> list[str]:
    """What the host must not reach: chaoskit's docker subnets and the default bridge's."""
    base = os.environ.get("CHAOSKIT_DOCKER_SUBNET_BASE", "10.214")
    out = subprocess.run(["docker", "network", "inspect", "bridge", "--format",
                          "{{range .IPAM.Config}}{{.Subnet}} {{end}}"], capture_output=True, text=True).stdout
    return [f"{base}.0.0/16", *(s for s in out.split() if "." in s)]


@dataclass
class CutOff:
    """The rule in force for ``uid``; :meth:`counts` reads its packet counters."""

    uid: int
    subnets: list[str]

    def counts(self) -> dict[str, int]:
        """Packets of the user since the rule went in: ``rejected`` (to a container address), ``dnat`` (a
        kernel-forwarded published port), ``loopback`` (to 127.0.0.0/8: the published ports)."""
        out = iptables("-L", CHAIN, "-n", "-v", "-x").stdout.splitlines()[2:]
        rows = [line.split() for line in out if line.strip()]
        return {"dnat": sum(int(r[0]) for r in rows if r[2] == "RETURN" and "DNAT" in r),
                "rejected": sum(int(r[0]) for r in rows if r[2] == "REJECT"),
                "loopback": sum(int(r[0]) for r in rows if r[2] == "RETURN" and "127.0.0.0/8" in r)}


@contextmanager
def host_cut_off(uid: int) -> Iterator[CutOff]:
    """The rule, first in OUTPUT for the length of the block; removed afterwards whatever happened (and
    before, should a killed earlier run have left it)."""
    _remove_chain()
    cut = CutOff(uid, docker_subnets())
    try:
        iptables("-N", CHAIN)
        iptables("-A", CHAIN, "-m", "owner", "!", "--uid-owner", str(uid), "-j", "RETURN")
        iptables("-A", CHAIN, "-m", "conntrack", "--ctstate", "DNAT", "-j", "RETURN")
        for subnet in cut.subnets:
            iptables("-A", CHAIN, "-d", subnet, "-j", "REJECT")
        iptables("-A", CHAIN, "-d", "127.0.0.0/8", "-j", "RETURN")
        iptables("-I", "OUTPUT", "1", "-j", CHAIN)
        yield cut
    finally:
        _remove_chain()


@contextmanager
def user_venv(wheel: Path, extras: str, packages: Sequence[str]) -> Iterator[Path]:
    """A venv of /usr/bin/python3 made and filled by root (root's pip cache) with ``wheel[extras]`` and
    ``packages``, readable and executable by everyone, writable by root only; removed afterwards. Outside
    /tmp/pytest-of-root, which is 0700."""
    parent = Path(tempfile.mkdtemp(prefix="chaoskit-desktop-venv-", dir="/var/tmp"))  # noqa: S108
    try:
        parent.chmod(0o755)
        venv = parent / "venv"
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                              f"{wheel}[{extras}]", *packages], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        subprocess.run(["chmod", "-R", "a+rX,go-w", str(parent)], check=True)  # whatever root's umask was
        yield venv
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def user_workdir(pw: pwd.struct_passwd, venv: Path) -> Iterator[Path]:
    """A directory of the user's in its home (``state`` directory, outputs, scripts); removed afterwards. Should
    a test fail with a run of the user's still ledgered (its processes stopped by then), the user's own
    ``chaoskit cleanup`` removes what that run left first: a failing test leaves nothing running either."""
    d = Path(tempfile.mkdtemp(prefix="run-", dir=pw.pw_dir))
    try:
        os.chown(d, pw.pw_uid, pw.pw_gid)
        yield d
    finally:
        if list((d / "state" / "runs").glob("*.json")):
            subprocess.run(as_user(pw, [venv / "bin" / "chaoskit", "cleanup"]), cwd=d, env=user_env(pw, d / "state"),
                           capture_output=True, timeout=300)
        shutil.rmtree(d, ignore_errors=True)


def stop(proc: subprocess.Popen[str] | None, sig: int, grace: float = 120) -> None:
    """Stop a process of the test's own by PID: ``sig`` first (SIGINT or SIGTERM: chaoskit heals and tears down
    on either), SIGKILL if it has not exited within ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def image_env() -> dict[str, str]:
    """The CHAOSKIT_*_IMAGE variables ``chaoskit images --env`` prints (the locally built images)."""
    out = subprocess.run([sys.executable, "-m", "chaoskit.cli", "images", "--env"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if line.startswith("CHAOSKIT_"))


def user_env(pw: pwd.struct_passwd, state: Path, **extra: str) -> dict[str, str]:
    """A login's plain environment for the user, its own state directory and the images chaoskit uses."""
    return {"HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name, "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "CHAOSKIT_STATE_DIR": str(state),
            **image_env(), **extra}


def as_user(pw: pwd.struct_passwd, argv: Sequence[str | Path]) -> list[str]:
    """``argv`` run as the user, with its own groups (docker among them) and nothing of root's."""
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--", *map(str, argv)]


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The child's next stdout line within ``timeout`` seconds ("" when it closed or did not say it)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            return proc.stdout.readline()
    return ""


def tmp_files_of(uid: int) -> set[str]:
    """Everything under /tmp that belongs to ``uid`` (the machine-wide subnet claims directory and its lock
    aside)."""
    out = subprocess.run(["find", "/tmp", "-xdev", "-user", str(uid)], capture_output=True, text=True).stdout
    return {p for p in out.splitlines() if p not in (CLAIMS, f"{CLAIMS}/.lock")}


@contextmanager
def container_starts() -> Iterator[list[str]]:
    """The names of chaoskit's containers started during the block (``docker events``, streamed: the daemon
    keeps only its last 256 events for a later ``--since`` query, and other tests' runs fill them)."""
    proc = subprocess.Popen(["docker", "events", "--filter", "type=container", "--filter", "event=start",
                             "--filter", "label=io.chaoskit.run", "--format", "{{json .Actor}}"],
                            stdout=subprocess.PIPE, text=True)
    names: list[str] = []
    try:
        time.sleep(0.5)  # subscribed before anything starts
        yield names
        time.sleep(1.0)  # the last events are delivered
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        names += [json.loads(line).get("Attributes", {}).get("name", "") for line in out.splitlines() if line.strip()]


def helpers_of(names: list[str], runs: set[str]) -> int:
    """How many of ``runs``' net-fault helper containers (``ck-RUN-net-XXXX``) are among ``names``."""
    return sum(1 for n in names if "-net-" in n and n.split("-")[1] in runs)


def foreign_files(root: Path, uid: int) -> bool:
    """Something under ``root`` that belongs to another user than ``uid`` (what a container's server wrote)."""
    return any(path.lstat().st_uid != uid for path in root.rglob("*"))
