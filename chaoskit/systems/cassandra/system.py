"""The Cassandra system (no driver): validation, images, binaries, the Compose lab; the topology on demand."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoskit.backends.base import Backend
from chaoskit.drivers import Driver
from chaoskit.errors import UsageError
from chaoskit.experiment import Experiment
from chaoskit.faults import kind_of
from chaoskit.systems.base import ComposeNode, ImageOf, LocalImage, System, validate_experiment
from chaoskit.systems.cassandra import dist
from chaoskit.systems.cassandra.faults import NODETOOL_FAULTS
from chaoskit.systems.cassandra.image import image_for, local_image
from chaoskit.systems.cassandra.settings import (
    IMAGE_LIB,
    JMX_PORT,
    LEADER_ONLY,
    PATTERNS,
    ROLES,
    SYSTEM_IMAGE,
    CassandraSettings,
    first_replica,
)

if TYPE_CHECKING:
    from chaoskit.systems.cassandra.topology import CassandraTopology


class CassandraSystem(ImageOf):
    name, image = "cassandra", SYSTEM_IMAGE
    drivers = (Driver("cassandra", "cassandra-driver"),)
    run_weight = 2.0  # three JVMs of ~600 MB that start in 12-40 s
    local_image: LocalImage | None = local_image()
    client_patterns, roles, settings_model = PATTERNS, ROLES, CassandraSettings
    native_faults: tuple[str, ...] = tuple(kind_of(f) for f in NODETOOL_FAULTS)

    def validate(self, exp: Experiment) -> None:
        """Raise ValueError (one line, naming the field) if the experiment does not fit the ring."""
        validate_experiment(exp, CassandraSettings, PATTERNS, self.native_faults, ROLES,
                            lambda s: {f"cassandra-{i + 1}" for i in range(s.nodes)})
        settings = CassandraSettings.model_validate(exp.topology)
        if settings.probe_node:
            first = f"cassandra-{first_replica(dist.tokens(settings.nodes)) + 1}"
            if settings.probe_node != first or settings.dynamic_snitch:
                raise ValueError(f"topology.probe_node: only the first replica of partition 0 ({first}) with "
                                 "dynamic_snitch: false reads its own copy at ONE")
        for i, expectation in enumerate(exp.expect):
            if expectation.metric in LEADER_ONLY:
                raise ValueError(f"expect.{i}.metric: {expectation.metric} does not apply to a leaderless system")

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> CassandraTopology:
        """The topology (not started); imports the driver. UsageError with Docker Desktop's published ports."""
        if getattr(backend, "addressing", "direct") == "published":
            raise UsageError("cassandra on Docker Desktop (published ports) is not supported yet: the driver "
                             "connects to the addresses the nodes announce; use a Linux Docker host or --backend local")
        from chaoskit.systems.cassandra.topology import CassandraTopology

        return CassandraTopology(exp, backend, workdir)

    def image_for(self, topology: Mapping[str, Any]) -> tuple[str, LocalImage | None]:
        """The image of the topology's version and its stand-in (:func:`chaoskit.systems.cassandra.image.image_for`)."""
        return image_for(CassandraSettings.model_validate(dict(topology)).version)

    def binaries(self) -> dict[str, str]:
        """``java``, and ``mvn`` until the jars are fetched."""
        need = ("java",) if dist.fetched() else ("java", "mvn")
        return {b: dist.INSTALL_HINT for b in need}

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """Three nodes started together (every one a seed, tokens given, no bootstrap), each with the
        ``cassandra.yaml`` chaoskit writes; data in the container. No keyspace: create your own."""
        s = CassandraSettings()
        addresses = [f"{net}.{10 + i}" for i in range(s.nodes)]
        conf, data = Path("/etc/chaoskit-cassandra"), Path("/var/lib/cassandra")
        nodes = []
        for i, address in enumerate(addresses):
            text = dist.config_yaml(name=f"cassandra-{i + 1}", address=address, seeds=addresses,
                                    token=dist.tokens(s.nodes)[i], directory=data, phi=s.phi_convict_threshold,
                                    read_timeout_ms=s.read_timeout_ms, write_timeout_ms=s.write_timeout_ms)
            argv = dist.jvm_argv(lib=IMAGE_LIB, conf=conf, directory=data, jmx_port=JMX_PORT)
            files = ((str(conf / "cassandra.yaml"), text), (str(conf / "logback.xml"), dist.LOGBACK))
            nodes.append(ComposeNode(f"cassandra-{i + 1}", address, argv, files=files))
        return nodes


SYSTEM: System = CassandraSystem()  # typed: mypy checks it against the System protocol
