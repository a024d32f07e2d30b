"""``--backend auto`` never picks a backend this user cannot use (chaoskit.choice), and which image docker runs
(chaoskit.backends.docker_images): pure logic, with the daemon's answers and the user's rights faked."""

from __future__ import annotations

from typing import Any

import pytest

from chaoskit import choice
from chaoskit.backends import docker, docker_images, local
from chaoskit.choice import Needs, choose
from chaoskit.errors import MissingDependencyError, UsageError

NO_DAEMON = "Docker daemon not reachable (DockerException): start Docker, or use --backend local"


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A machine whose answers the test sets: what docker lacks, its addressing, whether this is root."""
    state: dict[str, Any] = {"docker": [], "addressing": "routed", "root": False, "asked": []}

    def missing_images(images: list[str], subs: Any = None) -> list[str]:
        state["asked"].append(list(images))
        return list(state["docker"])

    monkeypatch.setattr(docker, "missing_images", missing_images)
    monkeypatch.setattr(docker, "addressing", lambda: state["addressing"])
    monkeypatch.setattr(choice, "stand_ins", lambda exp=None: {"redis:7.2": "chaoskit/redis:7"})
    monkeypatch.setattr(choice, "images_note", lambda needs, subs: "")
    monkeypatch.setattr(local.platform, "system", lambda: "Linux")
    monkeypatch.setattr(local.os, "geteuid", lambda: 0 if state["root"] else 1001)
    monkeypatch.setattr(choice.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(local.shutil, "which", lambda name: f"/usr/bin/{name}")
    return state


def test_as_a_user_auto_takes_docker_for_toxic_and_dns_experiments_too(machine: dict[str, Any]) -> None:
    picked = choose("auto", Needs("redis", toxics=True, dns=True))
    assert picked.backend == "docker" and picked.stand_ins == {"redis:7.2": "chaoskit/redis:7"}
    (asked,) = machine["asked"]
    assert asked[-2:] == ["ghcr.io/shopify/toxiproxy:2.12.0", "chaoskit/dnsmasq"], asked


def test_as_root_auto_takes_local_where_docker_cannot(machine: dict[str, Any]) -> None:
    machine.update(docker=[NO_DAEMON], root=True)
    assert choose("auto", Needs("redis", toxics=True)).backend == "local"


def test_with_neither_docker_nor_root_one_line_names_both(machine: dict[str, Any]) -> None:
    machine.update(docker=[NO_DAEMON])
    with pytest.raises(MissingDependencyError) as info:
        choose("auto", Needs("redis"))
    msg = str(info.value)
    assert info.value.exit_code == 3 and "\n" not in msg, msg
    assert msg.startswith("no backend can run this here -- docker: Docker daemon not reachable"), msg
    assert "; local: the local backend needs root" in msg, msg


def test_what_no_backend_supports_here_is_exit_2(machine: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Toxic faults with published ports (Docker Desktop) off Linux: nothing to install would help."""
    machine.update(addressing="published")
    monkeypatch.setattr(choice, "local_problem", lambda needs: UsageError("not on this platform"))
    with pytest.raises(UsageError) as info:
        choose("auto", Needs("redis", toxics=True))
    assert info.value.exit_code == 2 and "routed addressing" in str(info.value)


def test_an_explicit_backend_is_checked_before_anything_starts(machine: dict[str, Any]) -> None:
    machine.update(docker=["image 'redis:7.2' is not here and cannot be pulled, and its local stand-in "
                           "'chaoskit/redis:7' is not built: run `chaoskit images` (or `make images`)"])
    with pytest.raises(MissingDependencyError, match=r"^image 'redis:7.2' is not here .* run `chaoskit images`"):
        choose("docker", Needs("redis"))
    machine.update(docker=[], addressing="published")
    with pytest.raises(UsageError, match="routed addressing"):
        choose("docker", Needs("redis", dns=True))
    with pytest.raises(UsageError, match="unknown backend 'k8s'"):
        choose("k8s", Needs("redis"))
    assert choose("local", Needs("redis")).backend == "local"  # the backend itself says it needs root


def test_the_local_backend_without_go_cannot_take_a_toxic_run(machine: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    machine.update(root=True, docker=[NO_DAEMON])
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(choice.shutil, "which", lambda name: None if name == "go" else f"/usr/bin/{name}")
    problem = choice.local_problem(Needs("redis", toxics=True))
    assert isinstance(problem, MissingDependencyError) and "`go` is not on PATH" in str(problem)
    assert choice.local_problem(Needs("redis")) is None


# ---- which image a docker node runs ------------------------------------------------------------

class _Images:
    """The SDK's ``client.images``: what is here, and pulls that fail (no registry)."""

    def __init__(self, here: set[str], registry: bool = False) -> None:
        self.here, self.registry, self.pulls = here, registry, 0

    def get(self, image: str) -> object:
        import docker as sdk

        if image not in self.here:
            raise sdk.errors.ImageNotFound(image)
        return object()

    def pull(self, image: str) -> None:
        import docker as sdk

        self.pulls += 1
        if not self.registry:
            raise sdk.errors.APIError(f"no registry for {image}")
        self.here.add(image)


class _Client:
    def __init__(self, images: _Images) -> None:
        self.images = images


def test_the_official_image_runs_when_here_or_pullable() -> None:
    assert docker_images.pick(_Client(_Images({"here:1"})), "here:1", "chaoskit/here:1") == "here:1"
    pulled = _Images(set(), registry=True)
    assert docker_images.pick(_Client(pulled), "pullable:1", "chaoskit/pullable:1") == "pullable:1"
    assert pulled.pulls == 1


def test_without_a_registry_the_local_stand_in_runs_and_the_pull_is_tried_once() -> None:
    images = _Images({"chaoskit/offline:7"})
    client = _Client(images)
    assert docker_images.pick(client, "offline:7", "chaoskit/offline:7") == "chaoskit/offline:7"
    assert docker_images.ensure(client, "offline:7", {"offline:7": "chaoskit/offline:7"}) == "chaoskit/offline:7"
    assert images.pulls == 1, "a run asks once per node: the failed pull is remembered"


def test_an_image_of_the_user_s_own_is_never_swapped() -> None:
    client = _Client(_Images({"chaoskit/redis:7"}))
    assert docker_images.pick(client, "registry.example/redis:7", None) is None
    with pytest.raises(MissingDependencyError) as info:
        docker_images.ensure(client, "registry.example/redis:7", {"redis:7.2": "chaoskit/redis:7"})
    assert "\n" not in str(info.value) and "CHAOSKIT_*_IMAGE" in str(info.value)
    with pytest.raises(MissingDependencyError, match=r"its local stand-in 'chaoskit/redis:7' is not built"):
        docker_images.ensure(_Client(_Images(set())), "redis:7.2", {"redis:7.2": "chaoskit/redis:7"})
