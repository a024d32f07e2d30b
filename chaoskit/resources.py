"""Where chaoskit finds its files: the package's own data, and the user's experiment directories.

The built-in experiments (``chaoskit/experiments/*.yaml``) and the image build contexts
(``chaoskit/images/<image>/Dockerfile``) are package data, found with ``importlib.resources`` -- so an
installed wheel is the whole tool, wherever it is run from.

A user adds experiment directories with ``--experiments DIR`` (``list``, ``run``) or
``CHAOSKIT_EXPERIMENTS`` (several directories separated by ``os.pathsep``). In a directory, an
experiment's name is its file name without ``.yaml``. Names are unique: a user file with the name of a
built-in experiment (or of another user file) is a usage error naming both files -- nothing is
shadowed silently. Run such a file by its path instead, or rename it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from chaoskit.errors import InfrastructureError, UsageError

ENV_EXPERIMENTS = "CHAOSKIT_EXPERIMENTS"


def package_dir(*parts: str) -> Path:
    """A directory of chaoskit's package data, on disk (a pip-installed wheel is always unpacked)."""
    resource = files("chaoskit").joinpath(*parts)
    if not isinstance(resource, Path):  # a zipped install: docker and glob need real files
        raise InfrastructureError(f"chaoskit's package data {'/'.join(parts)} is not on disk ({resource}); "
                                  "install chaoskit unzipped (pip install)")
    return resource


def builtin_experiments_dir() -> Path:
    return package_dir("experiments")


def images_dir() -> Path:
    """The directory holding one build context per image (``<image>/Dockerfile``)."""
    return package_dir("images")


def image_context(image: str) -> Path:
    context = images_dir() / image
    if not (context / "Dockerfile").is_file():
        raise InfrastructureError(f"no build context for image {image!r} in {images_dir()}")
    return context


DOCKERFILE_LABEL = "io.chaoskit.dockerfile"  # what a locally built image was built from (see dockerfile_hash)


def dockerfile_hash(context: Path) -> str:
    """The label value an image built from ``context`` carries (first 16 hex digits of its Dockerfile's sha256)."""
    return hashlib.sha256((context / "Dockerfile").read_bytes()).hexdigest()[:16]


def user_experiment_dirs(extra: Iterable[str | Path] = ()) -> list[Path]:
    """``extra`` (from ``--experiments``), then ``$CHAOSKIT_EXPERIMENTS``; each must be a directory."""
    raw = [str(d) for d in extra]
    raw += [d for d in os.environ.get(ENV_EXPERIMENTS, "").split(os.pathsep) if d]
    seen = {builtin_experiments_dir().resolve()}
    dirs: list[Path] = []
    for entry in raw:
        path = Path(entry).expanduser()
        if not path.is_dir():
            what = "is not a directory" if path.exists() else "does not exist"
            raise UsageError(f"experiment directory {entry} {what}")
        if path.resolve() not in seen:  # the same directory twice (or the built-in one) is read once
            seen.add(path.resolve())
            dirs.append(path)
    return dirs


def experiment_files(extra: Iterable[str | Path] = (), *, user: bool = True) -> dict[str, Path]:
    """Every experiment file by name: the built-in ones, then (``user``) those of the user's directories.

    Raises UsageError (exit 2) when a name is taken twice, naming both files.
    """
    found = {path.stem: path for path in sorted(builtin_experiments_dir().glob("*.yaml"))}
    builtin = set(found)
    for directory in user_experiment_dirs(extra) if user else []:
        for path in sorted(directory.glob("*.yaml")):
            if (other := found.get(path.stem)) is not None:
                kind = "the built-in " if path.stem in builtin else ""
                raise UsageError(f"experiment {path.stem!r} is defined twice: {path} and {kind}{other}; "
                                 "rename yours (file and name:) or run it by path")
            found[path.stem] = path
    return dict(sorted(found.items()))
