"""Which Java runs a JVM server (OpenSearch, Cassandra): the JDKs this machine has, each one's major
version, and the one in a server version's supported range. Pure logic over directories; no server code.

Where JDKs are looked for, in this order: the server's own variable (``$OPENSEARCH_JAVA_HOME``: when set it
is the user's choice and the only candidate), ``$JAVA_HOME``, the ``java`` on PATH, ``/usr/lib/jvm/*``
(Debian, Ubuntu, Fedora) and ``/Library/Java/JavaVirtualMachines/*/Contents/Home`` (macOS). A JDK's major
version comes from its ``release`` file (``JAVA_VERSION="17.0.15"``), else from ``java -version``.

Among the JDKs in range: ``$JAVA_HOME``'s if it is one, else the rule's preferred major, else the lowest
major (the closest to what the server was built against), in the order found.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoskit.errors import MissingDependencyError

ROOTS = (Path("/usr/lib/jvm"), Path("/Library/Java/JavaVirtualMachines"))
INSTALL = "install a JDK {low} (e.g. Temurin, https://adoptium.net, or `apt-get install openjdk-{low}-jre-headless`)"
_VERSION = re.compile(r'(?:JAVA_VERSION="|version ")(1\.)?(\d+)')



def server_version(value: Any, pattern: str, known: str) -> str:
    """A server version setting as text (``--set version=3.6`` reads as a number: checked as text);
    ValueError naming ``known`` (e.g. ``2.x.y or 3.x.y, e.g. 3.6.0``) unless it matches ``pattern``."""
    text = str(value)
    if not re.match(pattern, text):
        raise ValueError(f"{text!r} is not a version chaoskit runs ({known})")
    return text


@dataclass(frozen=True)
class JavaRule:
    """The Java majors a server version runs on: ``low`` to ``high`` (None: no upper bound), or only the
    majors in ``only`` when given; ``prefer`` is picked first when there."""

    low: int
    high: int | None = None
    only: tuple[int, ...] = ()
    prefer: int | None = None

    def allows(self, major: int) -> bool:
        if self.only:
            return major in self.only
        return major >= self.low and (self.high is None or major <= self.high)

    def describe(self) -> str:
        if self.only:
            return " or ".join(str(m) for m in self.only)
        return f"{self.low} or newer" if self.high is None else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class Jdk:
    """A Java installation: its home (``bin/java`` inside), its major version, and where it was found."""

    home: Path
    major: int
    found: str  # "$JAVA_HOME", "PATH", "/usr/lib/jvm", ...

    @property
    def java(self) -> str:
        return str(self.home / "bin" / "java")

    def describe(self) -> str:
        return f"Java {self.major} ({self.home})"


Runner = Callable[..., subprocess.CompletedProcess[str]]


def major_of(home: Path, run: Runner = subprocess.run) -> int | None:
    """The JDK's major version: its ``release`` file, else ``java -version``; None when neither says."""
    release = home / "release"
    text = release.read_text(errors="replace") if release.is_file() else ""
    if not _VERSION.search(text):
        try:
            res = run([str(home / "bin" / "java"), "-version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = res.stdout + res.stderr
    m = _VERSION.search(text)
    return None if m is None else int(m.group(2))


def candidates(env: Mapping[str, str], override: str | None = None, which: Callable[[str], str | None] = shutil.which,
               roots: Sequence[Path] = ROOTS) -> list[tuple[Path, str]]:
    """Every Java home to look at, in order, with where it was found (the override alone when it is set)."""
    if override and env.get(override):
        return [(Path(env[override]), f"${override}")]
    found = [(Path(env["JAVA_HOME"]), "$JAVA_HOME")] if env.get("JAVA_HOME") else []
    if (on_path := which("java")) is not None:
        found.append((Path(os.path.realpath(on_path)).parent.parent, "PATH"))
    for root in roots:
        if root.is_dir():
            for d in sorted(root.iterdir()):
                home = d / "Contents" / "Home" if (d / "Contents" / "Home").is_dir() else d
                found.append((home, str(root)))
    return found


def find(env: Mapping[str, str], override: str | None = None, *, which: Callable[[str], str | None] = shutil.which,
         roots: Sequence[Path] = ROOTS, run: Runner = subprocess.run) -> list[Jdk]:
    """The JDKs found (each home once, by its real path), with their majors."""
    out: list[Jdk] = []
    seen: set[str] = set()
    for home, where in candidates(env, override, which, roots):
        real = os.path.realpath(home)
        if real in seen or not (home / "bin" / "java").is_file():
            continue
        seen.add(real)
        if (major := major_of(home, run)) is not None:
            out.append(Jdk(home, major, where))
    return out


def pick(jdks: Sequence[Jdk], rule: JavaRule) -> Jdk | None:
    """The JDK to use among ``jdks`` (see the module's doc), or None when none is in range."""
    fits = [j for j in jdks if rule.allows(j.major)]
    for first in (lambda j: j.found == "$JAVA_HOME", lambda j: j.major == rule.prefer):
        if chosen := next((j for j in fits if first(j)), None):
            return chosen
    return min(fits, key=lambda j: j.major, default=None)


def choose(server: str, rule: JavaRule, override: str | None = None, env: Mapping[str, str] | None = None, *,
           which: Callable[[str], str | None] = shutil.which, roots: Sequence[Path] = ROOTS,
           run: Runner = subprocess.run) -> Jdk:
    """The JDK ``server`` (e.g. "OpenSearch 3.6.0") runs on; MissingDependencyError in one line naming the
    version, what was found and the ways forward when none fits."""
    env = os.environ if env is None else env
    jdks = find(env, override, which=which, roots=roots, run=run)
    if (chosen := pick(jdks, rule)) is not None:
        return chosen
    seen = ", ".join(j.describe() for j in jdks) or "no JDK"
    ways = INSTALL.format(low=rule.prefer or rule.low)
    ways += f" or set {override or 'JAVA_HOME'} to one"
    raise MissingDependencyError(f"{server} needs Java {rule.describe()}; found {seen}: {ways}")


# what a server needs of a JDK (OpenSearch's jvm.options adds jdk.incubator.vector on 20+); a jlink'ed runtime of
# these is ~134 MB against ~300 MB for Temurin 25's whole JDK
SERVER_MODULES = ("java.se", "jdk.unsupported", "jdk.management", "jdk.management.agent", "jdk.incubator.vector",
                  "jdk.crypto.ec", "jdk.crypto.cryptoki", "jdk.zipfs", "jdk.localedata", "jdk.charsets",
                  "jdk.naming.dns", "jdk.net", "jdk.attach", "jdk.jfr", "jdk.httpserver")
NOT_RUNTIME = ("src.zip", "ct.sym", "jmods", "man", "include", "demo", "sample")


def runtime(jdk: Jdk, into: Path, run: Runner = subprocess.run) -> str:
    """A Java runtime of ``jdk`` at ``into`` (which must not exist), for an image: ``jlink`` of
    :data:`SERVER_MODULES` it has, else (a JDK that cannot link) a copy without sources and headers.
    Returns how it was made ("jlink" or "copy")."""
    jlink = jdk.home / "bin" / "jlink"
    if jlink.is_file():
        listed = run([jdk.java, "--list-modules"], capture_output=True, text=True, timeout=60)
        have = {line.split("@")[0] for line in listed.stdout.splitlines()}
        mods = ",".join(m for m in SERVER_MODULES if m in have)
        res = run([str(jlink), "--add-modules", mods, "--strip-debug", "--no-man-pages", "--no-header-files",
                   "--output", str(into)], capture_output=True, text=True, timeout=600)
        if res.returncode == 0:
            return "jlink"
        shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(jdk.home, into, symlinks=False, ignore=shutil.ignore_patterns(*NOT_RUNTIME))
    return "copy"
