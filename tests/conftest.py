"""Shared test set-up: integration tests need Linux, root and the server binaries.

Where they are missing the integration tests are skipped -- except under `make test`
(CHAOSKIT_REQUIRE_INTEGRATION=1), where a skip would hide a broken set-up, so they run and fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

import pytest

# A suite started in the background of a non-interactive shell (`make test &`) inherits SIGINT ignored,
# and so would every process it starts: the tests that press Ctrl-C on a run would then wait in vain.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _missing() -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for binary in ("redis-server", "redis-sentinel", "patroni", "etcd", "haproxy", "iptables", "ip"):
        if shutil.which(binary) is None:
            return f"needs {binary} on PATH"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None or os.environ.get("CHAOSKIT_REQUIRE_INTEGRATION") == "1":
        return  # under `make test` they run, and fail loudly if the set-up is broken
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


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
