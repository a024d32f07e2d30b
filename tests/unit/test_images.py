"""chaoskit images: cached by the Dockerfile's hash, as scripts/build-images.sh was (no docker needed here)."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from chaoskit import images
from chaoskit.errors import MissingDependencyError, UsageError
from chaoskit.resources import image_context


class FakeDocker:
    """Stands in for the docker CLI: image labels by tag; records builds."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.builds: list[list[str]] = []

    def __call__(self, *args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        if args[:2] == ("image", "inspect"):
            tag = args[-1]
            ok = tag in self.labels
            return subprocess.CompletedProcess(args, 0 if ok else 1, self.labels.get(tag, "") + "\n", "")
        if args[0] == "build":
            self.builds.append(list(args))
            label = args[args.index("--label") + 1]
            self.labels[args[args.index("-t") + 1]] = label.split("=", 1)[1]
        return subprocess.CompletedProcess(args, 0, "", "")


def test_image_build_is_cached_by_the_dockerfile_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    context = image_context("redis")
    sha = hashlib.sha256((context / "Dockerfile").read_bytes()).hexdigest()[:16]  # as `sha256sum | cut -c1-16`
    assert images.dockerfile_hash(context) == sha
    fake = FakeDocker({"chaoskit/redis:7": "0000"})
    monkeypatch.setattr(images, "_docker", fake)
    said: list[str] = []
    assert images.build("chaoskit/redis:7", context, force=False, say=said.append)  # stale label: rebuilt
    assert fake.builds[0][-1] == str(context) and f"io.chaoskit.dockerfile={sha}" in fake.builds[0]
    assert "BASE=chaoskit/debian:bookworm" in fake.builds[0]
    assert not images.build("chaoskit/redis:7", context, force=False, say=said.append)  # now up to date
    assert images.build("chaoskit/redis:7", context, force=True, say=said.append)
    assert len(fake.builds) == 2 and said == ["building chaoskit/redis:7"] * 2


def test_build_images_builds_nothing_when_every_label_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = {i.tag: images.dockerfile_hash(image_context(i.context)) for i in images.local_images()}
    fake = FakeDocker({images.BASE: "", **labels})
    monkeypatch.setattr(images, "_docker", fake)
    monkeypatch.setattr(images.shutil, "which", lambda name: f"/usr/bin/{name}")
    said: list[str] = []
    assert images.build_images(say=said.append) == []
    assert fake.builds == [] and said[-1].endswith("(all up to date)")
    fake.labels["chaoskit/nettools"] = "stale"
    assert images.build_images(say=said.append) == ["chaoskit/nettools"]
    assert fake.builds[0][-1] == str(image_context("nettools"))


def test_every_system_names_its_own_local_image_and_variable() -> None:
    from chaoskit.systems import get_system, system_names

    tags = [i.tag for i in images.local_images()]
    assert tags[-3:] == ["chaoskit/nettools", "chaoskit/dnsmasq", "chaoskit/toxiproxy:2.12.0"]
    assert len(tags) == len(set(tags))
    env = images.image_env()
    for name in system_names():
        system = get_system(name)
        if system.local_image is not None:
            assert image_context(system.local_image.context).joinpath("Dockerfile").is_file()
            assert env[system.image_variable()[0]] == system.local_image.tag
    assert env["CHAOSKIT_REDIS_IMAGE"] == "chaoskit/redis:7"


def test_systems_are_found_by_module_without_a_list() -> None:
    from chaoskit.systems import get_system, system_names

    assert {"redis", "postgres", "mongo"} <= set(system_names())
    assert all(get_system(n).name == n for n in system_names())
    with pytest.raises(KeyError):
        get_system("base")


def test_stand_ins_map_official_images_to_the_local_ones_unless_a_variable_names_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in images.image_env():
        monkeypatch.delenv(var, raising=False)
    subs = images.stand_ins()
    assert subs["redis:7.2"] == "chaoskit/redis:7" and subs["mongo:6.0"] == "chaoskit/mongo:6"
    assert subs["ghcr.io/shopify/toxiproxy:2.12.0"] == "chaoskit/toxiproxy:2.12.0"
    assert "chaoskit/postgres-patroni:15" not in subs  # no official image: the local one is the image
    monkeypatch.setenv("CHAOSKIT_REDIS_IMAGE", "registry.example/redis:7")  # the user's own: never swapped
    assert "redis:7.2" not in images.stand_ins()


def test_a_system_s_docker_runs_need_its_image_and_the_helpers_its_experiments_use() -> None:
    tags = {name: [i.tag for i in images.needed_by(name)] for name in ("redis", "postgres", "cassandra")}
    assert tags["redis"] == ["chaoskit/redis:7", "chaoskit/nettools", "chaoskit/dnsmasq", "chaoskit/toxiproxy:2.12.0"]
    assert "chaoskit/memcached:1.6" in tags["postgres"]  # the cache-aside experiments' cache
    assert tags["cassandra"] == ["chaoskit/cassandra:5.0", "chaoskit/nettools"]
    with pytest.raises(UsageError, match="unknown system 'k8s'"):
        images.needed_by("k8s")


def test_images_for_a_system_builds_only_what_no_registry_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in images.image_env():
        monkeypatch.delenv(var, raising=False)
    fake = FakeDocker({images.BASE: "", "ghcr.io/shopify/toxiproxy:2.12.0": ""})  # pulled earlier: no build
    monkeypatch.setattr(images, "_docker", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no registry")
                        if a[0] == "pull" else fake(*a, **k))
    monkeypatch.setattr(images.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(images, "build_local", lambda image, force, say: bool(fake.builds.append([image.tag])) or True)
    said: list[str] = []
    assert images.build_images(say=said.append, system="redis") == ["chaoskit/redis:7", "chaoskit/nettools",
                                                                      "chaoskit/dnsmasq"]
    assert "ghcr.io/shopify/toxiproxy:2.12.0: here, chaoskit/toxiproxy:2.12.0 not needed" in said


def test_as_a_user_the_base_image_is_made_without_root_or_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDocker({})
    monkeypatch.setattr(images, "_docker", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no registry")
                        if a[0] == "pull" else fake(*a, **k))
    monkeypatch.setattr(images.os, "geteuid", lambda: 1001)
    made: list[str] = []
    monkeypatch.setattr(images, "_mmdebstrap", lambda mirror, say: made.append(mirror))
    monkeypatch.setattr(images.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert images.build_base(False, lambda _msg: None) and made == ["http://deb.debian.org/debian"]
    monkeypatch.setattr(images.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError) as info:
        images.build_base(False, lambda _msg: None)
    msg = str(info.value)
    assert info.value.exit_code == 3 and "\n" not in msg and "sudo make images" in msg and "mmdebstrap" in msg


def test_where_a_registry_answers_the_base_is_the_official_debian_image(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def docker(*args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 1 if args[:2] == ("image", "inspect") else 0, "", "")

    monkeypatch.setattr(images, "_docker", docker)
    assert images.build_base(False, lambda _msg: None)
    assert ("pull", "-q", "debian:bookworm") in calls and ("tag", "debian:bookworm", images.BASE) in calls
