"""Which image a docker node runs: the one asked for, or the locally built stand-in where it cannot be had.

A system asks for its official image (``redis:7.2``) unless its ``CHAOSKIT_*_IMAGE`` variable names
another. Where that image is not here and no registry gives it (a laptop on a train, CI without a
registry), the docker backend runs the image ``chaoskit images`` built here instead (``chaoskit/redis:7``):
the *stand-in*, named by the layer above (:func:`chaoskit.images.stand_ins`), so nobody has to export
anything. An image named by the user's own variable has no stand-in: it is used as named, or refused.

The helper images have no official image: ``chaoskit/nettools`` (iptables, for partitions from a helper
container) and ``chaoskit/dnsmasq`` (the DNS server of DNS endpoints). ``chaoskit images`` builds them; where
they are missing they are built on first use on ``debian:bookworm-slim`` if a registry gives it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from chaoskit.errors import MissingDependencyError
from chaoskit.resources import DOCKERFILE_LABEL, dockerfile_hash, image_context

NET_IMAGE = "chaoskit/nettools"  # iptables, for partitions from a helper container in a node's netns
DNS_IMAGE = "chaoskit/dnsmasq"  # the DNS server of a run's DNS endpoints
HELPERS = {NET_IMAGE: "nettools", DNS_IMAGE: "dnsmasq"}  # image -> its build context (chaoskit/images/<context>)


def present(client: Any, image: str) -> bool:
    """True when the daemon has ``image``."""
    import docker

    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


_UNPULLABLE: set[str] = set()  # images no registry gave this process (a run asks once per node)


def _pull_failed(client: Any, image: str) -> bool:
    """Pull ``image``; True when no registry gives it (remembered for the rest of the process)."""
    import docker

    if image in _UNPULLABLE:
        return True
    try:
        client.images.pull(image)
        return False
    except docker.errors.APIError:
        _UNPULLABLE.add(image)
        return True


def pick(client: Any, image: str, stand_in: str | None) -> str | None:
    """The image to run for ``image``: itself when here or pullable, else ``stand_in`` when here, else None."""
    if image in HELPERS:
        return image if _helper(client, image, build=False) else None
    if present(client, image):
        return image
    if not _pull_failed(client, image):
        return image
    if stand_in is not None and present(client, stand_in):
        return stand_in
    return None


def ensure(client: Any, image: str, stand_ins: Mapping[str, str]) -> str:
    """The image a node of ``image`` runs (see :func:`pick`); builds a helper image on first use.
    Raises MissingDependencyError (one line: how to get it) when there is none."""
    if image in HELPERS:
        _helper(client, image, build=True)
        return image
    chosen = pick(client, image, stand_ins.get(image))
    if chosen is None:
        raise MissingDependencyError(unavailable(image, stand_ins.get(image)))
    return chosen


def unavailable(image: str, stand_in: str | None) -> str:
    """One line: ``image`` is not here, cannot be pulled, and how to get it."""
    if stand_in is not None:
        return (f"image {image!r} is not here and cannot be pulled, and its local stand-in {stand_in!r} is not "
                "built: run `chaoskit images` (or `make images`)")
    return (f"image {image!r} is not here and cannot be pulled: build it with `chaoskit images` or point its "
            "CHAOSKIT_*_IMAGE variable at an image you have")


def _helper(client: Any, image: str, *, build: bool) -> bool:
    """A helper image is here, or (``build``) was built now on its base; MissingDependencyError (one line) when
    ``build`` and it cannot be. Without ``build``: whether it is here or its base could be had."""
    import docker

    if present(client, image):
        return True
    base = os.environ.get("CHAOSKIT_NET_BASE", "debian:bookworm-slim")
    if not build:
        return present(client, base) or not _pull_failed(client, base)
    context = image_context(HELPERS[image])
    try:
        client.images.build(path=str(context), tag=image, buildargs={"BASE": base}, rm=True,
                            labels={DOCKERFILE_LABEL: dockerfile_hash(context)})
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        raise MissingDependencyError(f"{image} is not here and cannot be built on {base} "
                                     f"({str(exc).splitlines()[0][:120]}): run `chaoskit images` (it builds it on "
                                     "chaoskit/debian:bookworm)") from None
    return True
