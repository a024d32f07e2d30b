"""What this machine can run, for every test tree (tests/, examples/).

A test that needs what this machine lacks is skipped with the reason -- except under `make test`
(CHAOSKIT_REQUIRE_INTEGRATION=1), where a skip would hide a broken set-up, so it runs and fails instead:

- ``integration`` (tests/integration): the local backend's set-up -- Linux, root and the server binaries;
- examples/ (a team's own chaos tests on the pytest fixtures, ``--chaoskit-backend auto``): a backend that
  ``auto`` can use -- a Docker daemon that answers, or the local backend's set-up;
- ``docker`` / ``docker_extra``: the level of ``CHAOSKIT_DOCKER_TESTS`` (tests/docker_tests.py), always.

The unit tests (tests/unit) need none of these: ``pytest tests/unit`` runs anywhere the venv does.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests import docker_tests

ROOT = Path(__file__).resolve().parent
LOCAL_BINARIES = ("redis-server", "redis-sentinel", "patroni", "etcd", "haproxy", "iptables", "ip")


def local_missing() -> str | None:
    """Why the local backend's tests cannot run here (None: they can)."""
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for binary in LOCAL_BINARIES:
        if shutil.which(binary) is None:
            return f"needs {binary} on PATH"
    return None


def docker_missing() -> str | None:
    """Why no docker run can start here (None: a daemon answers)."""
    from chaoskit.backends.docker import docker_client
    from chaoskit.errors import ChaoskitError

    try:
        docker_client()
    except ChaoskitError as exc:
        return str(exc).splitlines()[0]
    return None


def examples_missing(local: str | None) -> str | None:
    """Why the examples cannot run here (None: ``auto`` has a backend): no local set-up and no Docker."""
    if local is None:
        return None
    docker = docker_missing()
    return None if docker is None else f"no backend here -- local: {local}; docker: {docker}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = os.environ.get("CHAOSKIT_REQUIRE_INTEGRATION") == "1"
    local = None if required else local_missing()
    examples = [item for item in items if Path(str(item.path)).is_relative_to(ROOT / "examples")]
    no_backend = examples_missing(local) if examples and not required else None
    for item in items:
        if reason := docker_tests.skip_reason(item):
            item.add_marker(pytest.mark.skip(reason=reason))
        elif local is not None and "integration" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=local))
        elif no_backend is not None and item in examples:
            item.add_marker(pytest.mark.skip(reason=no_backend))
