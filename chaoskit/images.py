"""``chaoskit images``: build the local images for machines that cannot pull from a registry (CI).

They provide the same binaries as the official images; the build contexts are package data
(``chaoskit/images/<image>``), so an installed wheel builds them too. Each system names its own
(``SYSTEM.local_image``); this module only builds them. Cached: an image is rebuilt only
when its Dockerfile changed (the Dockerfile's hash is kept in the label ``io.chaoskit.dockerfile``), or
with ``force``.

The base of them all is ``chaoskit/debian:bookworm``: the official ``debian:bookworm`` where a registry gives
it, else a minimal Debian made here -- by debootstrap as root, or by mmdebstrap in a user namespace for
anyone else -- and ``docker import``-ed. ``chaoskit/nettools`` (iptables) runs partitions from a helper
container, ``chaoskit/dnsmasq`` the DNS endpoints on docker; ``chaoskit/toxiproxy`` stands in for Toxiproxy's.

Where no registry answers, a docker run uses these images by itself (:func:`stand_ins`): nobody exports
anything. ``chaoskit images --system NAME`` builds only what that system's docker runs need and cannot pull.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from chaoskit import toxiproxy
from chaoskit.backends.docker_images import DNS_IMAGE, NET_IMAGE
from chaoskit.errors import InfrastructureError, MissingDependencyError
from chaoskit.experiment import Experiment
from chaoskit.resources import DOCKERFILE_LABEL, dockerfile_hash, image_context
from chaoskit.systems.base import LocalImage

BASE = "chaoskit/debian:bookworm"
OFFICIAL_BASE = "debian:bookworm"  # what BASE is where a registry answers
LABEL = DOCKERFILE_LABEL
STAGE_LABEL = "io.chaoskit.stage"  # on a build stage of a multi-stage Dockerfile: its leftover image is pruned
NETTOOLS = LocalImage(NET_IMAGE, "nettools")  # not a system's: iptables for partitions from a helper container
DNSMASQ = LocalImage(DNS_IMAGE, "dnsmasq")  # the DNS server of DNS endpoints on docker
TOXIPROXY = LocalImage(toxiproxy.LOCAL_TAG, "toxiproxy", stage=toxiproxy.stage_image)
HELPERS = (NETTOOLS, DNSMASQ, TOXIPROXY)
NONROOT_BASE = (f"cannot make the base image {BASE} as a user: no registry gives {OFFICIAL_BASE} and debootstrap "
                "needs root -- build the images once as root (`sudo make images`: every user of this Docker "
                "daemon shares them), or have mmdebstrap and uidmap installed (`sudo apt-get install mmdebstrap "
                "uidmap`) and run `chaoskit images` again: it then makes the base in a user namespace")
DEBOOTSTRAP_LOG = Path(tempfile.gettempdir()) / f"chaoskit-debootstrap-{os.getuid()}.log"  # per user: /tmp is shared

Say = Callable[[str], None]


def _docker(*args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], stdin=stdin, capture_output=True, text=True, check=False)


def _label(tag: str) -> str | None:
    res = _docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', tag)
    return res.stdout.strip() if res.returncode == 0 else None


def _exists(tag: str) -> bool:
    return _docker("image", "inspect", tag).returncode == 0


def build_base(force: bool, say: Say) -> bool:
    """``chaoskit/debian:bookworm`` unless it exists: the official image where a registry gives it, else made
    here (root: debootstrap; anyone else: mmdebstrap in a user namespace). Returns whether it was made.
    MissingDependencyError (one line, how) when none of these can be done."""
    if not force and _exists(BASE):
        return False
    if _docker("pull", "-q", OFFICIAL_BASE).returncode == 0:
        say(f"base image {BASE}: the official {OFFICIAL_BASE}")
        if _docker("tag", OFFICIAL_BASE, BASE).returncode != 0:
            raise InfrastructureError(f"docker tag {OFFICIAL_BASE} {BASE} failed")
        return True
    mirror = os.environ.get("CHAOSKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    if os.geteuid() == 0:
        _debootstrap(mirror, say)
    elif shutil.which("mmdebstrap") and shutil.which("newuidmap"):
        _mmdebstrap(mirror, say)
    else:
        raise MissingDependencyError(NONROOT_BASE)
    return True


def _debootstrap(mirror: str, say: Say) -> None:
    """The base by debootstrap (root): a minbase tree in a temporary directory, imported with tar."""
    if shutil.which("debootstrap") is None:
        say("installing debootstrap")
        apt = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True, text=True,
                             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)
        if apt.returncode != 0:
            raise MissingDependencyError(f"cannot build {BASE}: debootstrap is missing and apt-get failed",
                                         apt.stderr[-2000:])
    say(f"building base image {BASE} with debootstrap (~1 min)")
    with tempfile.TemporaryDirectory(prefix="chaoskit-rootfs.") as root, DEBOOTSTRAP_LOG.open("w") as log:
        boot = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root, mirror], stdout=log,
                              stderr=subprocess.STDOUT, check=False)
        if boot.returncode != 0:
            raise InfrastructureError(f"debootstrap failed (log: {DEBOOTSTRAP_LOG})", _log_tail())
        with subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = _docker("import", "-", BASE, stdin=tar.stdout.fileno() if tar.stdout else None)
        if tar.returncode != 0 or imported.returncode != 0:
            raise InfrastructureError(f"docker import of {BASE} failed: {imported.stderr.strip()}")
    DEBOOTSTRAP_LOG.unlink(missing_ok=True)  # kept only when it failed


def _mmdebstrap(mirror: str, say: Say) -> None:
    """The base by mmdebstrap as this user (``--mode=unshare``: root only in a user namespace, through this
    user's /etc/subuid range); its tarball goes straight to ``docker import``, nothing is left in /tmp."""
    say(f"building base image {BASE} with mmdebstrap in a user namespace (~20 s)")
    with DEBOOTSTRAP_LOG.open("w") as log, subprocess.Popen(
            ["mmdebstrap", "--mode=unshare", "--variant=minbase", "bookworm", "-", mirror],
            stdout=subprocess.PIPE, stderr=log) as boot:
        imported = _docker("import", "-", BASE, stdin=boot.stdout.fileno() if boot.stdout else None)
    if boot.returncode != 0 or imported.returncode != 0:
        raise InfrastructureError(f"mmdebstrap (user namespace) failed: it needs a range of this user in "
                                  f"/etc/subuid and /etc/subgid (log: {DEBOOTSTRAP_LOG})", _log_tail())
    DEBOOTSTRAP_LOG.unlink(missing_ok=True)  # kept only when it failed


def _log_tail() -> str:
    return "\n".join(DEBOOTSTRAP_LOG.read_text(errors="replace").splitlines()[-20:])


def build(tag: str, context: Path, force: bool, say: Say, sha: str | None = None) -> bool:
    """Build ``tag`` from ``context`` unless its label matches the Dockerfile's hash. Returns whether it was built."""
    sha = sha or dockerfile_hash(context)
    if not force and _label(tag) == sha:
        return False
    say(f"building {tag}")
    res = _docker("build", "-q", "--force-rm", "--build-arg", f"BASE={BASE}", "--label", f"{LABEL}={sha}",
                  "-t", tag, str(context))
    _docker("image", "prune", "-f", "--filter", f"label={STAGE_LABEL}")  # a build stage's image, now untagged
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


def stand_ins(exp: Experiment | None = None) -> dict[str, str]:
    """Official image -> the local image built for it here, which a docker run uses where the official one is not
    here and cannot be pulled; not for an image whose variable is set (the user's own choice is kept). With
    ``exp``, also its system's image for its ``topology:`` (a pinned version's) and that image's stand-in."""
    from chaoskit.systems import get_system, system_names

    pairs = [(get_system(name).image_variable(), get_system(name).local_image) for name in system_names()]
    pairs.append((toxiproxy.IMAGE, TOXIPROXY))
    subs = {official: local.tag for (var, official), local in pairs
            if local is not None and var not in os.environ and official != local.tag}
    if exp is not None and exp.system in system_names():
        image, local = get_system(exp.system).image_for(exp.topology)
        if local is not None and local.tag != image:
            subs[image] = local.tag
    return subs


def _pinned(system_name: str, version: str | None) -> list[Experiment]:
    """The shipped experiments of a system, and (``version``) a stand-in experiment of that version."""
    from chaoskit.catalog import list_experiments

    exps = [e for e in list_experiments([]) if e.system == system_name]
    if version is not None and exps:
        exps.append(exps[0].model_copy(update={"topology": {"version": version}}))
    return exps


def needed_by(system_name: str, version: str | None = None) -> list[LocalImage]:
    """The local images a docker run of this system's built-in experiments may use: its own, the memcached one
    beside a cache-aside run, ``chaoskit/nettools`` (partitions from a helper container), ``chaoskit/dnsmasq``
    for DNS endpoints and ``chaoskit/toxiproxy`` for toxic faults; the stand-ins of the versions its experiments
    pin, and of ``version``. UsageError for an unknown system or version."""
    from pydantic import ValidationError

    from chaoskit.errors import UsageError
    from chaoskit.systems import get_system, system_names
    from chaoskit.toxics import uses_toxics

    if system_name not in system_names():
        raise UsageError(f"unknown system {system_name!r} (known: {', '.join(system_names())})")
    exps = _pinned(system_name, version)
    if version is not None:
        try:
            get_system(system_name).settings_model.model_validate({"version": version})
        except ValidationError as exc:
            raise UsageError(f"--version: {exc.errors()[0]['msg']}") from None
    systems = [system_name] + (["memcached"] if any(e.cache is not None for e in exps) else [])
    found = [img for name in systems if (img := get_system(name).local_image) is not None]
    found += [img for e in exps if (img := get_system(system_name).image_for(e.topology)[1]) is not None
              and img.tag not in {f.tag for f in found}]  # the versions the shipped experiments pin
    return [*found, NETTOOLS, *([DNSMASQ] if any(e.dns is not None for e in exps) else []),
            *([TOXIPROXY] if any(uses_toxics(list(e.faults)) for e in exps) else [])]


def _docker_answers() -> None:
    if shutil.which("docker") is None or _docker("info").returncode != 0:
        raise MissingDependencyError("no Docker daemon answers (`make docker` installs and starts one)")


def build_images(force: bool = False, say: Say = print, system: str | None = None,
                 version: str | None = None) -> list[str]:
    """Build what is missing or out of date (everything with ``force``); with ``system``, only what its docker
    runs need and no registry gives (:func:`needed_by`, with ``version``'s stand-in). Returns the tags built."""
    _docker_answers()
    if version is not None and system is None:
        from chaoskit.errors import UsageError

        raise UsageError("--version needs --system (the system whose version to build)")
    officials = {} if system is None else {local: image for e in _pinned(system, version)
                                           for image, local in stand_ins(e).items()}
    todo = local_images() if system is None else _unpullable(needed_by(system, version), officials, say)
    if system is not None and not todo:
        say(f"images for {system}: the official ones (a registry answers); nothing to build")
        return []
    stale = [img for img in todo if force or _label(img.tag) != dockerfile_hash(image_context(img.context))]
    built = [BASE] if stale and build_base(force, say) else []
    for image in stale:
        built += [image.tag] if build_local(image, force, say) else []
    say(f"images ready: {BASE} {' '.join(i.tag for i in todo)}" + ("" if built else " (all up to date)"))
    return built


def _unpullable(images: list[LocalImage], official: dict[str, str], say: Say) -> list[LocalImage]:
    """The local images among ``images`` that stand in for an official image (``official``: local tag -> official)
    no registry gives here (and those with no official image); an official image pulled here is used as it is."""
    todo = []
    for img in images:
        source = official.get(img.tag)
        if source is not None and (_exists(source) or _docker("pull", "-q", source).returncode == 0):
            say(f"{source}: here, {img.tag} not needed")
            continue
        todo.append(img)
    return todo
