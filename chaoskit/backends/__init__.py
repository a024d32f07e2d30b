"""Backends: where nodes run. Every backend implements :class:`chaoskit.backends.base.Backend`."""

from __future__ import annotations

from typing import Any

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.backends.ledger import Ledger
from chaoskit.errors import UsageError

BACKEND_NAMES = ("auto", "local", "docker")


def resolve_backend_name(name: str, images: list[str]) -> str:
    """``auto`` -> docker when a daemon answers and the images are there (or pullable), else local."""
    if name not in BACKEND_NAMES:
        raise UsageError(f"unknown backend {name!r} (known: {', '.join(BACKEND_NAMES)})")
    if name != "auto":
        return name
    from chaoskit.backends.docker import images_available

    if not images:  # a system without a container image yet runs locally
        return "local"
    return "docker" if images_available(images) else "local"


def make_backend(name: str, run_id: str, workdir: str, *, detached: bool = False) -> Backend:
    """Create a backend by (resolved) name. Raises UsageError for unknown names."""
    if name == "docker":
        from chaoskit.backends.docker import DockerBackend

        return DockerBackend(run_id, workdir, detached=detached)
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


__all__ = ["Backend", "Node", "NodeSpec", "make_backend", "attach_backend", "resolve_backend_name", "BACKEND_NAMES"]
