"""Your own client under a fault: the protocol it follows, and how chaoskit drives it like its own.

A user client is any object with these methods (the names are the contract)::

    class CartClient:
        def __init__(self, connection): ...      # the factory gets the cluster's typed connection
        def write(self, value: int) -> None: ... # store a unique int; return once acknowledged, raise otherwise
        def read(self, value: int) -> bool: ...  # is that value visible?
        def read_all(self) -> Iterable[int]: ... # every value visible now (the final read, after heal + settle)
        def close(self) -> None: ...
        def definite_failure(self, exc: Exception) -> bool: ...  # optional: True = certainly not applied

An op that returns is **ok**. An op that raises is **fail** only if ``definite_failure(exc)`` says so
(the write certainly did not happen: refused before sending, a constraint violation); every other
exception is **info** (maybe applied): never counted as acknowledged, never as lost. A factory is named
``"package.module:make_client"`` in an experiment's ``client: {factory: ...}`` or passed as a callable
(``chaoskit_run(..., client=make_client)``); it is called with the connection (``connection.sentinels``,
``connection.service_name`` for Redis; ``connection.conninfo``, ``writer_dsn``, ``reader_dsn`` for
Postgres; ``connection.uri`` for MongoDB; ``connection.hosts``, ``keyspace`` and ``cluster()`` for
Cassandra; ``connection.hosts``, ``index`` and ``client()`` for OpenSearch), once per worker and once more
for the final read.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from chaoskit.clients.base import Outcome
from chaoskit.errors import UsageError
from chaoskit.history import OpType

REQUIRED = ("write", "read", "read_all", "close")


@runtime_checkable
class UserClient(Protocol):
    """The protocol of a user's client (see the module docstring); ``definite_failure`` is optional."""

    def write(self, value: int) -> None:
        """Store ``value``; return once acknowledged, raise otherwise."""
        ...

    def read(self, value: int) -> bool:
        """Whether ``value`` is visible now."""
        ...

    def read_all(self) -> Iterable[Any]:
        """Every value visible now (the final read)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


Factory = Callable[[Any], UserClient]


class UserClientError(UsageError):
    """A user's client factory cannot be imported, returns no client, or raised (exit 2)."""


def load_factory(ref: str, paths: Sequence[str] = ()) -> Factory:
    """The callable named ``"package.module:attr"``, importable from the working directory or ``paths``."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise UserClientError(f"client factory {ref!r}: write it as 'package.module:make_client'")
    for path in [*paths, "."]:
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UserClientError(f"client factory {ref!r} does not import: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise UserClientError(f"client factory {ref!r} is not callable")
    return target  # type: ignore[no-any-return]


def factory_name(factory: Factory) -> str:
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"


def make_user_client(factory: Factory, connection: Any, name: str) -> UserClient:
    """Call the factory and check what it returned has the protocol's methods; UserClientError otherwise."""
    try:
        client = factory(connection)
    except Exception as exc:  # noqa: BLE001 -- the user's code: its error becomes one line
        raise UserClientError(f"client factory {name} raised {type(exc).__name__}: {exc}") from None
    missing = [m for m in REQUIRED if not callable(getattr(client, m, None))]
    if missing:
        raise UserClientError(f"client factory {name} returned a {type(client).__name__} without "
                              f"{', '.join(missing)} (a client needs {', '.join(REQUIRED)})")
    return client  # type: ignore[no-any-return]


class UserClientAdapter:
    """chaoskit's Client protocol over a user's client: every op is classified ok / fail / info."""

    def __init__(self, make: Callable[[], UserClient]) -> None:
        self._make = make
        self._client: UserClient | None = None

    def open(self) -> None:
        self._client = self._make()

    def invoke(self, f: str, value: Any) -> Outcome:
        if self._client is None:
            self.open()
        assert self._client is not None
        try:
            if f == "write":
                self._client.write(value)
                return Outcome(OpType.OK)
            return Outcome(OpType.OK, {"found": bool(self._client.read(value))})
        except Exception as exc:  # noqa: BLE001 -- the user's code: classified, never raised
            return Outcome(self._classify(exc), error=f"{type(exc).__name__}: {exc}"[:200])

    def _classify(self, exc: Exception) -> OpType:
        definite = getattr(self._client, "definite_failure", None)
        try:
            return OpType.FAIL if definite is not None and definite(exc) is True else OpType.INFO
        except Exception:  # noqa: BLE001 -- a classifier that raises classifies nothing
            return OpType.INFO

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # close never raises
                self._client.close()
            self._client = None


def final_read(make: Callable[[], UserClient]) -> list[Any]:
    """A fresh client's ``read_all()``, as a list (raises what the user's code raises)."""
    client = make()
    try:
        return list(client.read_all())
    finally:
        with contextlib.suppress(Exception):
            client.close()
