"""DNS endpoints, the pure parts: the zone's files and hook scripts, the clients' name caches, validation."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.catalog import EXPERIMENTS_DIR, parse
from chaoskit.clients.endpoint import NameCache, NameNotResolved
from chaoskit.dns import DnsZone, patroni_hook, refuse, sentinel_hook
from chaoskit.errors import ExperimentError, UsageError

ORIGIN = "experiments/test-origin.yaml"


def _zone(tmp_path: Path) -> DnsZone:
    d = tmp_path / "hosts"
    d.mkdir()
    return DnsZone("abc123.chaoskit.test", ("10.213.3.3", 53), d, 5)


def _records(zone: DnsZone) -> dict[str, str]:
    """Visible hosts files (dnsmasq skips dot files) -> content."""
    return {p.name: p.read_text() for p in sorted(zone.hosts_dir.iterdir()) if not p.name.startswith(".")}


def test_zone_write_replaces_a_file_and_no_records_remove_it(tmp_path: Path) -> None:
    zone = _zone(tmp_path)
    zone.write("writer", [("10.0.0.1", "writer")])
    zone.write("writer", [("10.0.0.2", "writer")])
    assert _records(zone) == {"writer": "10.0.0.2 writer.abc123.chaoskit.test\n"}
    zone.write("writer", [])
    assert _records(zone) == {}
    assert list(zone.hosts_dir.iterdir()) == []  # no temporary file left behind


def test_patroni_hook_moves_writer_and_reader_records_by_role(tmp_path: Path) -> None:
    zone = _zone(tmp_path)
    hook = tmp_path / "hook.sh"
    hook.write_text(patroni_hook(zone, "pg-2", "10.0.0.12"))
    hook.chmod(0o755)
    zone.write("writer", [("10.0.0.11", "writer")])
    subprocess.run([str(hook), "on_start", "replica", "chaoskit"], check=True)
    assert _records(zone)["reader-pg-2"] == "10.0.0.12 reader.abc123.chaoskit.test\n"
    subprocess.run([str(hook), "on_stop", "master", "chaoskit"], check=True)  # other actions change nothing
    assert _records(zone)["writer"].startswith("10.0.0.11 ")
    subprocess.run([str(hook), "on_role_change", "master", "chaoskit"], check=True)
    assert _records(zone) == {"writer": "10.0.0.12 writer.abc123.chaoskit.test\n"}  # it left the readers
    subprocess.run([str(hook), "on_role_change", "replica", "chaoskit"], check=True)
    assert "reader-pg-2" in _records(zone)


def test_sentinel_hook_points_primary_at_the_promoted_address(tmp_path: Path) -> None:
    zone = _zone(tmp_path)
    hook = tmp_path / "reconfig.sh"
    hook.write_text(sentinel_hook(zone))
    hook.chmod(0o755)
    subprocess.run([str(hook), "mymaster", "leader", "start", "10.0.0.10", "6379", "10.0.0.12", "6379"], check=True)
    assert _records(zone) == {"primary": "10.0.0.12 primary.abc123.chaoskit.test\n"}


class _Fake:
    def __init__(self) -> None:
        self.now, self.answers, self.calls = 0.0, [(["10.0.0.1"], 5)], 0

    def clock(self) -> float:
        return self.now

    def lookup(self, _name: str) -> tuple[list[str], int]:
        self.calls += 1
        return self.answers[0]


def test_endpoint_cache_keeps_an_answer_for_its_ttl() -> None:
    fake = _Fake()
    names = NameCache(("10.0.0.3", 53), "writer.x", None, clock=fake.clock, lookup_fn=fake.lookup)
    assert names.address() == "10.0.0.1"
    fake.answers = [(["10.0.0.2"], 5)]
    fake.now = 4.9
    assert names.address() == "10.0.0.1" and fake.calls == 1
    fake.now = 5.0
    assert names.address() == "10.0.0.2" and fake.calls == 2


def test_cached_client_keeps_an_address_for_cache_s_whatever_the_ttl() -> None:
    fake = _Fake()
    names = NameCache(("10.0.0.3", 53), "writer.x", 30.0, clock=fake.clock, lookup_fn=fake.lookup)
    names.address()
    fake.answers = [(["10.0.0.2"], 5)]
    fake.now = 29.9
    assert names.address() == "10.0.0.1"
    fake.now = 30.0
    assert names.address() == "10.0.0.2"


def test_a_name_without_address_is_not_resolved_and_not_kept() -> None:
    fake = _Fake()
    fake.answers = [([], 0)]
    names = NameCache(("10.0.0.3", 53), "writer.x", None, clock=fake.clock, lookup_fn=fake.lookup)
    with pytest.raises(NameNotResolved):
        names.address()
    fake.answers = [(["10.0.0.1"], 5)]
    assert names.address() == "10.0.0.1"


def _doc(name: str) -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((EXPERIMENTS_DIR / f"{name}.yaml").read_text()))


@pytest.mark.parametrize(("name", "mutate", "field", "words"), [
    ("postgres-dns-endpoint-failover", lambda d: d.pop("dns"), "client.pattern", "add `dns: {ttl_s: 5}`"),
    ("redis-primary-endpoint-dns", lambda d: d.pop("dns"), "client.pattern", "resolves the run's DNS names"),
    ("postgres-dns-endpoint-failover", lambda d: d["client"].update(options={"cache_s": 10}), "client.options.cache_s",
     "only the dns-cached pattern"),
    ("postgres-dns-cached-client", lambda d: d["client"].update(options={"cache_s": -1}), "client.options.cache_s",
     "a number > 0"),
    ("postgres-dns-cached-client", lambda d: d.update(dns={"ttl_s": 0}), "dns.ttl_s", "greater than or equal to 1"),
    ("redis-primary-endpoint-dns", lambda d: d.update(dns={"ttl": 5}), "dns.ttl", "Extra inputs"),
    ("redis-primary-endpoint-dns", lambda d: d.update(workload={"readers": 1, "read_from": "replica"}),
     "workload.read_from", "primary endpoint only"),
    ("mongo-primary-kill", lambda d: d.update(dns={"ttl_s": 5}), "dns", "no DNS endpoints yet (mongo)"),
])
def test_dns_mistakes_are_one_line(name: str, mutate: Any, field: str, words: str) -> None:
    doc = _doc(name)
    mutate(doc)
    with pytest.raises(ExperimentError) as info:
        parse(doc, ORIGIN)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{ORIGIN}: {field}:"), msg
    assert words in msg, msg


def test_dns_endpoints_on_docker_need_routed_addressing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_DOCKER_ADDRESSING", "published")
    with pytest.raises(UsageError, match=r"^dns: DNS endpoints on the docker backend need routed addressing"):
        refuse("docker")
    with pytest.raises(UsageError, match=r"^dns: DNS endpoints are not supported on the k8s backend$"):
        refuse("k8s")
