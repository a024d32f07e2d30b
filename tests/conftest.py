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
