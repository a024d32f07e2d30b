"""How an OpenSearch node runs on each backend: its settings, its node spec, its Compose service, and the
build context of ``chaoskit/opensearch``. No driver.

Local backend: the JVM command line of :mod:`~chaoskit.systems.opensearch.dist` with a per-node
``opensearch.yml``, as ``nobody``. Docker backend and Compose lab: the image's own entrypoint, which
(like the official ``opensearchproject/opensearch`` image's) turns environment variables named like
settings (``cluster.name=chaoskit``) into ``-E`` options and runs ``bin/opensearch`` as the image's non-root
user. The node's command sets those variables (``env``) after ``cd`` into the OpenSearch home: the official
image names its entrypoint by a relative path, so the docker backend runs this command in its place
(``replace_entrypoint``) and the work directory stays the run's.

Images per version (:func:`image_for`): ``opensearchproject/opensearch:<version>`` (``:2`` for the default
version, as before), stood in for by ``chaoskit/opensearch:<version>`` built here. ``$CHAOSKIT_OPENSEARCH_IMAGE``
is the user's own image for every version -- except when it names a chaoskit stand-in of another version
(what ``chaoskit images --env`` exports: ``chaoskit/opensearch:2.19.6``), which stands for the stand-in family:
a run of 3.8.0 then runs ``chaoskit/opensearch:3.8.0``.

``DISABLE_SECURITY_PLUGIN=true`` is the official image's switch for ``plugins.security.disabled: true``
(plain HTTP, no demo certificates, no admin password); chaoskit/opensearch has no security plugin and
ignores it. The official image also needs at least 65535 open files (its bootstrap checks); the local
image has the check lowered to 16384 (docker containers get the daemon's limit: 20000 in this sandbox).
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

from chaoskit.backends.base import NodeSpec
from chaoskit.jdk import runtime
from chaoskit.server_logs import LogSpec
from chaoskit.systems.base import LocalImage
from chaoskit.systems.opensearch import dist
from chaoskit.systems.opensearch.settings import PORT

IMAGE = ("CHAOSKIT_OPENSEARCH_IMAGE", "opensearchproject/opensearch:2")
LOCAL_REPO = "chaoskit/opensearch"
LOCAL_TAG = f"{LOCAL_REPO}:{dist.VERSION}"
IMAGE_HOME = "/usr/share/opensearch"  # the official image's (and chaoskit/opensearch's) OpenSearch home
IMAGE_ENV = (("DISABLE_SECURITY_PLUGIN", "true"), ("DISABLE_INSTALL_DEMO_CONFIG", "true"),
             ("DISABLE_PERFORMANCE_ANALYZER_AGENT_CLI", "true"))
TRANSPORT_PORT = 9300
LOG4J2 = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{yyyy-MM-dd'T'HH:mm:ss,SSSXXX}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
"""
# ``log_replica_failures``: the bulk action's logger (the one ReplicationOperation writes with) at trace, its
# trace lines through a second console appender that lets only the replica-failure line pass (matched on the
# raw message, so the others are never formatted), its other lines to the console as before (info and up)
REPLICA_FAILURES = "failure while performing"
LOG4J2_REPLICA_FAILURES = (
    "appender.replica_failures.type = Console", "appender.replica_failures.name = replica_failures",
    "appender.replica_failures.layout.type = PatternLayout",
    "appender.replica_failures.layout.pattern = [%d{yyyy-MM-dd'T'HH:mm:ss,SSSXXX}][%-5p][%-25c{1.}] [%node_name] %m%n",
    "appender.replica_failures.filter.failure.type = RegexFilter",
    f"appender.replica_failures.filter.failure.regex = .*{REPLICA_FAILURES}.*",
    "appender.replica_failures.filter.failure.useRawMsg = true",
    "appender.replica_failures.filter.failure.onMatch = ACCEPT",
    "appender.replica_failures.filter.failure.onMismatch = DENY",
    "logger.replica_failures.name = org.opensearch.action.bulk.TransportShardBulkAction",
    "logger.replica_failures.level = trace", "logger.replica_failures.additivity = false",
    "logger.replica_failures.appenderRef.console.ref = console",
    "logger.replica_failures.appenderRef.console.level = info",
    "logger.replica_failures.appenderRef.replica_failures.ref = replica_failures")

Setting = str | list[str]
# what a stale primary and its demotion say (OpenSearch PR 21456: the demoted primary's replica request ends in
# PrimaryShardClosedException and the write completes with 1 of 2 copies), and a node's leaving and rejoining
LOG_EVIDENCE = LogSpec(patterns=(
    "PrimaryShardClosedException", "primary closed", "too old", "no longer primary", "primary term",
    "RetryOnPrimaryException", "shard failed", "failed to perform", "stale", "marking and sending shard failed",
    REPLICA_FAILURES),  # a replica's failure: ReplicationOperation's trace line (``log_replica_failures``)
    verbose=(r"^\[[^\]]*\]\[(TRACE|DEBUG)",))


def settings(*, name: str, address: str, names: list[str], seeds: list[str], data: str,
             extra: dict[str, str]) -> dict[str, Setting]:
    """One lab node: every node is cluster-manager eligible and holds data; the three bootstrap the cluster."""
    return {"cluster.name": "chaoskit", "node.name": name, "network.host": address, "http.port": str(PORT),
            "transport.port": str(TRANSPORT_PORT), "path.data": data,
            "discovery.seed_hosts": [f"{s}:{TRANSPORT_PORT}" for s in seeds],
            "cluster.initial_cluster_manager_nodes": list(names),
            "node.store.allow_mmap": "false",  # Lucene through NIO: no vm.max_map_count needed
            "action.auto_create_index": "false", **extra}


def node_yml(name: str, values: dict[str, Setting]) -> str:
    lines = [f"# chaoskit lab node {name}"]
    lines += [f"{k}: [{', '.join(v)}]" if isinstance(v, list) else f"{k}: {v}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def container_argv(values: dict[str, Setting], heap_mb: int, log4j: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The image's entrypoint run from its home with the settings as environment variables (one shell line
    without ``$`` of its own: Compose would interpolate it); ``log4j``: lines added to the image's
    ``config/log4j2.properties`` first (the same again on a restart: the same keys, no change)."""
    env = [*(f"{k}={v}" for k, v in (*IMAGE_ENV, *dist.ENV)), f"OPENSEARCH_JAVA_OPTS=-Xms{heap_mb}m -Xmx{heap_mb}m"]
    env += [f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in values.items()]
    add = f"printf '%s\\n' {shlex.join(log4j)} >> config/log4j2.properties && " if log4j else ""
    run = f"exec env {shlex.join(env)} ./opensearch-docker-entrypoint.sh opensearch"
    return ("sh", "-c", f"cd {IMAGE_HOME} && {add}{run}")


def official(version: str) -> str:
    return IMAGE[1] if version == dist.VERSION else f"opensearchproject/opensearch:{version}"


def local_image(version: str) -> LocalImage:
    """``chaoskit/opensearch:<version>``, built from that version's cached distribution."""
    return LocalImage(f"{LOCAL_REPO}:{version}", "opensearch", partial(stage_image, version=version))


def image_for(version: str) -> tuple[str, LocalImage | None]:
    """The image a docker run of ``version`` asks for, and the local stand-in run where it cannot be had
    (None: the user's own image, used as named)."""
    own = os.environ.get(IMAGE[0])
    if own and not (own.startswith(f"{LOCAL_REPO}:") and own != local_image(version).tag):
        return own, None
    return official(version), local_image(version)


def docker_spec(name: str, directory: Path, values: dict[str, Setting], heap_mb: int, image: str,
                log4j: tuple[str, ...] = ()) -> NodeSpec:
    """A container of ``image`` (:func:`image_for`); its data in the node's directory (mounted)."""
    directory.mkdir(parents=True, exist_ok=True)
    return NodeSpec(name, container_argv(values, heap_mb, log4j), directory, PORT, extra_ports=(TRANSPORT_PORT,),
                    image=image, replace_entrypoint=True)


def local_spec(name: str, directory: Path, values: dict[str, Setting], home: Path, heap_mb: int,
               options: list[str], java: str, log4j: tuple[str, ...] = ()) -> NodeSpec:
    """A JVM (``java``) as ``nobody`` with this node's ``conf``. ``options``: the JVM options OpenSearch's
    launcher computes, filled by the first node's call and reused by the others'."""
    conf = dist.write_conf(home, directory, node_yml(name, values))
    if not options:
        options.extend(dist.jvm_options(java, home, conf, heap_mb))
    (conf / "log4j2.properties").write_text(LOG4J2 + "".join(f"{line}\n" for line in log4j))
    for sub in ("data", "logs", "tmp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    gid = _gid()
    for path in (directory, *directory.rglob("*")):
        shutil.chown(path, dist.USER, gid)
    argv = dist.jvm_argv(java=java, dist=home, conf=conf, options=options, tmpdir=directory / "tmp")
    return NodeSpec(name, argv, directory, PORT, user=dist.USER, env=dist.ENV, extra_ports=(TRANSPORT_PORT,))


def _gid() -> int:
    import pwd

    return pwd.getpwnam(dist.USER).pw_gid


def stage_image(context: Path, say: Callable[[str], None], version: str = dist.VERSION) -> None:
    """The ``chaoskit/opensearch:<version>`` build context also needs the distribution (fetched first if need
    be: the copy the local backend runs, file-descriptor check lowered) and, for 3.x, a Java runtime of 21 or
    newer as ``java`` (this host's JDK that :func:`dist.java_for` picks; Debian bookworm has only 17)."""
    home = dist.ensure_dist(say, version=version)
    say(f"copying OpenSearch {version} into the build context")
    shutil.copytree(home, context / "opensearch", symlinks=True)
    (context / "java").mkdir()
    if dist.java_rule(version).allows(17):
        return  # Debian's JRE 17 (the Dockerfile installs it when ``java`` is empty)
    jdk = dist.java_for(version)
    (context / "java").rmdir()
    how = runtime(jdk, context / "java")
    say(f"{'jlink-ed' if how == 'jlink' else 'copied'} a runtime of {jdk.describe()} into the build context")
