"""How the docker backend decides where containers are reached, from testcontainers' view of the daemon."""

from __future__ import annotations

from typing import Any

import pytest

from chaoskit.backends import docker as backend
from chaoskit.errors import MissingDependencyError


class _Network:
    def __init__(self, config: dict[str, str]) -> None:
        self.attrs = {"IPAM": {"Config": [config]}}


class _Client:
    def __init__(self, bridge: dict[str, str]) -> None:
        self.networks = self
        self._bridge = bridge

    def get(self, name: str) -> _Network:
        assert name == "bridge"
        return _Network(self._bridge)


class _Testcontainers:
    """What chaoskit asks of testcontainers' DockerClient: the SDK client and the host of published ports."""

    def __init__(self, host: str, bridge: dict[str, str]) -> None:
        self._host, self.client = host, _Client(bridge)

    def host(self) -> str:
        return self._host


LOCAL_BRIDGE = {"Subnet": "127.0.0.0/8"}  # its first host, 127.0.0.1, is an address of this machine
FOREIGN_BRIDGE = {"Subnet": "192.0.2.0/24", "Gateway": "192.0.2.77"}  # TEST-NET: never an address here


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("CHAOSKIT_DOCKER_ADDRESSING", raising=False)
    monkeypatch.setattr(backend.platform, "system", lambda: "Linux")

    def use(host: str, bridge: dict[str, str], inside_container: bool = False) -> None:
        monkeypatch.setattr(backend, "_testcontainers", lambda: _Testcontainers(host, bridge))
        monkeypatch.setattr("testcontainers.core.utils.inside_container", lambda: inside_container)

    return use


def test_a_daemon_on_this_linux_machine_is_routed(daemon: Any) -> None:
    daemon("localhost", LOCAL_BRIDGE)
    assert backend.published_host() == "127.0.0.1"
    assert backend.addressing() == "routed"


def test_a_daemon_whose_bridge_is_not_here_is_reached_through_published_ports(daemon: Any) -> None:
    daemon("localhost", FOREIGN_BRIDGE)  # Docker Desktop, Colima: the VM's bridge
    assert backend.addressing() == "published"


def test_off_linux_it_is_always_published(daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon("localhost", LOCAL_BRIDGE)
    monkeypatch.setattr(backend.platform, "system", lambda: "Darwin")
    assert backend.addressing() == "published"


def test_a_daemon_on_another_machine_is_refused_with_a_reason(daemon: Any) -> None:
    daemon("192.0.2.9", FOREIGN_BRIDGE)
    assert backend.published_host() == "192.0.2.9"
    with pytest.raises(MissingDependencyError, match="another machine .*bind-mounts"):
        backend.docker_client()


def test_from_inside_a_container_the_gateway_is_where_ports_are_published(daemon: Any) -> None:
    daemon("192.0.2.1", FOREIGN_BRIDGE, inside_container=True)  # docker-outside-of-docker
    assert backend.docker_client() is not None
    assert backend.addressing() == "published" and backend.published_host() == "192.0.2.1"


def test_the_variable_overrides_and_is_checked(daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon("localhost", LOCAL_BRIDGE)
    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "published")
    assert backend.addressing() == "published"
    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "tunnel")
    with pytest.raises(MissingDependencyError, match="routed or published"):
        backend.addressing()
