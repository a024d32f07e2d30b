"""The Memcached system (no driver): validation, images, binaries, the Compose lab; the topology on demand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chaoskit.backends.base import Backend
from chaoskit.drivers import Driver
from chaoskit.experiment import Experiment
from chaoskit.systems.base import ComposeNode, ImageOf, LocalImage, System, validate_experiment
from chaoskit.systems.memcached.settings import (
    CLIENT_OPTIONS,
    LEADER_ONLY,
    PATTERNS,
    ROLES,
    SYSTEM_IMAGE,
    MemcachedSettings,
    memcached_argv,
)

if TYPE_CHECKING:
    from chaoskit.systems.memcached.topology import MemcachedTopology


class MemcachedSystem(ImageOf):
    name, image = "memcached", SYSTEM_IMAGE
    drivers = (Driver("pymemcache", "pymemcache"),)
    run_weight = 0.5  # three small C processes
    local_image = LocalImage("chaoskit/memcached:1.6", "memcached")  # Debian's memcached 1.6
    client_patterns, roles, settings_model = PATTERNS, ROLES, MemcachedSettings
    native_faults: tuple[str, ...] = ()

    def validate(self, exp: Experiment) -> None:
        """Raise ValueError (one line, naming the field) if the experiment does not fit a cache."""
        validate_experiment(exp, MemcachedSettings, PATTERNS, self.native_faults, ROLES,
                            lambda s: {f"memcached-{i + 1}" for i in range(s.nodes)}, client_options=CLIENT_OPTIONS)
        for i, expectation in enumerate(exp.expect):
            if expectation.metric in LEADER_ONLY:
                raise ValueError(f"expect.{i}.metric: {expectation.metric} does not apply to a cache")

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> MemcachedTopology:
        """The topology (not started); imports pymemcache."""
        from chaoskit.systems.memcached.topology import MemcachedTopology

        return MemcachedTopology(exp, backend, workdir)

    def binaries(self) -> dict[str, str]:
        """memcached, from apt."""
        return {"memcached": "apt-get install -y memcached"}

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """The default topology as Compose services (independent nodes)."""
        settings = MemcachedSettings()
        return [ComposeNode(f"memcached-{i + 1}", f"{net}.{10 + i}", memcached_argv(settings.memory_mb))
                for i in range(settings.nodes)]


SYSTEM: System = MemcachedSystem()  # typed: mypy checks it against the System protocol
