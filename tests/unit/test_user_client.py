"""A user's own client: loading its factory, checking the protocol, classifying each op."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from chaoskit.clients.user import (
    UserClientAdapter,
    UserClientError,
    final_read,
    load_factory,
    make_user_client,
)
from chaoskit.experiment import ClientSpec
from chaoskit.history import OpType


class Refused(Exception):
    pass


class Store:
    """A user client over a dict; ``fail_with`` makes the next op raise."""

    def __init__(self, connection: Any, definite: bool | None = None) -> None:
        self.connection, self.data, self.closed = connection, set(), False
        self.fail_with: Exception | None = None
        if definite is not None:
            self.definite_failure = lambda exc: definite if isinstance(exc, Refused) else False

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def write(self, value: int) -> None:
        self._maybe_fail()
        self.data.add(value)

    def read(self, value: int) -> bool:
        self._maybe_fail()
        return value in self.data

    def read_all(self) -> list[int]:
        return sorted(self.data)

    def close(self) -> None:
        self.closed = True


def test_ok_ops_and_reads_report_found() -> None:
    store = Store("conn")
    adapter = UserClientAdapter(lambda: store)
    adapter.open()
    assert adapter.invoke("write", 7).type is OpType.OK
    assert adapter.invoke("read", 7).value == {"found": True}
    assert adapter.invoke("read", 8).value == {"found": False}
    adapter.close()
    assert store.closed


@pytest.mark.parametrize(("definite", "exc", "expected"), [
    (None, Refused("no"), OpType.INFO),          # no classifier: every error is maybe-applied
    (True, Refused("no"), OpType.FAIL),          # the client says it certainly did not happen
    (True, TimeoutError("slow"), OpType.INFO),   # an error it does not classify stays info
    (False, Refused("no"), OpType.INFO),
])
def test_an_error_is_fail_only_when_the_client_says_it_is_definite(definite: bool | None, exc: Exception,
                                                                   expected: OpType) -> None:
    store = Store("conn", definite)
    store.fail_with = exc
    out = UserClientAdapter(lambda: store).invoke("write", 1)
    assert out.type is expected and out.error is not None and type(exc).__name__ in out.error


def test_a_classifier_that_raises_classifies_nothing() -> None:
    store = Store("conn")
    store.definite_failure = lambda exc: 1 / 0  # type: ignore[attr-defined]
    store.fail_with = Refused("no")
    assert UserClientAdapter(lambda: store).invoke("write", 1).type is OpType.INFO


def test_factory_is_called_with_the_connection_and_checked() -> None:
    client = make_user_client(lambda conn: Store(conn), "the-connection", "t:f")
    assert client.connection == "the-connection"  # type: ignore[attr-defined]
    with pytest.raises(UserClientError, match="returned a object without write, read, read_all, close"):
        make_user_client(lambda conn: object(), "c", "t:f")
    with pytest.raises(UserClientError, match="t:f raised ZeroDivisionError"):
        make_user_client(lambda conn: 1 / 0, "c", "t:f")


def test_final_read_lists_a_fresh_clients_values_and_closes_it() -> None:
    store = Store("c")
    store.data = {3, 1}
    assert final_read(lambda: store) == [1, 3] and store.closed


def test_load_factory_from_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop_clients.py").write_text("def make(conn):\n    return conn\n\nnot_callable = 3\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert load_factory("shop_clients:make", [str(tmp_path)])("x") == "x"
    with pytest.raises(UserClientError, match="'shop_clients:nope' does not import: AttributeError"):
        load_factory("shop_clients:nope", [str(tmp_path)])
    with pytest.raises(UserClientError, match="'no_such_module_here:make' does not import: ModuleNotFoundError"):
        load_factory("no_such_module_here:make")
    with pytest.raises(UserClientError, match="is not callable"):
        load_factory("shop_clients:not_callable", [str(tmp_path)])


def test_client_spec_takes_a_pattern_or_a_factory() -> None:
    assert ClientSpec(factory="pkg.mod:make").label == "user:pkg.mod:make"
    assert ClientSpec(pattern="sentinel-backoff").label == "sentinel-backoff"
    for bad in ({}, {"pattern": "p", "factory": "a:b"}):
        with pytest.raises(ValueError, match="either a pattern"):
            ClientSpec(**bad)
    with pytest.raises(ValueError, match="should match pattern"):
        ClientSpec(factory="not a reference")
