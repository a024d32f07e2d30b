"""Which image a docker ring of a Cassandra version runs (no driver).

``cassandra:<version>`` (``cassandra:5.0`` for the default version, as before), stood in for by
``chaoskit/cassandra:<version>`` (``chaoskit/cassandra:5.0``) built here from that version's jars.
``$CHAOSKIT_CASSANDRA_IMAGE`` is the user's own image for every version -- except when it names a chaoskit
stand-in of another version (what ``chaoskit images --env`` exports), which stands for the stand-in family.
"""

from __future__ import annotations

import os
from functools import partial

from chaoskit.systems.base import LocalImage
from chaoskit.systems.cassandra import dist
from chaoskit.systems.cassandra.settings import SYSTEM_IMAGE, VERSION

LOCAL_REPO = "chaoskit/cassandra"


def local_image(version: str = VERSION) -> LocalImage:
    tag = f"{LOCAL_REPO}:5.0" if version == VERSION else f"{LOCAL_REPO}:{version}"
    return LocalImage(tag, "cassandra", partial(dist.stage_image, version=version))


def image_for(version: str) -> tuple[str, LocalImage | None]:
    """The image a docker run of ``version`` asks for, and its local stand-in (None: the user's own image)."""
    own = os.environ.get(SYSTEM_IMAGE[0])
    if own and not (own.startswith(f"{LOCAL_REPO}:") and own != local_image(version).tag):
        return own, None
    return (SYSTEM_IMAGE[1] if version == VERSION else f"cassandra:{version}"), local_image(version)
