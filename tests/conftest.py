"""Shared test set-up. Which tests this machine can run (and the skips with their reasons) is decided in the
repository's top conftest.py, for tests/ and examples/ alike; CHAOSKIT_DOCKER_TESTS in tests/docker_tests.py."""

from __future__ import annotations

import signal

import pytest

# A suite started in the background of a non-interactive shell (`make test &`) inherits SIGINT ignored,
# and so would every process it starts: the tests that press Ctrl-C on a run would then wait in vain.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---- where the suite's time goes: seconds per test file, printed at the end (planning the CI budget) ----
_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Runs where the reports arrive: in the controller too under pytest-xdist."""
    path = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FILE_SECONDS:
        return
    total = sum(_FILE_SECONDS.values())
    terminalreporter.write_sep("=", f"time per test file (set-up + call + teardown; {total / 60:.1f} min of tests)")
    for path, seconds in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1])[:15]:
        terminalreporter.write_line(f"{seconds:8.1f}s  {path}")
