"""The OpenSearch system (no driver): validation, images, binaries, the Compose lab; the topology on demand."""

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
from chaoskit.systems.opensearch import dist
from chaoskit.systems.opensearch import node as nodes
from chaoskit.systems.opensearch.faults import CloseIndex, DiskWatermark, ExcludeNode
from chaoskit.systems.opensearch.settings import (
    ONE_PRIMARY_ONLY,
    OPTIONS,
    PATTERNS,
    ROLES,
    OpenSearchSettings,
    node_settings,
)

if TYPE_CHECKING:
    from chaoskit.systems.opensearch.topology import OpenSearchTopology


class OpenSearchSystem(ImageOf):
    name, image = "opensearch", nodes.IMAGE
    drivers = (Driver("opensearchpy", "opensearch-py"),)
    run_weight = 2.0  # three JVMs of ~430 MB that are green in ~9-20 s
    local_image: LocalImage | None = LocalImage(nodes.LOCAL_TAG, "opensearch", nodes.stage_image)
    client_patterns, roles, settings_model = PATTERNS, ROLES, OpenSearchSettings
    native_faults = (kind_of(ExcludeNode), kind_of(CloseIndex), kind_of(DiskWatermark))

    def validate(self, exp: Experiment) -> None:
        """Raise ValueError (one line, naming the field) if the experiment does not fit the cluster."""
        validate_experiment(exp, OpenSearchSettings, PATTERNS, self.native_faults, ROLES,
                            lambda s: {f"opensearch-{i + 1}" for i in range(s.nodes)}, client_options=OPTIONS)
        options = exp.client.options
        for key, allowed in (("wait_for_active_shards", ("1", "all")), ("refresh", ("false", "wait_for")),
                             ("read", ("get", "search"))):
            if key in options and str(options[key]).lower() not in allowed:
                raise ValueError(f"client.options.{key}: {options[key]!r} (known: {', '.join(allowed)})")
        nodes = OpenSearchSettings.model_validate(exp.topology).nodes
        if "host" in options and options["host"] not in {f"opensearch-{i + 1}" for i in range(nodes)}:
            raise ValueError(f"client.options.host: unknown node {options['host']!r}")
        for i, expectation in enumerate(exp.expect):
            if expectation.metric in ONE_PRIMARY_ONLY:
                raise ValueError(f"expect.{i}.metric: {expectation.metric} does not apply to OpenSearch "
                                 "(a primary per shard, spread over the nodes)")

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> OpenSearchTopology:
        """The topology (not started); imports opensearch-py. UsageError with Docker Desktop's published ports."""
        if getattr(backend, "addressing", "direct") == "published":
            raise UsageError("opensearch on Docker Desktop (published ports) is not supported yet: chaoskit reaches "
                             "each node at its own address; use a Linux Docker host or --backend local")
        from chaoskit.systems.opensearch.topology import OpenSearchTopology

        return OpenSearchTopology(exp, backend, workdir)

    def image_for(self, topology: Mapping[str, Any]) -> tuple[str, LocalImage | None]:
        """The image of the topology's version and its stand-in (:func:`chaoskit.systems.opensearch.node.image_for`)."""
        return nodes.image_for(OpenSearchSettings.model_validate(dict(topology)).version)

    def binaries(self) -> dict[str, str]:
        """``java`` and ``runuser`` (nodes run as nobody), and ``mvn`` until the zip is fetched."""
        need = ["java", "runuser"] + ([] if dist.fetched() else ["mvn"])
        return {b: dist.INSTALL_HINT if b != "runuser" else "apt-get install -y util-linux" for b in need}

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """Three nodes started together, each configured by its environment (the official image's way);
        data in the container. No index: create your own."""
        s = OpenSearchSettings()
        names = [f"opensearch-{i + 1}" for i in range(s.nodes)]
        addresses = [f"{net}.{10 + i}" for i in range(s.nodes)]
        return [ComposeNode(name, address, nodes.container_argv(
                    nodes.settings(name=name, address=address, names=names, seeds=addresses,
                                  data=f"{nodes.IMAGE_HOME}/data", extra=node_settings(s)), s.heap_mb))
                for name, address in zip(names, addresses, strict=True)]


SYSTEM: System = OpenSearchSystem()  # typed: mypy checks it against the System protocol
