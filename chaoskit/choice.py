"""Which backend runs an experiment: what each backend needs here, and what ``--backend auto`` picks.

``auto`` never picks a backend this user cannot use. **docker** when a daemon answers and every image the
run needs is here, can be pulled, or has its local stand-in built here (:func:`chaoskit.images.stand_ins`)
-- and, for toxic faults and DNS endpoints, the daemon's networks are routed to this host (a Linux daemon).
Else **local** when this is Linux, the runner is root and the servers are installed. Else one line saying
why neither can (exit 3). ``chaoskit run``, ``chaoskit up``, ``chaoskit.cluster()`` and the pytest fixtures
all choose here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from chaoskit import cache_aside, dns, toxiproxy
from chaoskit.backends import check_backend_name
from chaoskit.backends.docker_images import DNS_IMAGE
from chaoskit.errors import ChaoskitError, MissingDependencyError, UsageError
from chaoskit.experiment import Experiment
from chaoskit.images import stand_ins
from chaoskit.systems import get_system
from chaoskit.toxics import uses_toxics


@dataclass(frozen=True)
class Needs:
    """What a run asks of its backend besides its system's nodes."""

    system: str
    toxics: bool = False  # Toxiproxy on the client path
    dns: bool = False  # a DNS server for the run's endpoints
    cache: bool = False  # one memcached beside the system (cache-aside)
    experiment: Experiment | None = None  # for the checks only an experiment has (cache-aside's client)

    @classmethod
    def of(cls, exp: Experiment) -> Needs:
        """What ``exp`` needs."""
        return cls(exp.system, uses_toxics(list(exp.faults)), exp.dns is not None, exp.cache is not None, exp)


@dataclass(frozen=True)
class Choice:
    """The backend a run uses, the local images docker may run instead of official ones, and what to say."""

    backend: str
    stand_ins: dict[str, str] = field(default_factory=dict)
    note: str = ""


def docker_images(needs: Needs) -> list[str]:
    """Every image a docker run with ``needs`` starts (the system's, the cache's, Toxiproxy's, dnsmasq's)."""
    system = get_system(needs.system)
    found = [system.image_for(needs.experiment.topology)[0]] if needs.experiment is not None else system.images()
    found += get_system("memcached").images() if needs.cache else []
    found += [toxiproxy.image()] if needs.toxics else []
    return found + ([DNS_IMAGE] if needs.dns else [])


def docker_problem(needs: Needs, subs: dict[str, str]) -> ChaoskitError | None:
    """Why the docker backend cannot run ``needs`` here (an error of one line), or None when it can."""
    from chaoskit.backends.docker import missing_images

    try:
        _refuse("docker", needs)
    except ChaoskitError as exc:
        return exc
    if problems := missing_images(docker_images(needs), subs):
        return MissingDependencyError(_build_hint(problems[0], needs))
    return None


def _build_hint(problem: str, needs: Needs) -> str:
    """A missing stand-in of a pinned version is built by ``chaoskit images --system S --version V``."""
    if needs.experiment is None:
        return problem
    system = get_system(needs.system)
    local = system.image_for(needs.experiment.topology)[1]
    if local is None or local == system.local_image or f"{local.tag!r}" not in problem:
        return problem
    how = f"`chaoskit images --system {needs.system} --version {local.tag.rsplit(':', 1)[1]}`"
    return problem.replace("`chaoskit images` (or `make images`)", how)


def local_problem(needs: Needs) -> ChaoskitError | None:
    """Why the local backend cannot run ``needs`` here (an error of one line), or None when it can."""
    from chaoskit.backends.local import check_platform

    try:
        _refuse("local", needs)
        check_platform()
        check_binaries(needs.system, "local")
        if needs.toxics and not (toxiproxy.cache_dir() / toxiproxy.BINARY).is_file() and shutil.which("go") is None:
            raise MissingDependencyError(f"toxic faults on the local backend build Toxiproxy with Go "
                                         f"{toxiproxy.GO_MIN[0]}.{toxiproxy.GO_MIN[1]} or newer: `go` is not on PATH")
    except ChaoskitError as exc:
        return exc
    return None


def check_binaries(system_name: str, backend: str) -> None:
    """On the local backend, MissingDependencyError (exit 3, with the install hint) for a server binary that
    is not on PATH; nothing on docker."""
    if backend == "docker":
        return
    for binary, hint in get_system(system_name).binaries().items():
        if shutil.which(binary) is None:
            raise MissingDependencyError(f"`{binary}` not found: {hint} (or run `make setup`)")


def _refuse(backend: str, needs: Needs) -> None:
    """What the run's sidecars refuse on ``backend``: UsageError (exit 2) or MissingDependencyError (exit 3)."""
    if needs.dns:
        dns.refuse(backend)
    if needs.cache and needs.experiment is not None:
        cache_aside.refuse(needs.experiment, backend)
    if needs.toxics:
        toxiproxy.refuse(backend)


def choose(requested: str, needs: Needs) -> Choice:
    """The backend for a run that asked for ``requested`` (auto | local | docker); nothing is started.

    An explicit backend is checked as far as can be before starting (UsageError exit 2, or
    MissingDependencyError exit 3, one line); ``auto`` picks as the module says, or raises
    MissingDependencyError naming why neither backend can."""
    check_backend_name(requested)
    subs = stand_ins(needs.experiment)
    if requested == "local":
        check_binaries(needs.system, "local")
        _refuse("local", needs)
        return Choice("local")
    if requested == "docker":
        if problem := docker_problem(needs, subs):
            raise problem
        return Choice("docker", subs, images_note(needs, subs))
    docker_why = docker_problem(needs, subs)
    if docker_why is None:
        return Choice("docker", subs, images_note(needs, subs))
    local_why = local_problem(needs)
    if local_why is None:
        return Choice("local")
    both = f"no backend can run this here -- docker: {_clause(docker_why)}; local: {_clause(local_why)}"
    if isinstance(docker_why, UsageError) and isinstance(local_why, UsageError):
        raise UsageError(both)  # not supported here, whatever is installed (exit 2)
    raise MissingDependencyError(both)  # something to install or start (exit 3)


def _clause(why: ChaoskitError) -> str:
    """The first line of a problem (an InfrastructureError may carry a log tail)."""
    return (str(why).splitlines() or [""])[0]


def images_note(needs: Needs, subs: dict[str, str]) -> str:
    """Which images docker runs in place of official ones that cannot be had here ('' when none)."""
    from chaoskit.backends.docker import docker_client
    from chaoskit.backends.docker_images import pick

    client = docker_client()
    used = [(image, pick(client, image, subs.get(image))) for image in dict.fromkeys(docker_images(needs))]
    swapped = [f"{local} for {image}" for image, local in used if local is not None and local != image]
    return f"images built here: {', '.join(swapped)} (no registry gives the official ones)" if swapped else ""

