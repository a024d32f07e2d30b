"""A docker run's work directory, handed back to the user who ran chaoskit before it is removed.

The work directory is bind-mounted into every node, and the servers write into it as their image's user
(postgres, mongodb, root). A user in the ``docker`` group who is not root (a laptop's Linux user, a CI
runner) then cannot remove what they wrote: a data directory of mode 0700 owned by another uid. A
throw-away container of one of the run's own images (present: the run used it) runs ``chown -R`` as root
in the container, after the run's containers are stopped, so the host's own removal of the directory
(the ledger's ``dir`` entry) works. Docker Desktop's file sharing already shows those files as the user's:
there nothing is foreign and no container is started.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the ledger imports the docker backend, which imports this module
    from chaoskit.backends.ledger import Ledger


def foreign_paths(root: Path) -> bool:
    """True when something under ``root`` belongs to another user than this process's (never raises)."""
    uid = os.geteuid()
    for parent, dirs, files in os.walk(root, onerror=lambda _exc: None):
        for name in (*dirs, *files):
            try:
                if os.lstat(os.path.join(parent, name)).st_uid != uid:
                    return True
            except OSError:
                continue
    return False


def workdir_of(ledger: Ledger) -> Path | None:
    """The run's work directory: its ledger's first ``dir`` entry (recorded before anything else)."""
    return next((Path(e.name) for e in ledger.entries if e.kind == "dir"), None)


def hand_back(client: Any | None, ledger: Ledger, label: str) -> bool:
    """Stop the run's containers and ``chown -R`` its work directory to this process's user, from a
    throw-away container of one of the run's images; the container is ledgered before it is created.
    ``client`` is a Docker SDK client (None: from the environment, for ``chaoskit cleanup``). Returns whether
    it ran. Does nothing as root or when nothing is foreign. Never raises."""
    workdir = workdir_of(ledger)
    if os.geteuid() == 0 or workdir is None or not workdir.is_dir() or not foreign_paths(workdir):
        return False
    try:
        if client is None:
            import docker

            client = docker.from_env(timeout=30)
        containers = client.containers.list(all=True, filters={"label": f"{label}={ledger.run_id}"})
        if not containers:
            return False
        for c in containers:  # nothing may write while ownership changes
            if c.status in ("running", "paused"):
                with contextlib.suppress(Exception):
                    c.kill()
        oldest_first = sorted(containers, key=lambda c: str(c.attrs.get("Created", "")))
        images = list(dict.fromkeys(c.image.id for c in oldest_first))  # the nodes' before Toxiproxy's (scratch)
        return any(_chown(client, ledger, label, workdir, image, i) for i, image in enumerate(images))
    except Exception:  # noqa: BLE001 -- teardown goes on: the host removes what it can
        return False


def _chown(client: Any, ledger: Ledger, label: str, workdir: Path, image: str, attempt: int) -> bool:
    """``chown -R`` the work directory to this user from a container of ``image``; False when that image has no
    ``chown`` (Toxiproxy's is FROM scratch) or it failed. The container is ledgered before it is created."""
    name = f"ck-{ledger.run_id}-chown{attempt or ''}"
    ledger.record("container", name)
    try:
        client.containers.run(image, [f"{os.geteuid()}:{os.getegid()}", str(workdir)], entrypoint=["chown", "-R"],
                              user="0", name=name, remove=True, network_mode="none", labels={label: ledger.run_id},
                              volumes={str(workdir): {"bind": str(workdir), "mode": "rw"}})
        return True
    except Exception:  # noqa: BLE001 -- no chown in this image (a created container is ledgered): the next one
        return False
