"""``chaoskit images``: build the local images for machines that cannot pull from a registry (CI).

They provide the same binaries as the official images; the build contexts are package data
(``chaoskit/images/<image>``), so an installed wheel builds them too. Each system names its own
(``SYSTEM.local_image``); this module only builds them. Cached: an image is rebuilt only
when its Dockerfile changed (the Dockerfile's hash is kept in the label ``io.chaoskit.dockerfile``), or
with ``force``.

The base of them all is ``chaoskit/debian:bookworm`` (debootstrap --variant=minbase + docker import);
``chaoskit/nettools`` (iptables) runs partitions from a helper container.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from chaoskit.errors import InfrastructureError, MissingDependencyError
from chaoskit.resources import image_context
from chaoskit.systems.base import LocalImage

BASE = "chaoskit/debian:bookworm"
LABEL = "io.chaoskit.dockerfile"
HELPERS = (LocalImage("chaoskit/nettools", "nettools"),)  # not a system's: iptables for partitions
DEBOOTSTRAP_LOG = Path(tempfile.gettempdir()) / f"chaoskit-debootstrap-{os.getuid()}.log"  # per user: /tmp is shared

Say = Callable[[str], None]


def dockerfile_hash(context: Path) -> str:
    """The label value an image built from ``context`` carries (first 16 hex digits of its Dockerfile's sha256)."""
    return hashlib.sha256((context / "Dockerfile").read_bytes()).hexdigest()[:16]


def _docker(*args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], stdin=stdin, capture_output=True, text=True, check=False)


def _label(tag: str) -> str | None:
    res = _docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', tag)
    return res.stdout.strip() if res.returncode == 0 else None


def _exists(tag: str) -> bool:
    return _docker("image", "inspect", tag).returncode == 0


def build_base(force: bool, say: Say) -> bool:
    """``chaoskit/debian:bookworm`` from debootstrap, unless it exists. Returns whether it was built."""
    if not force and _exists(BASE):
        return False
    if shutil.which("debootstrap") is None:
        say("installing debootstrap")
        apt = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True, text=True,
                             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)
        if apt.returncode != 0:
            raise MissingDependencyError(f"cannot build {BASE}: debootstrap is missing and apt-get failed",
                                         apt.stderr[-2000:])
    mirror = os.environ.get("CHAOSKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    say(f"building base image {BASE} with debootstrap (~1 min)")
    with tempfile.TemporaryDirectory(prefix="chaoskit-rootfs.") as root, DEBOOTSTRAP_LOG.open("w") as log:
        boot = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root, mirror], stdout=log,
                              stderr=subprocess.STDOUT, check=False)
        if boot.returncode != 0:
            tail = "\n".join(DEBOOTSTRAP_LOG.read_text(errors="replace").splitlines()[-20:])
            raise InfrastructureError(f"debootstrap failed (log: {DEBOOTSTRAP_LOG})", tail)
        with subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = _docker("import", "-", BASE, stdin=tar.stdout.fileno() if tar.stdout else None)
        if tar.returncode != 0 or imported.returncode != 0:
            raise InfrastructureError(f"docker import of {BASE} failed: {imported.stderr.strip()}")
    return True


def build(tag: str, context: Path, force: bool, say: Say, sha: str | None = None) -> bool:
    """Build ``tag`` from ``context`` unless its label matches the Dockerfile's hash. Returns whether it was built."""
    sha = sha or dockerfile_hash(context)
    if not force and _label(tag) == sha:
        return False
    say(f"building {tag}")
    res = _docker("build", "-q", "--force-rm", "--build-arg", f"BASE={BASE}", "--label", f"{LABEL}={sha}",
                  "-t", tag, str(context))
    if res.returncode != 0:
        raise InfrastructureError(f"docker build of {tag} failed", res.stderr[-2000:])
    return True


def local_images() -> list[LocalImage]:
    """Every system's local image (by system name), then the helper images, in build order."""
    from chaoskit.systems import get_system, system_names

    found = [img for name in system_names() if (img := get_system(name).local_image) is not None]
    return [*found, *HELPERS]


def build_local(image: LocalImage, force: bool, say: Say) -> bool:
    """Build one local image; a context with a ``stage`` step is built from a staged copy."""
    context = image_context(image.context)
    if image.stage is None:
        return build(image.tag, context, force, say)
    sha = dockerfile_hash(context)
    if not force and _label(image.tag) == sha:
        return False
    with tempfile.TemporaryDirectory(prefix=f"chaoskit-{image.context}-image.") as tmp:
        staged = Path(tmp) / "context"
        shutil.copytree(context, staged)
        image.stage(staged, say)
        return build(image.tag, staged, force=True, say=say, sha=sha)


def image_env() -> dict[str, str]:
    """The variables that point each system at its local image (``chaoskit images --env``); one already
    set in the environment (the user's own image) keeps its value."""
    from chaoskit.systems import get_system, system_names

    env = {}
    for name in system_names():
        system = get_system(name)
        if system.local_image is not None:
            var = system.image_variable()[0]
            env[var] = os.environ.get(var, system.local_image.tag)
    return env


def build_images(force: bool = False, say: Say = print) -> list[str]:
    """Build what is missing or out of date (everything with ``force``); returns the tags built."""
    if shutil.which("docker") is None or _docker("info").returncode != 0:
        raise MissingDependencyError("no Docker daemon answers (`make docker` installs and starts one)")
    built = [BASE] if build_base(force, say) else []
    todo = local_images()
    for image in todo:
        built += [image.tag] if build_local(image, force, say) else []
    say(f"images ready: {BASE} {' '.join(i.tag for i in todo)}" + ("" if built else " (all up to date)"))
    return built
