"""Systems under test, one module each, all of the same shape (see ``systems/base.py``)."""

from __future__ import annotations

import importlib

from chaoskit.systems.base import System

_MODULES = {"redis": "chaoskit.systems.redis", "postgres": "chaoskit.systems.postgres",
            "mongo": "chaoskit.systems.mongo", "cassandra": "chaoskit.systems.cassandra"}


def system_names() -> list[str]:
    return sorted(_MODULES)


def get_system(name: str) -> System:
    """Return the system plugin; raises KeyError for unknown names."""
    module = importlib.import_module(_MODULES[name])
    return module.SYSTEM  # type: ignore[no-any-return]
