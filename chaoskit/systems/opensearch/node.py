"""How an OpenSearch node runs on each backend: its settings, its node spec, its Compose service, and the
build context of ``chaoskit/opensearch``. No driver.

Local backend: the JVM command line of :mod:`~chaoskit.systems.opensearch.dist` with a per-node
``opensearch.yml``, as ``nobody``. Docker backend and Compose lab: the image's own entrypoint, which
(like the official ``opensearchproject/opensearch`` image's) turns environment variables named like
settings (``cluster.name=chaoskit``) into ``-E`` options and runs ``bin/opensearch`` as the image's non-root
user. The node's command sets those variables (``env``) after ``cd`` into the OpenSearch home: the official
image names its entrypoint by a relative path, so the docker backend runs this command in its place
(``replace_entrypoint``) and the work directory stays the run's.

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
from pathlib import Path

from chaoskit.backends.base import NodeSpec
from chaoskit.server_logs import LogSpec
from chaoskit.systems.opensearch import dist
from chaoskit.systems.opensearch.settings import PORT

IMAGE = ("CHAOSKIT_OPENSEARCH_IMAGE", "opensearchproject/opensearch:2")
LOCAL_TAG = f"chaoskit/opensearch:{dist.VERSION}"
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

Setting = str | list[str]
# what a stale primary and its demotion say (OpenSearch PR 21456: the demoted primary's replica request ends in
# PrimaryShardClosedException and the write completes with 1 of 2 copies), and a node's leaving and rejoining
LOG_EVIDENCE = LogSpec(patterns=(
    "PrimaryShardClosedException", "primary closed", "too old", "no longer primary", "primary term",
    "RetryOnPrimaryException", "shard failed", "failed to perform", "stale", "marking and sending shard failed"))


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


def container_argv(values: dict[str, Setting], heap_mb: int) -> tuple[str, ...]:
    """The image's entrypoint run from its home with the settings as environment variables (one shell line
    without ``$`` of its own: Compose would interpolate it)."""
    env = [*(f"{k}={v}" for k, v in (*IMAGE_ENV, *dist.ENV)), f"OPENSEARCH_JAVA_OPTS=-Xms{heap_mb}m -Xmx{heap_mb}m"]
    env += [f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in values.items()]
    return ("sh", "-c", f"cd {IMAGE_HOME} && exec env {shlex.join(env)} ./opensearch-docker-entrypoint.sh opensearch")


def docker_spec(name: str, directory: Path, values: dict[str, Setting], heap_mb: int) -> NodeSpec:
    """A container of ``$CHAOSKIT_OPENSEARCH_IMAGE``; its data in the node's directory (mounted)."""
    directory.mkdir(parents=True, exist_ok=True)
    return NodeSpec(name, container_argv(values, heap_mb), directory, PORT, extra_ports=(TRANSPORT_PORT,),
                    image=os.environ.get(*IMAGE), replace_entrypoint=True)


def local_spec(name: str, directory: Path, values: dict[str, Setting], home: Path, heap_mb: int,
               options: list[str]) -> NodeSpec:
    """A JVM as ``nobody`` with this node's ``conf``. ``options``: the JVM options OpenSearch's launcher
    computes, filled by the first node's call and reused by the others'."""
    conf = dist.write_conf(home, directory, node_yml(name, values))
    if not options:
        options.extend(dist.jvm_options(home, conf, heap_mb))
    (conf / "log4j2.properties").write_text(LOG4J2)
    for sub in ("data", "logs", "tmp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    gid = _gid()
    for path in (directory, *directory.rglob("*")):
        shutil.chown(path, dist.USER, gid)
    argv = dist.jvm_argv(dist=home, conf=conf, options=options, tmpdir=directory / "tmp")
    return NodeSpec(name, argv, directory, PORT, user=dist.USER, env=dist.ENV, extra_ports=(TRANSPORT_PORT,))


def _gid() -> int:
    import pwd

    return pwd.getpwnam(dist.USER).pw_gid


def stage_image(context: Path, say: Callable[[str], None]) -> None:
    """The ``chaoskit/opensearch`` build context also needs the distribution (fetched first if need be:
    the copy the local backend runs, file-descriptor check lowered)."""
    home = dist.ensure_dist(say)
    say(f"copying OpenSearch {dist.VERSION} into the build context")
    shutil.copytree(home, context / "opensearch", symlinks=True)
