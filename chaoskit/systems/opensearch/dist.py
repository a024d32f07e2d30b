"""OpenSearch for the local backend (and the ``chaoskit/opensearch:<version>`` images): the distribution of
a version (fetched once from Maven Central), each node's configuration directory, the Java it runs on, and
the JVM command line. No driver.

The distribution is ``org.opensearch.distribution.integ-test-zip:opensearch:<version>`` (the server and its
transport module, no security plugin, no bundled JDK: 56 MB for 2.19.6, ~155 MB for 3.6.0 and 3.8.0),
unpacked into ``~/.cache/chaoskit/opensearch-<version>`` (``$XDG_CACHE_HOME`` respected). For the default
version, :data:`VERSION`, ``$CHAOSKIT_OPENSEARCH_HOME`` names that directory instead (its meaning from
before versions could be chosen); other versions always use the cache. The fetch holds a lock per version
(``opensearch-<version>.lock`` next to it), so concurrent runs fetch it once; it is built in a temporary
directory and renamed into place only when complete, so an interrupted fetch leaves nothing half-done.

Java (:func:`java_for`, :mod:`chaoskit.jdk`): 2.x runs on 11-21 (17 preferred), 3.x on 21 or newer.

OpenSearch refuses to run as root: nodes run as ``nobody``. The cache may sit where ``nobody`` cannot
read (``/root`` is 0700), so each run gets its own hard-linked copy of the tree (:func:`run_home`, copied
when links are impossible) inside its work directory, removed with it.

One change to the distribution (:func:`patch_fd_check`): a node bound to a non-loopback address enforces
its production bootstrap checks, and one of them wants at least 65535 open files. Where the hard limit is
lower and cannot be raised (a sandbox without ``CAP_SYS_RESOURCE``: 20000 here), no node would start;
chaoskit's copy lowers that check's threshold to :data:`FD_CHECK_LIMIT`. Every other check still applies;
``node.store.allow_mmap: false`` (Lucene reads through NIO) is what lets the ``vm.max_map_count`` check
pass without changing the host's sysctl. The 3.x jars (3.6.0, 3.8.0) have the same class and constant.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chaoskit.errors import InfrastructureError, MissingDependencyError
from chaoskit.jdk import JavaRule, Jdk, choose

VERSION = "2.19.6"  # the default version
VERSION_PATTERN = r"^[23]\.\d+\.\d+$"  # the majors chaoskit knows how to run: 2.x and 3.x
SIZE_MB = {"2.19.6": 56, "3.6.0": 155, "3.8.0": 154}  # the zips' sizes, for the fetch's progress line
JAVA_OVERRIDE = "OPENSEARCH_JAVA_HOME"
MAIN = "org.opensearch.bootstrap.OpenSearch"
INSTALL_HINT = "apt-get install -y openjdk-17-jre-headless maven (OpenSearch's zip is then fetched by chaoskit)"
AGENT = "-javaagent:agent/"  # 3.x's jvm.options names its agent relative to the home (bin/opensearch runs there)
COMPLETE = ".complete"
USER = "nobody"  # OpenSearch refuses to run as root
FD_CHECK_LIMIT = 16384  # the file-descriptor bootstrap check's threshold in chaoskit's copy (65535 upstream)
_FD_CHECK = "org/opensearch/bootstrap/BootstrapChecks$FileDescriptorCheck.class"
_INT_65535 = b"\x03\x00\x00\xff\xff"  # CONSTANT_Integer 65535 in a class file's constant pool
ENV = (("MALLOC_ARENA_MAX", "2"),)


def artifact(version: str = VERSION) -> str:
    return f"org.opensearch.distribution.integ-test-zip:opensearch:{version}:zip"


def home(version: str = VERSION) -> Path:
    """Where a version's distribution lives: the user cache directory (``$CHAOSKIT_OPENSEARCH_HOME`` for the
    default version when set)."""
    if version == VERSION and (env := os.environ.get("CHAOSKIT_OPENSEARCH_HOME")):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "chaoskit" / f"opensearch-{version}"


def fetched(version: str = VERSION) -> bool:
    return (home(version) / COMPLETE).exists()


def java_rule(version: str) -> JavaRule:
    """The Java majors a version runs on: 3.x needs 21 or newer; 2.x runs on 11-21 (17 as before)."""
    return JavaRule(21, prefer=21) if int(version.split(".")[0]) >= 3 else JavaRule(11, 21, prefer=17)


def java_for(version: str) -> Jdk:
    """The JDK a version's nodes run on (:func:`chaoskit.jdk.choose`; ``$OPENSEARCH_JAVA_HOME`` is the user's
    choice when set); MissingDependencyError in one line when none fits."""
    return choose(f"OpenSearch {version}", java_rule(version), JAVA_OVERRIDE)


def check_tools(need_maven: bool) -> None:
    """MissingDependencyError (exit 3) naming what to install when ``java`` (or ``mvn``) is missing."""
    for tool in ("java", "mvn") if need_maven else ("java",):
        if shutil.which(tool) is None:
            raise MissingDependencyError(f"`{tool}` not found: {INSTALL_HINT}")


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_dist(progress: Callable[[str], None],
                run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run, version: str = VERSION) -> Path:
    """A version's unpacked distribution, fetched first if needed: once, under a lock, renamed into place whole."""
    if fetched(version):
        return home(version)
    check_tools(need_maven=True)
    target = home(version)
    with _locked(target):
        if fetched(version):  # another process fetched it while this one waited for the lock
            return target
        size = f"{SIZE_MB[version]} MB" if version in SIZE_MB else "~50-160 MB"
        progress(f"fetching OpenSearch {version} from Maven Central ({size}, once) into {target}")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            _fetch(version, tmp, run)
            if target.exists():  # a stale partial copy (no .complete) is in the way
                shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
            progress(f"fetched OpenSearch {version}")
            return target
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _fetch(version: str, tmp: Path, run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Maven's copy of the zip into ``tmp``, unpacked there and patched; the zip removed."""
    res = run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact(version)}", f"-DoutputDirectory={tmp}"],
              capture_output=True, text=True, timeout=900, cwd=tmp)
    archive = tmp / f"opensearch-{version}.zip"
    if res.returncode != 0 or not archive.exists():
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-15:])
        raise InfrastructureError(f"fetching OpenSearch {version} with Maven failed (exit {res.returncode})", tail)
    unpack(archive, tmp, version)
    archive.unlink()
    patch_fd_check(tmp / "lib" / f"opensearch-{version}.jar")
    (tmp / COMPLETE).write_text(f"{artifact(version)}; file-descriptor check lowered to {FD_CHECK_LIMIT}\n")


def unpack(archive: Path, into: Path, version: str = VERSION) -> None:
    """Unzip the distribution's top directory (``opensearch-<version>/``) into ``into``, keeping modes."""
    top = f"opensearch-{version}/"
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(top) or info.filename == top:
                continue
            dest = into / info.filename[len(top):]
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out)
            mode = (info.external_attr >> 16) & 0o777
            dest.chmod(mode or 0o644)
    if not (into / "lib" / f"opensearch-{version}.jar").exists():
        raise InfrastructureError(f"the OpenSearch {version} zip has no lib/opensearch-{version}.jar")


def patch_fd_check(jar: Path, limit: int = FD_CHECK_LIMIT) -> None:
    """Rewrite ``jar`` with the file-descriptor bootstrap check's threshold (the class's one integer
    constant 65535) set to ``limit``; every other entry is copied unchanged."""
    with zipfile.ZipFile(jar) as zf:
        data = zf.read(_FD_CHECK)
    if data.count(_INT_65535) != 1:
        raise InfrastructureError(f"unexpected {_FD_CHECK} in {jar.name}: cannot lower its threshold")
    patched = data.replace(_INT_65535, b"\x03" + limit.to_bytes(4, "big"))
    out = jar.with_suffix(".patched")
    with zipfile.ZipFile(jar) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, patched if info.filename == _FD_CHECK else src.read(info), info.compress_type)
    out.chmod(0o644)
    out.replace(jar)


def run_home(dist: Path, workdir: Path, version: str = VERSION) -> Path:
    """A copy of the distribution that ``nobody`` can read, inside the run's work directory: hard links
    (instant, no space) where the file system allows, else a copy."""
    target = workdir / f"opensearch-{version}"
    if (target / COMPLETE).exists():
        return target
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    tmp = Path(tempfile.mkdtemp(prefix=".opensearch-home.", dir=workdir))
    try:
        shutil.copytree(dist, tmp, dirs_exist_ok=True, copy_function=_link_or_copy)
        for d in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            d.chmod(0o755)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def jvm_options(java: str, dist: Path, conf: Path, heap_mb: int) -> list[str]:
    """The JVM options OpenSearch's own launcher computes for this ``java`` (``JvmOptionsParser`` on
    ``conf/jvm.options``, with the heap from ``OPENSEARCH_JAVA_OPTS``), with ``@TMPDIR@`` where each node's
    temp dir goes and 3.x's agent named by its absolute path."""
    env = {**os.environ, "OPENSEARCH_JAVA_OPTS": f"-Xms{heap_mb}m -Xmx{heap_mb}m", "OPENSEARCH_TMPDIR": "@TMPDIR@"}
    res = subprocess.run([java, "-cp", f"{dist}/lib/*", "org.opensearch.tools.launchers.JvmOptionsParser",
                          str(conf)], capture_output=True, text=True, env=env, timeout=120,
                         cwd=dist)  # as bin/opensearch: 3.x's ergonomics start a JVM with the agent's relative path
    if res.returncode != 0:
        raise InfrastructureError("OpenSearch's JvmOptionsParser failed", (res.stdout + res.stderr)[-2000:])
    return [o.replace(AGENT, f"-javaagent:{dist}/agent/", 1) for o in res.stdout.split()]


def write_conf(dist: Path, directory: Path, yml: str) -> Path:
    """``<directory>/conf``: the distribution's config with the fixed 1 GB heap and the relative gc.log
    lines taken out of ``jvm.options`` (the heap comes from OPENSEARCH_JAVA_OPTS), and this ``opensearch.yml``."""
    conf = directory / "conf"
    shutil.copytree(dist / "config", conf, dirs_exist_ok=True)
    lines = (conf / "jvm.options").read_text().splitlines()
    keep = [line for line in lines if not line.strip().startswith(("-Xms", "-Xmx")) and "gc.log" not in line]
    (conf / "jvm.options").write_text("\n".join(keep) + "\n")
    (conf / "opensearch.yml").write_text(yml)
    return conf


def jvm_argv(*, java: str, dist: Path, conf: Path, options: list[str], tmpdir: Path) -> tuple[str, ...]:
    """What ``bin/opensearch`` would exec, without its four helper JVMs: the options, the paths, the class."""
    opts = [o.replace("@TMPDIR@", str(tmpdir)) for o in options]
    return (java, "-Xshare:auto", *opts, f"-Dopensearch.path.home={dist}", f"-Dopensearch.path.conf={conf}",
            "-Dopensearch.distribution.type=zip", "-Dopensearch.bundled_jdk=false",
            "-cp", f"{dist}/lib/*", MAIN)
