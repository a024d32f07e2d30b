"""Tests for chaoskit.backends.ledger with a temporary state directory (no namespaces are created)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskit import cli
from chaoskit.backends import ledger as ledger_mod
from chaoskit.backends.ledger import (
    Entry,
    Ledger,
    all_ledgers,
    process_running,
    process_start_time,
    remove_entries,
    same_process,
    state_dir,
)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # reaped: nothing has this pid (barring an immediate recycle)


def test_state_dir_is_under_env_override(tmp_state: Path) -> None:
    assert state_dir() == tmp_state / "runs"
    assert state_dir().is_dir()


def test_create_record_save_load_round_trip(tmp_state: Path) -> None:
    ledger = Ledger.create("run-1", "local", subnet="10.77.0.0/24")
    assert ledger.path == tmp_state / "runs" / "run-1.json"
    ledger.record("dir", "/tmp/some-scratch")
    ledger.record("process", "redis-1", pid=os.getpid())
    back = Ledger.load(ledger.path)
    assert back == ledger
    assert back.owner_pid == os.getpid()
    assert back.entries[1] == Entry("process", "redis-1", os.getpid(), process_start_time(os.getpid()))
    assert back.entries[0].pid is None and back.entries[0].start_time is None


def test_save_leaves_no_temporary_file(tmp_state: Path) -> None:
    Ledger.create("run-2", "local").record("dir", "/x")
    assert sorted(p.name for p in (tmp_state / "runs").iterdir()) == ["created.log", "run-2.json"]


def test_created_log_keeps_every_run_id_after_its_ledger_is_gone(tmp_state: Path) -> None:
    for run in ("run-a", "run-b"):
        Ledger.create(run, "local").forget()
    log = (tmp_state / "runs" / "created.log").read_text().splitlines()
    assert [line.split()[:2] for line in log] == [["run-a", "local"], ["run-b", "local"]]
    assert not list((tmp_state / "runs").glob("*.json"))


def test_owner_alive_then_detached() -> None:
    ledger = Ledger.create("run-3", "local")
    assert ledger.owner_alive()
    ledger.detach("redis-primary-kill")
    back = Ledger.load(ledger.path)
    assert not back.owner_alive()
    assert back.topology == "redis-primary-kill"


def test_all_ledgers_skips_corrupt_files_and_forget_removes(tmp_state: Path) -> None:
    good = Ledger.create("run-a", "local")
    (tmp_state / "runs" / "run-b.json").write_text("{not json")
    (tmp_state / "runs" / "run-c.json").write_text('{"unexpected": 1}')
    assert [ledger.run_id for ledger in all_ledgers()] == ["run-a"]
    good.forget()
    assert all_ledgers() == []


def test_process_start_time_of_self_and_missing_pid() -> None:
    assert isinstance(process_start_time(os.getpid()), int)
    assert process_start_time(_dead_pid()) is None


def test_same_process_false_for_missing_or_recycled_pid() -> None:
    me = os.getpid()
    start = process_start_time(me)
    assert start is not None
    assert same_process(me, start)
    assert not same_process(me, start + 1)  # same pid, another start time: a recycled pid
    assert not same_process(me, None)
    assert not same_process(_dead_pid(), start)


def test_remove_entries_removes_listed_dir(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    (scratch / "sub").mkdir(parents=True)
    (scratch / "sub" / "f.txt").write_text("x")
    ledger = Ledger.create("run-d", "local")
    ledger.record("dir", str(scratch))
    ledger.record("dir", str(tmp_path / "never-created"))
    assert remove_entries(ledger) == [f"dir {scratch}"]
    assert not scratch.exists()


def test_remove_entries_kills_process_with_matching_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    ledger = Ledger.create("run-e", "local")
    ledger.record("process", "sleeper", pid=sleeper.pid)
    assert remove_entries(ledger) == ["process sleeper"]
    assert sleeper.wait(timeout=5) == -signal.SIGKILL


def test_remove_entries_spares_live_process_with_wrong_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    real = process_start_time(sleeper.pid)
    assert real is not None
    ledger = Ledger.create("run-f", "local")
    ledger.entries.append(Entry("process", "recycled", sleeper.pid, real - 1))
    assert remove_entries(ledger) == []
    assert sleeper.poll() is None  # still running; the fixture kills it afterwards


def test_remove_entries_goes_newest_first_and_survives_a_failing_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    original = ledger_mod._remove

    def flaky_remove(entry: Entry, run_id: str) -> bool:
        if entry.name == "explodes":
            raise PermissionError("nope")
        return original(entry, run_id)

    monkeypatch.setattr(ledger_mod, "_remove", flaky_remove)
    ledger = Ledger.create("run-g", "local")
    ledger.record("dir", str(a))
    ledger.record("dir", "explodes")
    ledger.record("dir", str(b))
    assert remove_entries(ledger) == [f"dir {b}", f"dir {a}"]
    assert not a.exists() and not b.exists()


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that has exited and is not reaped yet: /proc still shows its pid and start time (state Z)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        yield pid
    finally:
        os.waitpid(pid, 0)


def test_a_zombie_owner_is_dead(zombie: int) -> None:
    start = process_start_time(zombie)
    assert start is not None, "a zombie keeps its /proc entry"
    assert same_process(zombie, start)  # still the same pid and start time...
    assert not process_running(zombie, start)  # ...but it runs nothing
    ledger = Ledger("run-z", "local", zombie, start)
    assert not ledger.owner_alive()
    me = os.getpid()
    assert process_running(me, process_start_time(me))


def test_cleanup_removes_a_zombie_runners_run_and_names_live_ones(
        zombie: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dead = Ledger("run-dead", "local", zombie, process_start_time(zombie))
    dead.record("dir", str(scratch))
    live = Ledger.create("run-live", "local")
    assert cli.main(["cleanup"]) == 0
    out = capsys.readouterr().out
    assert "run run-dead: removed 1 item(s)" in out and not scratch.exists()
    assert f"skipping run run-live: its runner (pid {os.getpid()}) is still running" in out
    left = f"left 1 run(s) whose runner is alive: run-live (pid {os.getpid()})"
    assert out.splitlines()[-1] == f"1 run(s) cleaned up; {left}"
    assert [ledger.run_id for ledger in all_ledgers()] == ["run-live"]
    assert cli.main(["cleanup"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"nothing to clean up; {left}"
    live.forget()


def _claim(i: int) -> str:
    from chaoskit.backends.ledger import claim_subnet

    _, subnet = claim_subnet(f"claim{i}", "local", "CHAOSKIT_TEST_SUBNET_BASE", "10.250", lambda: lambda net: False)
    return str(subnet)


def _claim_in_own_state_dir(args: tuple[int, str]) -> str:
    i, base = args
    os.environ["CHAOSKIT_STATE_DIR"] = f"{base}/state-{i}"  # as each test has its own
    return _claim(i)


def test_runs_started_at_once_never_claim_the_same_subnet() -> None:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(8) as pool:
        subnets = pool.map(_claim, range(16))
    assert len(set(subnets)) == 16, subnets
    assert {ledger.subnet for ledger in all_ledgers()} == set(subnets)


def test_runs_with_their_own_state_directories_never_claim_the_same_subnet(tmp_path: Path) -> None:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(8) as pool:
        subnets = pool.map(_claim_in_own_state_dir, [(i, str(tmp_path)) for i in range(16)])
    assert len(set(subnets)) == 16, subnets  # no ledger is shared: the machine-wide claims keep them apart


def test_a_finished_run_leaves_no_claim_behind() -> None:
    """The claim covers choosing a subnet until its network exists; when the run's ledger is forgotten (the
    run is over, its network gone), its claim file goes too: nothing of the run is left in /tmp."""
    import chaoskit.backends.ledger as ledger_module

    ledger, _ = ledger_module.claim_subnet("claim9", "local", "CHAOSKIT_TEST_SUBNET_BASE", "10.250",
                                           lambda: lambda net: False)
    claims = Path(os.environ.get("CHAOSKIT_SUBNET_CLAIMS") or ledger_module.CLAIMS_DEFAULT)
    assert (claims / "claim9.claim").exists()
    ledger.forget()
    assert not (claims / "claim9.claim").exists() and not ledger.path.exists()


def test_a_claim_of_a_process_that_is_gone_does_not_hold_its_subnet(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoskit.backends.ledger import _claims_dir

    first = _claim(1)
    claim = _claims_dir() / "claim1.claim"
    pid, start, at, subnet = claim.read_text().split()
    claim.write_text(f"{pid} {int(start) + 1} {at} {subnet}")  # another process with that pid: gone
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(tmp_path / "other"))  # and no ledger of it here
    assert _claim(2) == first


@contextlib.contextmanager
def _claimed_as(uid: int, state: Path, i: int) -> Iterator[str]:
    """A forked child running as ``uid`` (its own state directory) claims a subnet and lives on (its claim
    holds) until the block ends; yields the subnet, or the child's one-line error."""
    out_r, out_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: another user on the same machine
        try:
            os.close(out_r)
            os.close(hold_w)
            os.setgid(uid)
            os.setuid(uid)
            os.environ["CHAOSKIT_STATE_DIR"] = str(state)
            try:
                out = _claim(i)
            except Exception as exc:  # noqa: BLE001 -- reported to the parent
                out = f"error: {exc}"
            os.write(out_w, out.encode())
            os.close(out_w)
            os.read(hold_r, 1)  # until the parent is done
        finally:
            os._exit(0)
    os.close(out_w)
    os.close(hold_r)
    try:
        with os.fdopen(out_r) as fh:
            yield fh.read()
    finally:
        os.close(hold_w)
        os.waitpid(pid, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to run a part as another user)")
def test_root_and_another_user_share_the_machine_wide_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A root run first (it makes the claims directory and lock), then another user's run, then root again:
    all three claim, and no two claim the same subnet, in either order of first use."""
    import shutil
    import tempfile

    nobody = 65534
    top = Path(tempfile.mkdtemp(prefix="chaoskit-claims-test."))  # pytest's tmp_path is closed to other users
    top.chmod(0o755)
    try:
        for order in ("root-first", "user-first"):
            shared = top / order
            shared.mkdir()
            shared.chmod(0o1777)  # as /tmp
            (shared / "state-user").mkdir()
            os.chown(shared / "state-user", nobody, nobody)
            monkeypatch.setenv("CHAOSKIT_SUBNET_CLAIMS", str(shared / "claims"))
            subnets = []
            if order == "root-first":
                subnets.append(_claim(1))
            with _claimed_as(nobody, shared / "state-user", 2) as theirs:
                subnets += [theirs, _claim(3)]
            assert all(not s.startswith("error") for s in subnets), subnets
            assert len(set(subnets)) == len(subnets), subnets
            mode = (shared / "claims").stat().st_mode & 0o7777
            assert mode == 0o1777, oct(mode)
            assert (shared / "claims" / ".lock").stat().st_mode & 0o777 == 0o666
    finally:
        shutil.rmtree(top)


def test_an_unusable_claims_directory_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoskit.errors import InfrastructureError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CHAOSKIT_SUBNET_CLAIMS", str(blocker / "claims"))
    with pytest.raises(InfrastructureError, match="subnet claims") as err:
        _claim(1)
    assert "\n" not in str(err.value)
