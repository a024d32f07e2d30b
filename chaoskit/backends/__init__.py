"""Backends: where nodes run. Every backend implements :class:`chaoskit.backends.base.Backend`."""

from __future__ import annotations

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.errors import UsageError

BACKEND_NAMES = ("auto", "local", "docker")


def make_backend(name: str, run_id: str, workdir: str, *, detached: bool = False) -> Backend:
    """Create a backend by name; ``auto`` picks the one that works here. Raises UsageError for unknown names."""
    if name not in BACKEND_NAMES:
        raise UsageError(f"unknown backend {name!r} (known: {', '.join(BACKEND_NAMES)})")
    if name == "docker":
        from chaoskit.errors import MissingDependencyError

        raise MissingDependencyError("the docker backend is not available yet in this version; use --backend local")
    from chaoskit.backends.local import LocalBackend

    return LocalBackend(run_id, workdir, detached=detached)


__all__ = ["Backend", "Node", "NodeSpec", "make_backend", "BACKEND_NAMES"]
