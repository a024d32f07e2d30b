"""Systems under test, one module each, all of the same shape (see ``systems/base.py``).

A system is a module ``chaoskit/systems/<name>.py`` whose ``SYSTEM`` object's ``name`` is ``<name>``; it is
found here without being listed (helper modules of a system, e.g. ``<name>_dist.py``, have no ``SYSTEM``).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from chaoskit.systems.base import System


@cache
def _systems() -> dict[str, str]:
    """System name -> module, for every module of this package that defines ``SYSTEM``."""
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        system = getattr(module, "SYSTEM", None)
        if system is not None and getattr(system, "name", None) == info.name:
            found[info.name] = module.__name__
    return found


def system_names() -> list[str]:
    return sorted(_systems())


def get_system(name: str) -> System:
    """Return the system plugin; raises KeyError for unknown names."""
    module = importlib.import_module(_systems()[name])
    return module.SYSTEM  # type: ignore[no-any-return]
