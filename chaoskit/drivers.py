"""Which Python drivers a part of chaoskit needs, and the one-line error when one is not installed.

The drivers are optional dependencies, one extra per system (``pip install 'chaoskit[redis]'``): a
system declares its own (``System.drivers``); what uses a system checks them with :func:`require_drivers`
before anything starts, so a missing driver is one line naming the extra (exit 2), never an
ImportError from deep inside a run. Nothing here imports a driver.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

from chaoskit.errors import UsageError


@dataclass(frozen=True)
class Driver:
    """A Python package a system's topology and clients import: ``module`` is its import name, ``dist``
    what pip installs (``cassandra`` / ``cassandra-driver``). Installed by the system's extra
    (``pip install 'chaoskit[<system>]'``), never by chaoskit itself."""

    module: str
    dist: str

    def missing(self) -> bool:
        """True when this interpreter cannot import ``module`` (not installed, or blocked); imports nothing."""
        try:
            return importlib.util.find_spec(self.module) is None
        except (ImportError, ValueError):
            return True


def require_drivers(what: str, drivers: Sequence[Driver], extras: Sequence[str]) -> None:
    """Return when every driver is importable; raise UsageError, one line naming the missing drivers and
    the extras that install them (``mongo needs its driver (pymongo): pip install 'chaoskit[mongo]'``)."""
    missing = list(dict.fromkeys(d.dist for d in drivers if d.missing()))
    if missing:
        its = "its driver" if len(missing) == 1 else "its drivers"
        raise UsageError(f"{what} needs {its} ({', '.join(missing)}): pip install 'chaoskit[{','.join(extras)}]'")
