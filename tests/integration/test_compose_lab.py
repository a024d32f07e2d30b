"""The standalone Compose lab comes up with plain docker compose and Sentinel sees everyone."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("CHAOSKIT_DOCKER_TESTS") != "1", reason="set CHAOSKIT_DOCKER_TESTS=1"),
]
ROOT = Path(__file__).resolve().parents[2]


def _compose() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "need docker compose (v2) or docker-compose (v1)"
    return ["docker-compose"]


def test_redis_lab_comes_up_and_sentinels_see_all() -> None:
    project = f"cklab{os.getpid()}"
    env = {**os.environ, "CHAOSKIT_LAB_NET": "10.217.0"}
    base = [*_compose(), "-f", str(ROOT / "compose" / "redis.yml"), "-p", project]
    up = subprocess.run([*base, "up", "-d"], env=env, capture_output=True, text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        deadline, seen = time.monotonic() + 40, ""
        while time.monotonic() < deadline:
            seen = subprocess.run([*base, "exec", "-T", "sentinel-3", "redis-cli", "-p", "26379", "sentinel",
                                   "master", "mymaster"], env=env, capture_output=True, text=True).stdout
            fields = dict(zip(seen.split()[::2], seen.split()[1::2], strict=False))
            if fields.get("num-slaves") == "2" and fields.get("num-other-sentinels") == "2":
                break
            time.sleep(1)
        else:
            raise AssertionError(f"sentinel-3 never saw 2 replicas and 2 sentinels:\n{seen}")
        assert fields["ip"] == "10.217.0.10"
    finally:
        subprocess.run([*base, "down", "-v"], env=env, capture_output=True, timeout=120)
