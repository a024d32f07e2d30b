"""chaoskit images: cached by the Dockerfile's hash, as scripts/build-images.sh was (no docker needed here)."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from chaoskit import images
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
