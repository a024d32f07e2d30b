"""A crash-safe record of what chaoskit created, written *before* creating it.

One JSON file per run in the state directory. ``chaoskit cleanup`` reads every ledger whose owner
is gone and removes exactly what it lists: namespaces (and every process inside them), processes
by PID *and* start time (so a recycled PID is never touched), and scratch directories.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["netns", "process", "dir", "container", "network"]
CREATED_LOG = "created.log"  # one line per run ever ledgered in this state directory: "RUN_ID BACKEND PID"


def state_dir() -> Path:
    base = os.environ.get("CHAOSKIT_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "chaoskit")
    path = Path(base) / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot), or None if it does not exist."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` (R, S, T for stopped, Z, ...), or None if there is no such pid."""
    fields = _stat(pid)
    return fields[0] if fields else None


def same_process(pid: int, start_time: int | None) -> bool:
    return start_time is not None and process_start_time(pid) == start_time


def process_running(pid: int, start_time: int | None) -> bool:
    """``pid`` is the process that started at ``start_time`` and has not exited. A zombie (state Z:
    exited, not yet reaped by its parent) or a dying task (X) keeps its pid and start time, but runs
    nothing and owns nothing any more."""
    fields = _stat(pid)
    return (start_time is not None and fields is not None and int(fields[19]) == start_time
            and fields[0] not in ("Z", "X"))


@dataclass
class Entry:
    kind: Kind
    name: str
    pid: int | None = None
    start_time: int | None = None


@dataclass
class Ledger:
    run_id: str
    backend: str
    owner_pid: int | None
    owner_start: int | None
    entries: list[Entry] = field(default_factory=list)
    subnet: str | None = None
    topology: str | None = None
    lab: dict[str, Any] | None = None  # a running lab's record (chaoskit.lab): how a later process re-attaches

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.run_id}.json"

    @classmethod
    def create(cls, run_id: str, backend: str, subnet: str | None = None) -> Ledger:
        pid = os.getpid()
        ledger = cls(run_id, backend, pid, process_start_time(pid), subnet=subnet)
        ledger.save()
        with (state_dir() / CREATED_LOG).open("a") as fh:  # kept after the ledger goes: which runs were made here
            fh.write(f"{run_id} {backend} {pid}\n")
        return ledger

    def record(self, kind: Kind, name: str, pid: int | None = None) -> Entry:
        entry = Entry(kind, name, pid, process_start_time(pid) if pid else None)
        self.entries.append(entry)
        self.save()
        return entry

    def detach(self, topology: str) -> None:
        """Hand the resources over to nobody (``chaoskit up``): cleanup may then remove them."""
        self.owner_pid, self.owner_start, self.topology = None, None, topology
        self.save()

    def owner_alive(self) -> bool:
        """The run's runner is still running (a zombie runner is dead: it will never tear down)."""
        return self.owner_pid is not None and process_running(self.owner_pid, self.owner_start)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        data = asdict(self)
        with tmp.open("w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".lock").unlink(missing_ok=True)  # a lab's command lock (chaoskit.lab.locked)
        with contextlib.suppress(OSError):  # its subnet claim: the run is over, nothing of it is left in /tmp
            (_claims_path() / f"{self.run_id}.claim").unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> Ledger:
        data = json.loads(path.read_text())
        entries = [Entry(**e) for e in data.pop("entries", [])]
        return cls(**data, entries=entries)


def free_subnet(env_var: str, default_base: str,
                also_taken: Callable[[ipaddress.IPv4Network], bool]) -> ipaddress.IPv4Network:
    """The first /24 under ``$env_var`` (default ``default_base``, e.g. "10.213") that no ledger holds
    and ``also_taken`` does not reject. Raises InfrastructureError when all 250 are in use."""
    from chaoskit.errors import InfrastructureError

    base = os.environ.get(env_var, default_base)
    taken = {ledger.subnet for ledger in all_ledgers()}
    for third in range(1, 251):
        net = ipaddress.IPv4Network(f"{base}.{third}.0/24")
        if str(net) not in taken and not also_taken(net):
            return net
    raise InfrastructureError(f"no free /24 subnet under {base}.0.0/16 (set {env_var})")


CLAIM_TTL_S = 120.0  # by then the claiming run has created its network (Docker) or route (local)


CLAIMS_DEFAULT = "/tmp/chaoskit-claims"  # noqa: S108 -- machine-wide on purpose (every user's runs)


def _claims_path() -> Path:
    return Path(os.environ.get("CHAOSKIT_SUBNET_CLAIMS") or CLAIMS_DEFAULT)


def _claims_dir() -> Path:
    """Machine-wide, not per state directory or per user: runs with different state directories (each test
    has its own) and runs of different users (root and a laptop user, side by side) must not pick the same
    subnet either. Made sticky and world-writable like /tmp (mode 1777), whoever comes first; each user
    writes and removes only their own claims. Raises InfrastructureError (one line) when it cannot be used."""
    path = _claims_path()
    try:
        path.mkdir(mode=0o1777, exist_ok=True)
        st = path.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o7777 != 0o1777:
            path.chmod(0o1777)  # mkdir's mode passes through the umask
    except OSError as exc:
        raise _claims_error(path, exc) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise _claims_error(path, PermissionError("not writable"))
    return path


def _claims_error(path: Path, exc: OSError) -> Exception:
    from chaoskit.errors import InfrastructureError

    why = exc.strerror or str(exc)
    return InfrastructureError(f"cannot use the machine-wide subnet claims in {path} ({why}): it must be a "
                               f"directory every user may write (as root: chmod 1777 {path})")


@contextlib.contextmanager
def _claims_lock(claims: Path) -> Iterator[None]:
    """The machine-wide lock (``.lock``, mode 0666 so every user can take it), held for the block."""
    lock = claims / ".lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise _claims_error(claims, exc) from None
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o666)  # the umask took the others' write bit away
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _recent_claims(claims: Path, now: float) -> set[str]:
    """Subnets claimed in the last CLAIM_TTL_S by a process that is still running (stale files go: ours
    and, for root, everyone's; another user's stale claim that we may not remove is simply not counted)."""
    found = set()
    for f in claims.glob("*.claim"):
        try:
            pid, start, at, subnet = f.read_text().split()
            alive = process_running(int(pid), int(start) if start != "-" else None)
            fresh = now - float(at) < CLAIM_TTL_S
        except (OSError, ValueError):
            continue
        if alive and fresh:
            found.add(subnet)
        else:
            with contextlib.suppress(OSError):
                f.unlink(missing_ok=True)
    return found


def claim_subnet(run_id: str, backend: str, env_var: str, default_base: str,
                 taken: Callable[[], Callable[[ipaddress.IPv4Network], bool]]) -> tuple[Ledger, ipaddress.IPv4Network]:
    """A new run's ledger holding a free /24, chosen under one machine-wide lock: runs started at the same
    moment (``chaoskit run -j N``, parallel test workers, another user's runs) never pick the same subnet.
    ``taken`` is asked inside the lock (what Docker networks or routes exist now); a claim also counts for
    CLAIM_TTL_S, the time between choosing a subnet and creating its network."""
    claims = _claims_dir()
    with _claims_lock(claims):
        now = time.time()
        recent, in_use = _recent_claims(claims, now), taken()
        subnet = free_subnet(env_var, default_base, lambda net: str(net) in recent or in_use(net))
        pid = os.getpid()
        start = process_start_time(pid)
        claim = claims / f"{run_id}.claim"
        try:
            claim.write_text(f"{pid} {start if start is not None else '-'} {now} {subnet}")
            claim.chmod(0o644)
        except OSError as exc:
            raise _claims_error(claims, exc) from None
        return Ledger.create(run_id, backend, str(subnet)), subnet


def all_ledgers() -> list[Ledger]:
    out = []
    for path in sorted(state_dir().glob("*.json")):
        try:
            out.append(Ledger.load(path))
        except (OSError, ValueError, TypeError):
            continue
    return out


def netns_pids(name: str) -> list[int]:
    res = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def remove_entries(ledger: Ledger) -> list[str]:
    """Remove everything a ledger lists (newest first); returns what was removed. Never raises."""
    removed: list[str] = []
    for entry in reversed(ledger.entries):
        try:
            if _remove(entry, ledger.run_id):
                removed.append(f"{entry.kind} {entry.name}")
        except Exception:  # noqa: BLE001 -- cleanup goes on whatever one entry does
            continue
    return removed


def _remove(entry: Entry, run_id: str) -> bool:
    if entry.kind == "process" and entry.pid is not None:
        if same_process(entry.pid, entry.start_time):
            os.kill(entry.pid, signal.SIGKILL)
            return True
        return False
    if entry.kind == "netns":
        if not _netns_exists(entry.name):
            return False
        for pid in netns_pids(entry.name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_empty(entry.name)
        subprocess.run(["ip", "netns", "delete", entry.name], capture_output=True)
        return True
    if entry.kind in ("container", "network"):
        from chaoskit.backends.docker import remove_docker_entry

        return remove_docker_entry(entry.kind, entry.name, run_id)
    if entry.kind == "dir":
        if os.path.isdir(entry.name):
            shutil.rmtree(entry.name, ignore_errors=True)
            return True
        return False
    return False


def _wait_empty(netns: str, timeout: float = 3.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while netns_pids(netns) and time.monotonic() < deadline:
        time.sleep(0.02)
