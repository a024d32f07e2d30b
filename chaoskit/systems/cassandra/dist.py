"""Cassandra for the local backend: a version's jars (fetched once from Maven Central), the Java it runs
on, the JVM command line, and the two files the jar does not ship (``cassandra.yaml``, ``logback.xml``).

The jars are ``org.apache.cassandra:cassandra-all:<version>`` and its runtime dependencies, copied by Maven
into ``~/.cache/chaoskit/cassandra-<version>`` (``$CHAOSKIT_CASSANDRA_HOME`` instead for the default version,
5.0.9: its meaning from before versions could be chosen). The fetch holds a lock per version, builds a
temporary directory next to it and renames it into place only once Maven succeeded, so an interrupted fetch
leaves nothing half-done behind. Java (:func:`java_for`): 5.0 runs on 11 or 17 (17 preferred), 4.x on 8 or 11.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from chaoskit.errors import InfrastructureError, MissingDependencyError
from chaoskit.jdk import JavaRule, Jdk, choose
from chaoskit.systems.cassandra.settings import VERSION

MAIN = "org.apache.cassandra.service.CassandraDaemon"
NODETOOL = "org.apache.cassandra.tools.NodeTool"
INSTALL_HINT = "apt-get install -y openjdk-17-jre-headless maven (Cassandra's jars are then fetched by chaoskit)"
COMPLETE = ".complete"

# conf/jvm17-server.options of Cassandra 5.0 (the JPMS part): every export and open it asks for.
JVM17_OPTIONS = (
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
)
# small and fast: a lab node, not a production one (~0.5 GB RSS, CQL-ready in ~10 s)
SMALL_JVM = ("-Xms128M", "-Xmx512M", "-XX:MaxDirectMemorySize=128M", "-XX:ReservedCodeCacheSize=64m",
             "-XX:TieredStopAtLevel=1", "-XX:+UseG1GC", "-Xss256k", "-XX:+ExitOnOutOfMemoryError")
ENV = (("MALLOC_ARENA_MAX", "2"),)

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>chaoskit</groupId><artifactId>cassandra-fetch</artifactId><version>1</version>
  <dependencies><dependency>
    <groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId><version>{version}</version>
  </dependency></dependencies>
</project>
"""

LOGBACK = """<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def home(version: str = VERSION) -> Path:
    """Where a version's jars live: the user cache directory (``$CHAOSKIT_CASSANDRA_HOME`` for the default
    version when set)."""
    if version == VERSION and (env := os.environ.get("CHAOSKIT_CASSANDRA_HOME")):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "chaoskit" / f"cassandra-{version}"


def lib_dir(version: str = VERSION) -> Path:
    return home(version) / "lib"


def fetched(version: str = VERSION) -> bool:
    return (home(version) / COMPLETE).exists()


def java_rule(version: str) -> JavaRule:
    """5.0 runs on Java 11 or 17 (17 as before); 4.x on 8 or 11."""
    return JavaRule(11, 17, only=(11, 17), prefer=17) if version.startswith("5.") else JavaRule(8, 11, only=(8, 11),
                                                                                                 prefer=11)


def java_for(version: str) -> Jdk:
    """The JDK a version's nodes run on (:func:`chaoskit.jdk.choose`); MissingDependencyError in one line."""
    return choose(f"Cassandra {version}", java_rule(version))


def check_tools(need_maven: bool) -> None:
    """MissingDependencyError (exit 3) naming what to install when ``java`` (or ``mvn``) is missing."""
    for tool in ("java", "mvn") if need_maven else ("java",):
        if shutil.which(tool) is None:
            raise MissingDependencyError(f"`{tool}` not found: {INSTALL_HINT}")


def ensure_jars(progress: Callable[[str], None], run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
                version: str = VERSION) -> Path:
    """A version's jar directory, fetched first if needed (Maven into a temporary directory, then one rename;
    under a lock per version, so concurrent runs fetch it once)."""
    if fetched(version):
        return lib_dir(version)
    check_tools(need_maven=True)
    target = home(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if fetched(version):  # another process fetched them while this one waited for the lock
            return lib_dir(version)
        progress(f"fetching Cassandra {version} jars from Maven Central (67 MB, ~60 s, once) into {target}")
        return _fetch(version, target, run, progress)


def _fetch(version: str, target: Path, run: Callable[..., subprocess.CompletedProcess[str]],
           progress: Callable[[str], None]) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / "pom.xml").write_text(POM.format(version=version))
        res = run(["mvn", "-q", "-B", "-f", str(tmp / "pom.xml"), "dependency:copy-dependencies",
                   "-DincludeScope=runtime", f"-DoutputDirectory={tmp / 'lib'}"],
                  capture_output=True, text=True, timeout=900)
        jars = list((tmp / "lib").glob("*.jar"))
        if res.returncode != 0 or not any(j.name == f"cassandra-all-{version}.jar" for j in jars):
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-15:])
            raise InfrastructureError(f"fetching Cassandra {version} with Maven failed (exit {res.returncode})", tail)
        (tmp / "pom.xml").unlink()
        (tmp / COMPLETE).write_text(f"{len(jars)} jars\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first (or a stale partial copy is in the way)
            if not fetched(version):
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
        progress(f"fetched {len(jars)} jars")
        return lib_dir(version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tokens(n: int) -> list[int]:
    """Evenly spaced Murmur3 tokens, one per node (``num_tokens: 1``)."""
    return [-(2**63) + i * (2**64 // n) for i in range(n)]


def config_yaml(*, name: str, address: str, seeds: list[str], token: int, directory: Path, phi: float,
                read_timeout_ms: int, write_timeout_ms: int, hinted_handoff: bool = True,
                dynamic_snitch: bool = True) -> str:
    d = directory
    return f"""# chaoskit lab node {name}: small, fast, one token
cluster_name: chaoskit
num_tokens: 1
initial_token: {token}
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
dynamic_snitch: {str(dynamic_snitch).lower()}
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{','.join(seeds)}"
listen_address: {address}
rpc_address: {address}
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
data_file_directories: [{d / 'data'}]
commitlog_directory: {d / 'commitlog'}
saved_caches_directory: {d / 'saved_caches'}
hints_directory: {d / 'hints'}
cdc_raw_directory: {d / 'cdc_raw'}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
phi_convict_threshold: {phi:g}
read_request_timeout: {read_timeout_ms}ms
range_request_timeout: {2 * read_timeout_ms}ms
write_request_timeout: {write_timeout_ms}ms
counter_write_request_timeout: {write_timeout_ms}ms
request_timeout: {2 * read_timeout_ms}ms
concurrent_reads: 8
concurrent_writes: 8
concurrent_compactors: 1
hinted_handoff_enabled: {str(hinted_handoff).lower()}
key_cache_size: 8MiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
"""


def jvm_argv(*, lib: Path, conf: Path, directory: Path, jmx_port: int, main: str = MAIN,
             java: str = "java") -> tuple[str, ...]:
    """``java`` with the lab-sized JVM, Cassandra's JDK 17 exports/opens and the jamm agent."""
    return (java, *SMALL_JVM, *JVM17_OPTIONS, f"-javaagent:{lib / _jamm(lib)}",
            "-Dcassandra-foreground=yes", "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000", f"-Dcassandra.jmx.local.port={jmx_port}",
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            f"-Dcassandra.logdir={directory / 'logs'}", f"-Dcassandra.storagedir={directory}",
            "-cp", f"{conf}:{lib}/*", main)


def _jamm(lib: Path) -> str:
    """The jamm agent's jar in ``lib`` (0.4.0 for 5.0; 4.1 ships 0.3.2); 0.4.0 by name where ``lib`` is not
    here to look in (an image's)."""
    found = sorted(p.name for p in lib.glob("jamm-*.jar")) if lib.is_dir() else []
    return found[-1] if found else "jamm-0.4.0.jar"


def nodetool_argv(*, lib: Path, directory: Path, jmx_port: int, args: tuple[str, ...],
                  java: str = "java") -> list[str]:
    """``nodetool ARGS`` for a node of this backend: run beside it (its JMX listens on localhost only);
    quiet logging, its history file in the node's directory."""
    return [java, "-Xmx128m", "-XX:TieredStopAtLevel=1", *JVM17_OPTIONS, f"-Duser.home={directory}",
            f"-Dlogback.configurationFile={directory / 'conf' / 'logback.xml'}", "-cp", f"{lib}/*", NODETOOL,
            "-h", "127.0.0.1", "-p", str(jmx_port), *args]


NODETOOL_SCRIPT = """#!/bin/sh
# nodetool for the chaoskit/cassandra image: Cassandra's NodeTool with its JDK 17 options, quiet logging
exec java -Xmx128m -XX:TieredStopAtLevel=1 {options} -Dlogback.configurationFile=/opt/cassandra/logback.xml \\
  -cp '/opt/cassandra/lib/*' {main} "$@"
"""


def stage_image(context: Path, say: Callable[[str], None], version: str = VERSION) -> None:
    """The ``chaoskit/cassandra:<version>`` build context also needs the jars (fetched first if need be) and
    a ``nodetool`` script."""
    lib = ensure_jars(say, version=version)
    say(f"copying {len(list(lib.glob('*.jar')))} Cassandra jars into the build context")
    shutil.copytree(lib, context / "lib")
    script = context / "nodetool"
    script.write_text(NODETOOL_SCRIPT.format(options=" ".join(JVM17_OPTIONS), main=NODETOOL))
    script.chmod(0o755)
    (context / "logback.xml").write_text(LOGBACK)


def write_conf(directory: Path, yaml_text: str) -> Path:
    conf = directory / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "cassandra.yaml").write_text(yaml_text)
    (conf / "logback.xml").write_text(LOGBACK)
    return conf
