"""The wheel is the whole tool: built, installed into a fresh venv, run from a directory outside the checkout.

No editable install and no system site-packages: a file or a dependency missing from the wheel fails
here. Dependencies come through pip's cache. Prints how long each step took.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.util import cli_env, netns_names

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SOURCE_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__",
                                       ".*_cache")


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{args}: exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory outside the checkout."""
    assert not tmp_path.resolve().is_relative_to(ROOT), "tmp_path must be outside the checkout"
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


@pytest.fixture
def wheel_env(state_dir: Path) -> Iterator[dict[str, str]]:
    env = cli_env(state_dir)
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "CHAOSKIT_EXPERIMENTS", "PYTHONHOME"):
        env.pop(var, None)
    yield env


def _assert_run_left_nothing(run_id: str, state_dir: Path) -> None:
    """Scoped to this run (other engineers' runs on the same machine come and go meanwhile)."""
    assert not [ns for ns in netns_names() if ns.startswith(f"ck-{run_id}-")], "network namespaces left behind"
    procs = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    assert f"chaoskit-{run_id}" not in procs, "server processes left behind"
    assert not list((state_dir / "runs").glob("*.json")), "ledger entries left behind"


def test_wheel_installed_in_a_fresh_venv_lists_composes_and_runs(
        tmp_path: Path, elsewhere: Path, state_dir: Path, wheel_env: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    timings: dict[str, float] = {}
    started = mark = time.monotonic()

    def lap(step: str) -> None:
        nonlocal mark
        timings[step] = time.monotonic() - mark
        mark = time.monotonic()

    # build from a copy, so no stale build/ directory of the checkout can slip a file into the wheel
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=SOURCE_IGNORE)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", source], elsewhere, wheel_env, 300)
    (wheel,) = (tmp_path / "dist").glob("chaoskit-*.whl")
    lap("build wheel")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], elsewhere, wheel_env, 120)
    _run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel], elsewhere, wheel_env, 600)
    lap("venv + pip install")
    chaoskit = venv / "bin" / "chaoskit"

    where = _run([venv / "bin" / "python", "-c", "import chaoskit; print(chaoskit.__file__)"], elsewhere, wheel_env, 60)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    try:
        listed = _run([chaoskit, "list"], elsewhere, wheel_env, 60).stdout
        builtin = sorted(p.stem for p in (ROOT / "chaoskit" / "experiments").glob("*.yaml"))
        assert len(builtin) >= 21
        assert [name for name in builtin if name not in listed] == []

        mine = elsewhere / "mine"
        mine.mkdir()
        doc = yaml.safe_load((ROOT / "chaoskit" / "experiments" / "redis-primary-kill.yaml").read_text())
        (mine / "my-kill.yaml").write_text(yaml.safe_dump({**doc, "name": "my-kill"}))
        assert "my-kill" in _run([chaoskit, "list", "--experiments", "mine"], elsewhere, wheel_env, 60).stdout

        composed = _run([chaoskit, "compose", "redis"], elsewhere, wheel_env, 60).stdout
        assert composed == (ROOT / "compose" / "redis.yml").read_text()
        pg = yaml.safe_load(_run([chaoskit, "compose", "postgres"], elsewhere, wheel_env, 60).stdout)
        context = Path(pg["services"]["pg-1"]["build"]["context"])
        assert context.is_relative_to(venv) and (context / "Dockerfile").is_file()
        if os.environ.get("CHAOSKIT_DOCKER_TESTS") == "1":  # cached: nothing is rebuilt when the images exist
            assert "images ready" in _run([chaoskit, "images"], elsewhere, wheel_env, 1800).stdout
        lap("list + compose (+ images)")

        out = elsewhere / "out"
        ran = _run([chaoskit, "run", "redis-primary-kill", "--backend", "local", "--out", out], elsewhere, wheel_env,
                   300)
        run_id = re.search(r"backend: local \(run ([0-9a-f]+)\)", ran.stdout)
        assert run_id, ran.stdout
        _assert_run_left_nothing(run_id.group(1), state_dir)
        journal = json.loads((out / "journal.json").read_text())
        assert journal["experiment"] == "redis-primary-kill" and journal["backend"] == "local"
        assert journal["verdict"] == "pass" and journal["metrics"]["lost_writes"] == 0, journal["checks"]
        lap("run redis-primary-kill")
    finally:
        subprocess.run([chaoskit, "cleanup"], cwd=elsewhere, env=wheel_env, capture_output=True, timeout=120)
    timings["total"] = time.monotonic() - started
    with capsys.disabled():
        print("\nwheel test: " + ", ".join(f"{step} {secs:.1f} s" for step, secs in timings.items()))
