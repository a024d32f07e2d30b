"""``CHAOSKIT_DOCKER_TESTS``: the one switch for the tests that start containers (README, "The test suite").

- unset (or ``0``): no docker test runs; each is skipped with this reason.
- ``1``: the docker parity set -- every test (or docker parameter) marked ``docker``: each system's own docker
  paths (kill, partition, pause, its containers, addressing), the Compose labs, the wheel's ``chaoskit images``.
  ``make test`` sets it.
- ``all``: everything ``1`` runs, and the tests marked ``docker_extra``: docker runs of experiments whose docker
  paths other docker tests already take.

Marks: ``@pytest.mark.docker`` on a test that starts containers, or in a parameter's marks
(``pytest.param("docker", marks=pytest.mark.docker)``); ``@pytest.mark.docker_extra`` on a test whose docker run
(its docker parameter, or the test itself when it is marked ``docker``) belongs to ``all`` only.
"""

from __future__ import annotations

import os

import pytest

VARIABLE = "CHAOSKIT_DOCKER_TESTS"
LEVELS = {"": 0, "0": 0, "1": 1, "all": 2}


def level() -> int:
    """0 (no docker tests), 1 (the parity set) or 2 (all); pytest.UsageError for any other value."""
    value = os.environ.get(VARIABLE, "")
    if value not in LEVELS:
        raise pytest.UsageError(f"{VARIABLE}={value!r}: use 1 (the docker parity set) or all (and the extras)")
    return LEVELS[value]


def enabled() -> bool:
    """True when the docker parity set runs (``1`` or ``all``)."""
    return level() >= 1


def skip_reason(item: pytest.Item) -> str | None:
    """Why ``item`` does not run at this level (None: it runs): a docker test below 1, an extra below ``all``."""
    callspec = getattr(item, "callspec", None)
    docker = item.get_closest_marker("docker") is not None
    docker_param = callspec is not None and "docker" in (callspec.params.get("backend"), callspec.params.get("docker"))
    if not (docker or docker_param):
        return None
    if item.get_closest_marker("docker_extra") is not None and level() < 2:
        return (f"docker_extra: its docker paths are covered by the system's other docker tests; "
                f"{VARIABLE}=all runs it")
    if level() < 1:
        return f"starts containers: {VARIABLE}=1 runs the docker parity set, =all every docker test"
    return None
