"""Backends: where nodes run. Every backend implements :class:`chaoskit.backends.base.Backend`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.backends.ledger import Ledger
from chaoskit.errors import UsageError

BACKEND_NAMES = ("auto", "local", "docker")


def check_backend_name(name: str) -> str:
    """``name`` if it is a backend name (``auto`` included); UsageError (exit 2) otherwise."""
    if name not in BACKEND_NAMES:
        raise UsageError(f"unknown backend {name!r} (known: {', '.join(BACKEND_NAMES)})")
    return name


def make_backend(name: str, run_id: str, workdir: str, *, detached: bool = False,
                 stand_ins: Mapping[str, str] | None = None) -> Backend:
    """Create a backend by (resolved) name; on docker, ``stand_ins`` maps an image to the local one run where it
    cannot be had (see :mod:`chaoskit.backends.docker_images`). Raises UsageError for unknown names."""
    if name == "docker":
        from chaoskit.backends.docker import DockerBackend

        return DockerBackend(run_id, workdir, detached=detached, stand_ins=stand_ins)
    if name == "local":
        from chaoskit.backends.local import LocalBackend

        return LocalBackend(run_id, workdir, detached=detached)
    raise UsageError(f"unknown backend {name!r} (known: {', '.join(BACKEND_NAMES)})")


def attach_backend(ledger: Ledger, workdir: str, state: dict[str, Any]) -> Backend:
    """The backend of a running lab, rebuilt in this process from its ledger and recorded state; starts
    and creates nothing. Raises MissingDependencyError when the platform is gone (e.g. no daemon)."""
    if ledger.backend == "docker":
        from chaoskit.backends.docker import DockerBackend

        return DockerBackend.attach(ledger, workdir, state)
    if ledger.backend == "local":
        from chaoskit.backends.local import LocalBackend

        return LocalBackend.attach(ledger, workdir, state)
    raise UsageError(f"unknown backend {ledger.backend!r} in the ledger of run {ledger.run_id}")


__all__ = ["Backend", "Node", "NodeSpec", "make_backend", "attach_backend", "check_backend_name", "BACKEND_NAMES"]
