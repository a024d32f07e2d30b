"""Systems under test, one package per database, all of the same shape (see ``systems/base.py``).

A system is a package ``chaoskit/systems/<name>/`` whose module ``system`` defines ``SYSTEM`` (its
``name`` is ``<name>``): its settings, connection type and native faults import no driver; its
``topology`` (and the clients it makes) do, and are imported only when a topology is built. Systems are
found here by listing the packages, without importing them (no list to edit).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from chaoskit.systems.base import System


@cache
def _packages() -> tuple[str, ...]:
    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg))


def system_names() -> list[str]:
    """Every system's name (a package of this one), sorted; imports none of them."""
    return list(_packages())


def get_system(name: str) -> System:
    """Return the system (its driver-free part); raises KeyError for unknown names, TypeError when a package
    names its SYSTEM otherwise."""
    if name not in _packages():
        raise KeyError(name)
    system = importlib.import_module(f"{__name__}.{name}.system").SYSTEM
    if getattr(system, "name", None) != name:
        raise TypeError(f"{__name__}.{name}.system.SYSTEM is named {getattr(system, 'name', None)!r}, not {name!r}")
    return system  # type: ignore[no-any-return]
